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
from detforge.errors import InputError
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
    run = CliRunner().invoke(
        app,
        ["evaluate", str(out), "--predictions", str(preds), "--category-ids", "coco",
         "--frequency", "train-counts"],
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    assert "federated" in run.output and "objects365" in run.output
    folder = out / "eval" / "val"
    doc = json.loads((folder / "eval.json").read_text())
    assert doc["schema_version"] == 2
    assert set(doc["protocols"]) == {"coco", "lvis", "federated"}
    assert doc["frequency_from"].startswith("train-counts: merged train split")
    assert doc["category_ids"] == "coco"
    assert set(doc["per_source"]["coco"]) == {"objects365", "openimages"}
    expected = evaluate(
        dataset,
        preds,
        protocols=["federated"],
        matches=False,
        category_ids="coco",
        frequency="train-counts",
    )
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
                "--category-ids",
                "coco",
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
            "--category-ids",
            "coco",
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
    direct = evaluate(
        dataset,
        write_json(tmp_path / "u.json", unified_preds),
        protocols=["coco"],
        category_ids="coco",
    )
    assert doc["protocols"]["coco"]["metrics"] == direct.metrics("coco")
    assert direct.metrics("coco")["AP"] > 0


def test_no_matches_leaves_no_stale_matches_file(built, tmp_path):
    out, preds, _ = built
    folder = tmp_path / "eval"
    args = ["evaluate", str(out), "-p", str(preds), "--protocol", "coco", "--out", str(folder)]
    args += ["--category-ids", "coco"]
    assert CliRunner().invoke(app, args).exit_code == 0
    assert (folder / "matches.parquet").is_file()
    assert CliRunner().invoke(app, [*args, "--no-matches"]).exit_code == 0
    assert not (folder / "matches.parquet").exists()
    assert json.loads((folder / "eval.json").read_text())["schema_version"] == 2


def test_plain_coco_and_lvis_files_need_no_build(tmp_path):
    from references import load_data

    gt = write_json(
        tmp_path / "gt.json",
        load_data("review_object_detection_metrics/sampled_gts_bbox_area.json.gz"),
    )
    dets = load_data("review_object_detection_metrics/sampled_bbox_results.json.gz")
    preds = write_json(tmp_path / "dets.json", dets["annotations"])
    run = CliRunner().invoke(app, ["evaluate", "--gt", str(gt), "-p", str(preds)])
    assert run.exit_code == 0, run.output
    folder = tmp_path / "dets-eval"  # beside the predictions by default
    doc = json.loads((folder / "eval.json").read_text())
    assert list(doc["protocols"]) == ["coco"] and doc["split"] is None
    assert round(doc["protocols"]["coco"]["metrics"]["AP"], 6) == 0.503647
    assert doc["ground_truth"] == "gt.json (coco)" and doc["category_ids"] == "as in gt.json"
    matches = pl.read_parquet(folder / "matches.parquet")
    assert set(matches["image_id"].to_list()) <= {
        i["id"] for i in json.loads(gt.read_text())["images"]
    }
    assert "50.4" in run.output

    lvis = write_json(
        tmp_path / "lvis.json", load_data("faster_coco_eval/lvis_v0.5_val_100_boxes.json.gz")
    )
    boxes = [
        {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            "bbox": a["bbox"],
            "score": 0.9,
        }
        for a in json.loads(lvis.read_text())["annotations"]
    ]
    out = tmp_path / "lvis-eval"
    lvis_preds = write_json(tmp_path / "boxes.json", boxes)
    run = CliRunner().invoke(
        app, ["evaluate", "--gt", str(lvis), "-p", str(lvis_preds), "--out", str(out)]
    )
    assert run.exit_code == 0, run.output
    doc = json.loads((out / "eval.json").read_text())
    assert list(doc["protocols"]) == ["lvis"]  # detected from the file
    assert doc["protocols"]["lvis"]["metrics"]["AP"] == pytest.approx(1.0)
    assert "APr" in doc["protocols"]["lvis"]["metrics"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gt", "g.json", "OUT"], "one of the two"),
        ([], "one of the two"),
        (["--gt", "g.json", "--category-ids", "coco"], "apply to a build"),
        (["OUT", "--format", "lvis"], "--format describes a --gt file"),
    ],
)
def test_gt_and_build_options_do_not_mix(tmp_path, args, message):
    from detforge.errors import DetforgeError

    args = [str(tmp_path / a) if a in ("OUT", "g.json") else a for a in args]
    run = CliRunner().invoke(app, ["evaluate", "-p", "p.json", *args])
    assert isinstance(run.exception, DetforgeError) and message in str(run.exception)


