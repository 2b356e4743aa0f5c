"""`detforge evaluate OUT --predictions ...` end to end: table, eval.json, eval.md,
matches.parquet; a bad file is one line on stderr and exit 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import polars as pl
import pytest
from evaluate_synth import make_dataset, make_predictions, write_json
from typer.testing import CliRunner

from detforge.cli import app
from detforge.evaluators import evaluate


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A build directory as the pipeline writes it: OUT/tables is a DetDataset."""
    root = tmp_path_factory.mktemp("build")
    dataset = make_dataset(2, images=40, classes=10)
    train = make_dataset(9, images=30, classes=10, split="train")
    dataset = type(dataset).concat([dataset, train]).replace(categories=dataset.categories)
    dataset.write(root / "out" / "tables")
    val = dataset.replace(images=dataset.images.filter(pl.col("split") == "val"))
    preds = write_json(root / "preds.json", make_predictions(val, 2))
    return root / "out", preds, dataset


def test_evaluate_writes_json_markdown_and_matches(built):
    out, preds, dataset = built
    run = CliRunner().invoke(app, ["evaluate", str(out), "--predictions", str(preds)])
    assert run.exit_code == 0, run.output
    assert "federated" in run.output and "objects365" in run.output
    folder = out / "eval" / "val"
    doc = json.loads((folder / "eval.json").read_text())
    assert doc["schema_version"] == 1
    assert set(doc["protocols"]) == {"coco", "lvis", "federated"}
    assert doc["frequency_from"] == "train split box counts"
    assert set(doc["per_source"]["coco"]) == {"objects365", "openimages"}
    expected = evaluate(dataset, preds, protocols=["federated"], matches=False)
    assert doc["protocols"]["federated"]["metrics"] == expected.metrics("federated")
    assert doc["protocols"]["federated"]["metrics"]["APr"] is not None
    row = doc["per_class"]["coco"][0]
    assert set(row) == {
        "label",
        "name",
        "frequency",
        "boxes",
        "detections",
        "AP",
        "AP50",
        "AP75",
        "AR",
    }
    text = (folder / "eval.md").read_text()
    assert "## Per class (coco)" in text and "| all |" in text
    matches = pl.read_parquet(folder / "matches.parquet")
    assert set(matches["protocol"].unique()) == {"coco", "lvis", "federated"}
    assert set(matches["status"].unique()) <= {"TP", "FP", "FN", "ignored"}
    per_protocol = matches.filter(pl.col("pred_index").is_not_null()).group_by("protocol").len()
    n = len(json.loads(preds.read_text()))
    assert per_protocol["len"].to_list() == [n, n, n]


def test_evaluate_is_deterministic(built, tmp_path):
    out, preds, _ = built
    for name in ("a", "b"):
        run = CliRunner().invoke(
            app,
            [
                "evaluate",
                str(out),
                "-p",
                str(preds),
                "--protocol",
                "coco",
                "--out",
                str(tmp_path / name),
            ],
        )
        assert run.exit_code == 0, run.output
    for file in ("eval.json", "eval.md", "matches.parquet"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()


def test_bad_predictions_are_one_line_and_exit_1(built, tmp_path):
    out, _, _ = built
    bad = write_json(
        tmp_path / "bad.json",
        [{"image_id": 12345, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5}] * 3,
    )
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "from detforge.cli import main; main()",
            "evaluate",
            str(out),
            "--predictions",
            str(bad),
        ],
        capture_output=True,
        text=True,
        check=False,
        # rich wraps stderr at the terminal width; the message itself is one line
        env={**os.environ, "COLUMNS": "500"},
    )
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr
    assert (
        "3 detections in bad.json have an image_id not in split 'val' (e.g. image_id 12345)"
        in lines[0]
    )


def test_unknown_split_and_protocol(built):
    out, preds, _ = built
    from detforge.errors import DetforgeError

    runner = CliRunner()
    run = runner.invoke(app, ["evaluate", str(out), "-p", str(preds), "--split", "test"])
    assert isinstance(run.exception, DetforgeError) and "no images in split 'test'" in str(
        run.exception
    )
    run = runner.invoke(app, ["evaluate", str(out), "-p", str(preds), "--protocol", "voc"])
    assert isinstance(run.exception, DetforgeError) and "unknown protocol(s) voc" in str(
        run.exception
    )


def test_source_ids_through_the_shipped_taxonomy(tmp_path):
    from detforge import taxonomy

    rows = (
        taxonomy.load("bigdet-v1")
        .mapping.filter((pl.col("source") == "objects365") & pl.col("label").is_not_null())
        .unique("label", keep="first", maintain_order=True)
        .head(8)
    )
    unified, source_ids = rows["label"].to_list(), [int(s) for s in rows["source_label"]]
    dataset = make_dataset(4, images=25, classes=8)
    preds = make_predictions(dataset, 4)  # in labels 0..7, mapped two ways below
    dataset = dataset.replace(
        objects=dataset.objects.with_columns(
            pl.col("label").replace_strict(list(range(8)), unified, return_dtype=pl.Int32)
        ),
        categories=taxonomy.load("bigdet-v1").classes,
    )
    dataset.write(tmp_path / "out" / "tables")
    source_preds = [dict(p, category_id=source_ids[p["category_id"] - 1]) for p in preds]
    unified_preds = [dict(p, category_id=unified[p["category_id"] - 1] + 1) for p in preds]
    source_file = write_json(tmp_path / "o365.json", source_preds)
    run = CliRunner().invoke(
        app,
        [
            "evaluate",
            str(tmp_path / "out"),
            "-p",
            str(source_file),
            "--protocol",
            "coco",
            "--taxonomy",
            "bigdet-v1",
            "--source-ids",
            "objects365",
        ],
    )
    assert run.exit_code == 0, run.output
    doc = json.loads((tmp_path / "out" / "eval" / "val" / "eval.json").read_text())
    direct = evaluate(dataset, write_json(tmp_path / "u.json", unified_preds), protocols=["coco"])
    assert doc["protocols"]["coco"]["metrics"] == direct.metrics("coco")
    assert direct.metrics("coco")["AP"] > 0


def test_no_matches_leaves_no_stale_matches_file(built, tmp_path):
    out, preds, _ = built
    args = ["evaluate", str(out), "-p", str(preds), "--protocol", "coco", "--out", str(tmp_path)]
    assert CliRunner().invoke(app, args).exit_code == 0
    assert (tmp_path / "matches.parquet").is_file()
    assert CliRunner().invoke(app, [*args, "--no-matches"]).exit_code == 0
    assert not (tmp_path / "matches.parquet").exists()
    assert json.loads((tmp_path / "eval.json").read_text())["schema_version"] == 1
