"""`detforge build-dataset` with no --root: the built-in sample, end to end, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from detforge.dataset import DetDataset
from detforge.taxonomy import fingerprint, load
from tests.builders.conftest import run_cli


@pytest.fixture(scope="session")
def sample_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sample-build") / "bigdet"
    done = run_cli("build-dataset", "bigdet", "--out", str(out), "--workers", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "export-hub" in done.stdout  # the summary table
    return out


def _planted(out: Path, case: str) -> list[dict]:
    cases = json.loads((out / ".sample" / "planted.json").read_text())["cases"]
    return next(c["images"] for c in cases if c["case"] == case)


def _ids(dataset: DetDataset, images: list[dict]) -> pl.DataFrame:
    keys = pl.DataFrame(images).select("source", "source_image_id")
    return dataset.images.join(keys, on=["source", "source_image_id"], how="semi")


def test_sample_builds_and_removes_planted_cases(sample_build: Path) -> None:
    tables = DetDataset.read(sample_build / "tables")
    assert tables.validate() == []
    assert tables.categories.height == 600 and tables.objects["label"].null_count() == 0
    assert set(tables.images["source"]) == {"objects365", "openimages", "lvis"}
    # the Objects365 train copy of a COCO val2017 photo is gone; its val original stays
    contaminated = _planted(sample_build, "contaminated")
    assert _ids(tables, contaminated[:1]).height == 0
    # byte-identical copies in two sources: one image kept, carrying a dup_group
    kept = _ids(tables, _planted(sample_build, "exact_duplicate"))
    assert kept.height == 1 and kept["dup_group"].to_list() == kept["image_id"].to_list()
    report = (sample_build / "report" / "report.md").read_text()
    assert "| coco_val2017 |" in report and "duplicate groups" in report
    # the taxonomy's revision is recorded, so builds from two mapping revisions differ
    revision = fingerprint(load("bigdet-v1"))
    assert tables.meta["taxonomy_fingerprint"] == revision
    assert f"taxonomy `bigdet-v1` (revision `{revision[:12]}`)" in report
    assert (sample_build / "report" / "long_tail.png").stat().st_size > 1000


def test_sample_coco_export_keeps_federated_fields(sample_build: Path) -> None:
    from pycocotools.coco import COCO

    tables = DetDataset.read(sample_build / "tables")
    neg_total = 0
    for split in ("train", "val"):
        coco = COCO(str(sample_build / "coco" / f"{split}.json"))
        assert len(coco.getCatIds()) == 600
        assert len(coco.getImgIds()) == tables.images.filter(pl.col("split") == split).height
        neg_total += sum(len(img["neg_category_ids"]) for img in coco.dataset["images"])
        for img in coco.dataset["images"]:
            assert (sample_build / "coco" / "images" / img["file_name"]).is_file()
    negatives = tables.image_labels.filter(
        (pl.col("status") == "negative") & pl.col("label").is_not_null()
    ).unique(["image_id", "label"])
    assert neg_total == negatives.height > 0
    train = json.loads((sample_build / "coco" / "train.json").read_text())
    assert any(a["is_group_of"] for a in train["annotations"])  # the planted OpenImages group
    assert train["info"]["taxonomy_fingerprint"] == fingerprint(load("bigdet-v1"))
    assert "objects365" in train["label_spaces"]


def test_sample_hub_export_loads(sample_build: Path, tmp_path: Path) -> None:
    import datasets

    loaded = datasets.load_dataset(str(sample_build / "hub"), cache_dir=str(tmp_path / "cache"))
    tables = DetDataset.read(sample_build / "tables")
    names = tables.categories.sort("id")["name"].to_list()
    assert loaded["train"].features["objects"]["category"].feature.names == names
    for split in loaded:
        assert loaded[split].num_rows == tables.images.filter(pl.col("split") == split).height
    boxes = sum(len(r["objects"]["bbox"]) for r in loaded["train"])
    train_ids = tables.images.filter(pl.col("split") == "train").select("image_id")
    assert boxes == tables.objects.join(train_ids, on="image_id", how="semi").height
    card = (sample_build / "hub" / "README.md").read_text()
    for source in ("objects365", "openimages", "lvis"):
        assert source in card
    assert f"(revision `{fingerprint(load('bigdet-v1'))[:12]}`)" in card
    assert (sample_build / "hub" / "taxonomy" / "mapping.csv").is_file()
    # the federated facts: per image the COCO export's lists (unified id = COCO id - 1) ...
    negatives = 0
    for split in loaded:
        coco = json.loads((sample_build / "coco" / f"{split}.json").read_text())
        expected = {
            img["id"]: (
                [c - 1 for c in img["neg_category_ids"]],
                [c - 1 for c in img["not_exhaustive_category_ids"]],
            )
            for img in coco["images"]
        }
        hub = loaded[split].select_columns(
            ["image_id", "neg_category_ids", "not_exhaustive_category_ids"]
        )
        got = {
            r["image_id"]: (r["neg_category_ids"], r["not_exhaustive_category_ids"]) for r in hub
        }
        assert got == expected
        negatives += sum(len(neg) for neg, _ in got.values())
    assert negatives > 0
    # ... and each source's exhaustively annotated classes
    spaces = pl.read_csv(sample_build / "hub" / "taxonomy" / "label_spaces.csv")
    expected_spaces = (
        tables.label_spaces.filter(pl.col("label").is_not_null())
        .select("source", pl.col("label").cast(pl.Int64))
        .unique()
        .sort("source", "label")
    )
    assert spaces.select("source", "label").equals(expected_spaces)
    assert "objects365" in set(spaces["source"])


def test_sample_built_on_an_existing_ray_cluster_equals_the_process_engine(
    sample_build: Path, ray_head: str, tmp_path: Path
) -> None:
    """`--engine ray` on a running cluster (a real `ray start --head --num-cpus 2`, see the
    ray_head fixture): the outputs are byte-identical to the process engine's."""
    from tests.builders.conftest import RAY_ENV
    from tests.builders.test_build_pipeline import output_hashes

    out = tmp_path / "bigdet"
    root = sample_build / ".sample"  # the same --root: absolute roots appear in the outputs
    env = {**RAY_ENV, "RAY_ADDRESS": ""}
    done = run_cli(
        "build-dataset",
        "bigdet",
        "--root",
        str(root),
        "--out",
        str(out),
        "--engine",
        "ray",
        "--ray-address",
        ray_head,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Started a local Ray instance" not in done.stdout + done.stderr
    reference = output_hashes(sample_build)
    assert len(reference) > 20 and output_hashes(out) == reference
