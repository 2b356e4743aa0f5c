"""The browse dataset: samples, labels, evaluation and saved views hold exactly the planted
cases; re-running replaces it under the same name; bad input gives one clear error."""

from __future__ import annotations

import json
import shutil

import polars as pl
import pytest

from detforge.errors import DetforgeError, InputError
from detforge.inspection.build import build_browse_dataset
from tests.browse.planted import PLANTED, image_id


def _ids(view) -> set[int]:
    return set(view.values("image_id"))


@pytest.fixture(scope="module")
def browsed(fo, planted):
    result = build_browse_dataset(
        planted["out"],
        predictions=planted["predictions"],
        probe_run=planted["probe_run"],
        name="planted",
    )
    return result, fo.load_dataset("planted")


def test_samples_and_ground_truth(browsed):
    result, ds = browsed
    # 6 kept images + the removed duplicate copy + the contaminated training image
    assert result.samples == len(ds) == 8
    v3 = ds.match({"image_id": PLANTED["conflict_image"]}).first()
    assert sorted(v3.tags) == ["coco", "val"]
    labels = {d.source: d.label for d in v3.ground_truth.detections}
    assert labels == {"coco": "person", "objects365": "lamp"}
    box = next(d for d in v3.ground_truth.detections if d.source == "coco").bounding_box
    assert box == pytest.approx([20 / 160, 20 / 120, 80 / 160, 80 / 120], abs=1e-6)
    v4 = ds.match({"image_id": PLANTED["dup_kept"]}).first()
    (carried,) = v4.ground_truth.detections
    assert carried.carried is True and carried.origin_image_id == PLANTED["dup_removed"]
    v5 = ds.match({"image_id": image_id("v5")}).first()
    assert [d.label for d in v5.ground_truth.detections] == ["person"]
    # a build keeps no boxes of dropped classes: there is no field for them
    assert "dropped" not in ds.get_field_schema()
    assert v5.quarantine == ["instances_val.json bbox: box outside the image"]
    removed = ds.match({"image_id": PLANTED["contaminated"]}).first()
    assert removed.decontaminated is True and "removed:contamination" in removed.tags


def test_views_hold_exactly_the_planted_cases(browsed):
    result, ds = browsed
    assert set(ds.list_saved_views()) == {
        "label-conflicts",
        "near-duplicate-groups",
        "decontaminated",
        "high-confidence-false-positives",
        "rare-class-misses",
        "probe-failures-counting",
    }
    fp = ds.load_saved_view("high-confidence-false-positives")
    assert _ids(fp) == {PLANTED["fp_image"]}
    # without an evaluation folder, the lamp COCO does not annotate counts as a false positive
    assert sorted(fp.values("predictions.detections.pred_index", unwind=True)) == [
        PLANTED["fp_pred_index"],
        PLANTED["fed_ignored_pred_index"],
    ]
    miss = ds.load_saved_view("rare-class-misses")
    assert _ids(miss) == {PLANTED["miss_image"]}
    assert miss.values("ground_truth.detections.label", unwind=True) == ["zebra"]
    conflicts = ds.load_saved_view("label-conflicts")
    assert _ids(conflicts) == {PLANTED["conflict_image"]}
    assert sorted(conflicts.values("ground_truth.detections.label", unwind=True)) == [
        "lamp",
        "person",
    ]
    dups = ds.load_saved_view("near-duplicate-groups")
    assert len(dups) == 1  # one group, shown side by side
    (group,) = dups.iter_dynamic_groups()
    assert group.values("image_id") == sorted([PLANTED["dup_kept"], PLANTED["dup_removed"]])
    assert _ids(ds.load_saved_view("decontaminated")) == {PLANTED["contaminated"]}
    probe = ds.load_saved_view("probe-failures-counting")
    assert _ids(probe) == {PLANTED["probe_fail_image"]}
    (item,) = probe.values("probe_failures.classifications", unwind=True)
    assert (item.item_id, item.caption, item.foil) == (2, "one person", "three persons")
    assert item.score_caption == pytest.approx(0.1) and item.blind_score == pytest.approx(-0.3)
    assert probe.values("probe_boxes.detections.class_name", unwind=True) == ["person"]
    assert result.views["high-confidence-false-positives"] == 1


def test_evaluation_counts_per_sample(browsed):
    _, ds = browsed
    v1 = ds.match({"image_id": PLANTED["fp_image"]}).first()
    assert (v1.eval_tp, v1.eval_fp, v1.eval_fn) == (1, 2, 0)
    v2 = ds.match({"image_id": PLANTED["miss_image"]}).first()
    assert (v2.eval_tp, v2.eval_fp, v2.eval_fn) == (1, 0, 1)
    assert ds.list_evaluations() == ["eval"]


