"""The build pipeline on a tiny generated source: outputs, stage cache, determinism."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from detforge.builders.pipeline import build, resolve_roots
from detforge.builders.recipe import RecipeError, load_recipe
from detforge.dataset import DetDataset
from tests.builders.conftest import run_cli, tiny_build_args


def output_hashes(out: Path) -> dict[str, str]:
    """sha256 of every visible output file (links by target), keyed by relative path."""
    hashes = {}
    for path in sorted(out.rglob("*")):
        rel = path.relative_to(out)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.is_symlink():
            hashes[str(rel)] = "->" + str(path.readlink())
        elif path.is_file():
            hashes[str(rel)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def test_build_writes_every_output(tiny_build: Path) -> None:
    for rel in (
        "tables/dataset.json",
        "tables/objects.parquet",
        "coco/train.json",
        "coco/val.json",
        "coco/roots.json",
        "hub/README.md",
        "hub/data/train-00000-of-00003.parquet",
        "hub/data/val-00000-of-00001.parquet",
        "hub/taxonomy/classes.csv",
        "hub/taxonomy/mapping.csv",
        "hub/report/long_tail.png",
        "report/report.md",
        "report/long_tail.png",
        "report/per_source.png",
    ):
        assert (tiny_build / rel).is_file(), rel
    dataset = DetDataset.read(tiny_build / "tables")
    assert dataset.validate() == []
    # 32 images read; the two planted contaminated train images are gone
    assert dataset.images.height == 30
    assert set(dataset.images["source_image_id"]) & {"100", "101"} == set()
    # class 4 ("blur") is dropped by the taxonomy; no box is left unlabelled
    assert dataset.objects["label"].null_count() == 0
    assert sorted(dataset.categories["name"]) == ["cat", "dog", "kite"]


def test_rerun_reuses_every_stage_and_a_change_reruns_only_downstream(
    tiny_root: Path, tmp_path: Path
) -> None:
    recipe = load_recipe(tiny_root / "tiny.yaml")
    first = build(recipe, tmp_path, root=tiny_root, workers=1)
    assert not any(cached for _, _, cached in first.stages)
    again = build(recipe, tmp_path, root=tiny_root, workers=1)
    assert all(cached for _, _, cached in again.stages)
    changed = build(
        load_recipe(tiny_root / "tiny.yaml", ["split.mode=hash"]),
        tmp_path,
        root=tiny_root,
        workers=1,
    )
    cached = {stage: hit for stage, _, hit in changed.stages}
    assert cached["read"] and cached["map"]
    # the split runs before dedup and decontamination: a re-split re-checks both
    assert not cached["split"] and not cached["dedup"] and not cached["decontaminate"]
    assert not cached["export-coco"] and not cached["report"]
    assert [stage for stage, _, _ in changed.stages][:5] == [
        "read",
        "map",
        "split",
        "dedup",
        "decontaminate",
    ]
    # only one output per stage is kept in the cache
    assert len(list((tmp_path / ".stages").glob("split-*"))) == 1


def test_same_inputs_give_byte_identical_outputs(tiny_root: Path, tiny_build: Path, tmp_path):
    other = tmp_path / "again"
    done = run_cli(*tiny_build_args(tiny_root, other))
    assert done.returncode == 0, done.stderr
    reference = output_hashes(tiny_build)
    assert len(reference) > 20
    assert output_hashes(other) == reference


def test_cli_bad_recipe_key_is_one_line(tiny_root: Path, tmp_path: Path) -> None:
    done = run_cli(*tiny_build_args(tiny_root, tmp_path / "x", "--set", "dedup.radius=3"))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: {tiny_root / 'tiny.yaml'}: unknown key 'dedup.radius' (known: box_iou, dhash_distance, exact, "
        "framing_tolerance, near, phash_distance)"
    ]


def test_missing_holdout_is_a_clear_error(tiny_root: Path, tmp_path: Path) -> None:
    done = run_cli(
        *tiny_build_args(tiny_root, tmp_path / "x", "--holdout", f"extra={tmp_path / 'nope.json'}")
    )
    assert done.returncode == 1
    assert "holdout extra:" in done.stderr and "not found" in done.stderr


def test_report_names_drops_and_contamination(tiny_build: Path) -> None:
    text = (tiny_build / "report" / "report.md").read_text()
    assert "| coco | blur | drop | class dropped | 16 | 16 | 0 |" in text
    assert "2 training images removed." in text
    assert "| evalset | false | 1 |" in text and "| split:val | true | 1 |" in text
    card = (tiny_build / "hub" / "README.md").read_text()
    assert card.startswith("---\n") and "(report/long_tail.png)" in card
    assert "BigDetection: A Large-scale Benchmark" in card


def test_hash_split_rebuild(tiny_root: Path, tmp_path: Path) -> None:
    recipe = load_recipe(
        tiny_root / "tiny.yaml",
        [
            "split.mode=hash",
            "split.fractions={train: 0.5, val: 0.5}",
            "exports.hub.enabled=false",
            "exports.coco=false",
        ],
    )
    result = build(recipe, tmp_path, root=tiny_root, workers=1)
    splits = result.dataset.images["split"].value_counts()
    assert set(splits["split"]) == {"train", "val"}
    assert not (tmp_path / "coco").exists() and not (tmp_path / "hub").exists()
    assert result.dataset.images.filter(pl.col("split").is_null()).height == 0


def test_changed_annotation_file_reruns_from_read(tiny_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(tiny_root, root)
    recipe = load_recipe(root / "tiny.yaml", ["exports.hub.enabled=false", "exports.coco=false"])
    build(recipe, tmp_path / "out", root=root, workers=1)
    file = root / "src" / "annotations" / "instances_val2017.json"
    data = json.loads(file.read_text())
    data["annotations"] = data["annotations"][1:]  # one box fewer
    file.write_text(json.dumps(data))
    again = build(recipe, tmp_path / "out", root=root, workers=1)
    assert not any(cached for stage, _, cached in again.stages if stage != "export-tables")
    assert (
        again.dataset.objects.height
        == build(recipe, tmp_path / "fresh", root=root, workers=1).dataset.objects.height
    )


def test_source_override_and_unknown_source(tiny_root: Path, tmp_path: Path) -> None:
    recipe = load_recipe(tiny_root / "tiny.yaml")
    roots = resolve_roots(recipe, tmp_path, {"coco": tiny_root / "src"})
    assert roots["coco"].root == (tiny_root / "src").absolute()
    assert resolve_roots(recipe, tmp_path)["coco"].root == (tmp_path / "src").absolute()
    with pytest.raises(RecipeError, match="--source lvis: the recipe has no source"):
        resolve_roots(recipe, tmp_path, {"lvis": tmp_path})


def test_hub_shards_can_reference_image_paths(tiny_root: Path, tmp_path: Path) -> None:
    import datasets
    import pyarrow.parquet as pq

    recipe = load_recipe(
        tiny_root / "tiny.yaml", ["exports.hub.embed_images=false", "exports.coco=false"]
    )
    build(recipe, tmp_path, root=tiny_root, workers=1)
    shard = pq.read_table(tmp_path / "hub" / "data" / "val-00000-of-00001.parquet")
    images = shard.column("image").to_pylist()
    assert all(i["bytes"] is None and Path(i["path"]).is_file() for i in images)
    loaded = datasets.load_dataset(
        str(tmp_path / "hub"), split="val", cache_dir=str(tmp_path / "cache")
    )
    assert loaded.num_rows == len(images)
    assert loaded[0]["image"].size == (loaded[0]["width"], loaded[0]["height"])
    # loadable here, useless on a hub: the upload checks refuse it, naming a local path
    from detforge.exports.hub_checks import check_layout

    failed = {c.name: c.detail for c in check_layout(tmp_path / "hub", load=False) if not c.ok}
    assert set(failed) == {"images embedded"}
    assert f"val: {len(images)} of {len(images)} images have no bytes" in failed["images embedded"]
    assert images[0]["path"] in failed["images embedded"]