def test_an_output_folder_with_other_files_is_refused_untouched(built, tmp_path):
    from detforge.errors import DetforgeError

    out, preds, _ = built
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    args = ["evaluate", str(out), "-p", str(preds), "--out", str(folder), "--category-ids", "coco"]
    run = CliRunner().invoke(app, args)
    assert isinstance(run.exception, DetforgeError) and "notes.txt" in str(run.exception)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


KILLED_WRITE = """
import sys, time
import polars as pl
real, ready = pl.DataFrame.write_parquet, sys.argv[1]
def stalled(self, *args, **kwargs):
    real(self, *args, **kwargs)
    open(ready, "w").close()  # eval.json and matches.parquet of the new run exist now
    time.sleep(120)
pl.DataFrame.write_parquet = stalled
from detforge.cli import main
sys.argv = ["detforge", *sys.argv[2:]]
main()
"""


def test_a_killed_evaluate_leaves_the_earlier_set_whole(built, tmp_path):
    """SIGKILL after the new run's eval.json and matches.parquet are written: the folder
    still holds the earlier run's set, and browse refuses files of two runs."""
    import signal
    import time

    from detforge.inspection.predictions import read_eval_dir

    out, preds, _ = built
    folder = tmp_path / "eval"
    base = ["evaluate", str(out), "--out", str(folder), "--category-ids", "coco", "--protocol"]
    assert CliRunner().invoke(app, [*base, "coco", "-p", str(preds)]).exit_code == 0
    before = {f: (folder / f).read_bytes() for f in ("eval.json", "eval.md", "matches.parquet")}
    fewer = write_json(tmp_path / "fewer.json", json.loads(preds.read_text())[::2])
    ready = tmp_path / "ready"
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITE, str(ready), *base, "coco", "-p", str(fewer)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not ready.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ready.exists(), "the child never reached the matches write"
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert {f: (folder / f).read_bytes() for f in before} == before
    read_eval_dir(folder)  # one run's pair
    # the kill left its temporary folder; the next run removes it and replaces the set
    assert list(tmp_path.glob(".eval.*.tmp"))
    assert CliRunner().invoke(app, [*base, "coco", "-p", str(fewer)]).exit_code == 0
    assert not list(tmp_path.glob(".eval.*"))
    assert (folder / "eval.json").read_bytes() != before["eval.json"]
    # a new eval.json beside an old matches.parquet (as a non-atomic writer would leave)
    (folder / "matches.parquet").write_bytes(before["matches.parquet"])
    with pytest.raises(InputError, match="another `detforge evaluate` run"):
        read_eval_dir(folder)


def test_ambiguous_category_ids_are_one_line_naming_the_flag(built, tmp_path):
    out, preds, _ = built
    low = [p for p in json.loads(preds.read_text()) if p["category_id"] < 10]
    path = write_json(tmp_path / "low.json", low)
    run = subprocess.run(
        [sys.executable, "-c", "from detforge.cli import main; main()", "evaluate", str(out),
         "-p", str(path), "--out", str(tmp_path / "e")],
        capture_output=True, text=True, check=False, env={**os.environ, "COLUMNS": "500"},
    )  # fmt: skip
    assert run.returncode == 1 and len(run.stderr.strip().splitlines()) == 1
    assert "could be read as the build's COCO export ids (unified id + 1) or unified ids" in (
        run.stderr
    )
    assert "pass --category-ids coco" in run.stderr and not (tmp_path / "e").exists()