def test_rerun_replaces_it_under_the_same_name(fo, browsed, planted):
    _, ds = browsed
    ds.description = "my notes on this build"
    ds.app_config.grid_media_field = "filepath"
    ds.save()
    build_browse_dataset(planted["out"], predictions=planted["predictions"], name="planted")
    again = fo.load_dataset("planted")
    # no copy, no temporary left beside it
    assert [n for n in fo.list_datasets() if n.split(".")[0] == "planted"] == ["planted"]
    assert len(again) == 8 and again.persistent
    # the App settings and description a user gave it carry over
    assert again.description == "my notes on this build"
    assert again.app_config.grid_media_field == "filepath"
    # this run had no probe run: its view is gone, the others are rebuilt
    assert "probe-failures-counting" not in again.list_saved_views()
    assert len(again.load_saved_view("high-confidence-false-positives")) == 1


def test_eval_dir_adds_federated_flags(fo, planted, tmp_path):
    from detforge.dataset import DetDataset
    from detforge.evaluators import evaluate, write

    tables = DetDataset.read(planted["out"] / "tables")
    eval_dir = tmp_path / "eval"
    write(evaluate(tables, planted["predictions"], split="val"), eval_dir)
    shutil.copy(planted["predictions"], eval_dir / planted["predictions"].name)
    result = build_browse_dataset(planted["out"], eval_dir=eval_dir, name="planted-eval")
    ds = fo.load_dataset("planted-eval")
    assert ds.distinct("split") == ["train", "val"]  # removed train copies are kept visible
    matches = pl.read_parquet(eval_dir / "matches.parquet")
    fed = matches.filter(pl.col("protocol") == "federated")
    statuses = fed.group_by("status").len()
    shown = ds.match({"removed": None})
    for status, count in statuses.iter_rows():
        want = status.lower()
        got = shown.filter_labels("predictions", {"$eq": ["$$this.fed", want]}).count(
            "predictions.detections"
        ) + shown.filter_labels("ground_truth", {"$eq": ["$$this.fed", want]}).count(
            "ground_truth.detections"
        )
        assert got == count, status
    assert sum(ds.values("fed_fp")) == statuses.filter(pl.col("status") == "FP")["len"].sum()
    assert result.views["high-confidence-false-positives"] == 1
    fp = ds.load_saved_view("high-confidence-false-positives")
    assert fp.values("predictions.detections.pred_index", unwind=True) == [PLANTED["fp_pred_index"]]
    ignored = ds.match({"image_id": PLANTED["fp_image"]}).first().predictions.detections
    lamp = next(d for d in ignored if d.pred_index == PLANTED["fed_ignored_pred_index"])
    assert (lamp.eval, lamp.fed, lamp.fed_reason) == (
        "fp",
        "ignored",
        "class not annotated on image",
    )


def test_predictions_of_another_dataset(fo, planted, tmp_path):
    other = tmp_path / "other.json"
    other.write_text(
        json.dumps([{"image_id": 12345, "category_id": 1, "bbox": [1, 1, 5, 5], "score": 0.5}])
    )
    with pytest.raises(InputError, match="image_id not in split"):
        build_browse_dataset(planted["out"], predictions=other, name="bad")
    assert not fo.dataset_exists("bad")


def test_probe_run_of_another_dataset(planted, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    frame = pl.read_parquet(planted["probe_run"] / "predictions.parquet")
    frame.with_columns(image_id=pl.lit(7, pl.Int64)).write_parquet(run / "predictions.parquet")
    with pytest.raises(InputError, match="images the dataset does not hold"):
        build_browse_dataset(planted["out"], probe_run=run, name="bad")


def test_missing_image_file(planted, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(planted["out"], out)
    from detforge.dataset import DetDataset

    tables = DetDataset.read(out / "tables")
    moved = tmp_path / "images"
    shutil.copytree(planted["out"] / "images", moved)
    (moved / "v3.jpg").unlink()
    tables.replace(roots={"coco": str(moved), "objects365": str(moved)}).write(out / "tables")
    with pytest.raises(InputError, match=r"image_id \d+.*v3\.jpg not found \(1 of 8"):
        build_browse_dataset(out, name="bad")


def test_unknown_split_and_folder(planted, tmp_path):
    with pytest.raises(DetforgeError, match="no images in split 'test'"):
        build_browse_dataset(planted["out"], split="test", name="bad")
    with pytest.raises(DetforgeError, match="no detforge dataset here"):
        build_browse_dataset(tmp_path, name="bad")


def test_boxes_without_a_unified_label(fo, planted, tmp_path):
    from detforge.dataset import DetDataset

    out = tmp_path / "out"
    tables = DetDataset.read(planted["out"] / "tables")
    unmapped = tables.objects.with_columns(
        label=pl.when(pl.col("source") == "objects365").then(None).otherwise(pl.col("label"))
    )
    tables.replace(objects=unmapped).write(out / "tables")
    with pytest.raises(InputError, match=r"objects\.parquet, field 'label': 1 box\(es\) have no"):
        build_browse_dataset(out, name="unmapped")
    assert not fo.dataset_exists("unmapped")
