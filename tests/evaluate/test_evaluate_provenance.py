"""A predictions file's ``NAME.meta.json``: the numbering it declares is what ``evaluate``
(and ``browse``) read the ids with; another taxonomy, or ids of another file, are refused."""

from __future__ import annotations

import json

import polars as pl
import pytest
from evaluate_synth import make_dataset, make_predictions, write_json
from typer.testing import CliRunner

from detforge.cli import app
from detforge.errors import InputError
from detforge.evaluators import evaluate
from detforge.evaluators.provenance import meta_path, write_meta
from detforge.inspection.predictions import find_eval_predictions, prediction_frame

FINGERPRINT = "f" * 64


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A build (OUT/tables) and predictions whose ids fit both the COCO and unified ids."""
    root = tmp_path_factory.mktemp("provenance")
    dataset = make_dataset(2, images=30, classes=10).replace(
        meta={"taxonomy_fingerprint": FINGERPRINT}
    )
    dataset.write(root / "out" / "tables")
    # category ids 1..9: COCO ids (unified + 1) of classes 0..8, or unified ids 1..9
    ambiguous = [p for p in make_predictions(dataset, 2) if p["category_id"] < 10]
    return root / "out", dataset, ambiguous


def _declared(path, **meta):
    write_meta(path, {"category_ids": "coco", "taxonomy_fingerprint": FINGERPRINT, **meta})
    return path


def test_the_declared_numbering_is_used(built, tmp_path):
    out, dataset, preds = built
    bare = write_json(tmp_path / "bare.json", preds)
    with pytest.raises(InputError, match="could be read as"):
        evaluate(dataset, bare)  # without a meta file the ids are ambiguous
    for scheme in ("coco", "unified"):
        path = write_json(tmp_path / f"{scheme}.json", preds)
        _declared(path, category_ids=scheme, model="a planted detector")
        result = evaluate(dataset, path)
        expected = evaluate(dataset, bare, category_ids=scheme)
        assert result.category_ids == scheme
        assert result.metrics("federated") == expected.metrics("federated")
        assert "predictions of a planted detector (" + path.stem + ".meta.json)" in result.notes
    # the two readings differ: the meta file decides which classes the detections name
    coco = evaluate(dataset, bare, category_ids="coco").metrics("coco")["AP"]
    assert coco != evaluate(dataset, bare, category_ids="unified").metrics("coco")["AP"]


def test_the_cli_needs_no_flag_and_says_what_made_the_detections(built, tmp_path):
    out, _, preds = built
    path = _declared(write_json(tmp_path / "p.json", preds), model="tiny detector, 2 iterations")
    run = CliRunner().invoke(
        app, ["evaluate", str(out), "-p", str(path), "--out", str(tmp_path / "e")]
    )
    assert run.exit_code == 0, run.output
    doc = json.loads((tmp_path / "e" / "eval.json").read_text())
    assert doc["category_ids"] == "coco"
    assert doc["predictions_path"] == str(path.absolute())
    assert "tiny detector, 2 iterations" in " ".join(run.output.split())


def test_an_explicit_flag_wins_over_the_meta_file(built, tmp_path):
    _, dataset, preds = built
    path = _declared(write_json(tmp_path / "p.json", preds), category_ids="unified")
    assert evaluate(dataset, path, category_ids="coco").category_ids == "coco"


def test_another_taxonomy_or_another_files_ids_are_refused(built, tmp_path):
    _, dataset, preds = built
    path = write_json(tmp_path / "p.json", preds)
    _declared(path, taxonomy_fingerprint="0" * 64)
    with pytest.raises(InputError, match="another taxonomy"):
        evaluate(dataset, path)
    write_meta(path, {"category_ids": None, "ground_truth": "/data/instances_val2017.json"})
    with pytest.raises(InputError, match="--gt /data/instances_val2017.json") as error:
        evaluate(dataset, path)
    assert error.value.file == str(meta_path(path))
    meta_path(path).write_text("{not json")
    with pytest.raises(InputError, match="malformed JSON"):
        evaluate(dataset, path)
    meta_path(path).write_text(
        json.dumps({"schema": "detforge-predictions-meta", "category_ids": "x"})
    )
    with pytest.raises(InputError, match="expected coco, unified or null"):
        evaluate(dataset, path)


def test_browse_reads_the_ids_as_declared_and_finds_the_evaluated_file(built, tmp_path):
    out, dataset, preds = built
    path = _declared(write_json(tmp_path / "p.json", preds), category_ids="unified")
    images = dataset.images.filter(pl.col("split") == "val")
    names = dict(zip(dataset.categories["id"], dataset.categories["name"], strict=True))
    frame = prediction_frame(path, dataset, images, "val")
    assert frame.sort("pred_index")["label"].to_list() == [names[p["category_id"]] for p in preds]
    # the evaluation's own reading wins (it is what its matches were computed with)
    frame = prediction_frame(path, dataset, images, "val", category_ids="coco")
    assert frame.sort("pred_index")["label"].to_list() == [
        names[p["category_id"] - 1] for p in preds
    ]
    elsewhere = tmp_path / "evals" / "val"
    elsewhere.mkdir(parents=True)
    info = {"predictions": path.name, "predictions_path": str(path.absolute())}
    assert find_eval_predictions(elsewhere, info) == path.absolute()
