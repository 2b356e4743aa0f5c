"""COCO protocol on generated data: equal to pycocotools' COCOeval, overall, per source, per
class, and the IoU-0.5 matches equal pycocotools' per-image matching. (Real files and the
hard cases: test_evaluate_exact.py.)"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from evaluate_synth import coco_ground_truth, make_dataset, make_predictions, write_json
from references import pycocotools

from detforge.evaluators import evaluate

STATS = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    dataset = make_dataset(3, images=90, classes=25, boxes_per_image=7)
    preds = make_predictions(dataset, 3)
    path = write_json(tmp_path_factory.mktemp("coco") / "preds.json", preds)
    return dataset, preds, evaluate(dataset, path, protocols=["coco"])


def test_generated_data_is_varied(generated):
    dataset, preds, _ = generated
    objects = dataset.objects
    assert objects.height > 500 and len(preds) > 800
    assert objects["is_crowd"].sum() > 5
    assert objects["label"].n_unique() >= 20
    area = objects["area"]
    assert (area < 32**2).sum() > 50 and ((area >= 32**2) & (area < 96**2)).sum() > 50
    assert (area >= 96**2).sum() > 50


def test_coco_equals_pycocotools(generated):
    dataset, preds, result = generated
    ref = pycocotools(coco_ground_truth(dataset), preds)
    ours = result.metrics("coco")
    np.testing.assert_allclose([ours[k] for k in STATS], ref.stats, rtol=0, atol=1e-9)


def test_per_source_equals_pycocotools_on_that_source(generated):
    dataset, preds, result = generated
    per_source = result.protocols["coco"]["per_source"]
    assert set(per_source) == {"objects365", "openimages"}
    for source, ours in per_source.items():
        ids = dataset.images.filter(pl.col("source") == source)["image_id"].to_list()
        ref = pycocotools(coco_ground_truth(dataset), preds, ids)
        np.testing.assert_allclose([ours[k] for k in STATS], ref.stats, rtol=0, atol=1e-9)
    assert per_source["objects365"]["AP"] != per_source["openimages"]["AP"]


def test_per_class_equals_pycocotools(generated):
    dataset, preds, result = generated
    ref = pycocotools(coco_ground_truth(dataset), preds)
    table = result.protocols["coco"]["per_class"]
    precision = ref.eval["precision"][:, :, :, 0, -1]
    for row in table.iter_rows(named=True):
        k = ref.params.catIds.index(row["label"] + 1)
        p = precision[:, :, k]
        assert row["AP"] == pytest.approx(p[p > -1].mean(), abs=1e-9)
        assert row["AP50"] == pytest.approx(p[0][p[0] > -1].mean(), abs=1e-9)
    gt_labels = set(dataset.objects.filter(~pl.col("is_crowd"))["label"].to_list())
    assert set(table["label"].to_list()) == set(dataset.objects["label"].to_list()) >= gt_labels
    assert table["boxes"].sum() == dataset.objects.filter(~pl.col("is_crowd")).height


def test_matches_equal_pycocotools_matching_at_iou_half(generated):
    dataset, preds, result = generated
    ref = pycocotools(coco_ground_truth(dataset), preds)
    expected: dict[int, str] = {}
    for e in ref.evalImgs:
        if e is None or e["aRng"] != ref.params.areaRng[0]:
            continue
        for d, dt_id in enumerate(e["dtIds"]):
            ignored, matched = e["dtIgnore"][0, d], e["dtMatches"][0, d] > 0
            expected[dt_id - 1] = "ignored" if ignored else ("TP" if matched else "FP")
    rows = result.matches().filter(pl.col("pred_index").is_not_null())
    assert rows.height == len(preds)
    got = dict(zip(rows["pred_index"].to_list(), rows["status"].to_list(), strict=True))
    evaluated = {i: s for i, s in got.items() if i in expected}
    assert evaluated == expected
    # detections pycocotools never looked at are ignored, each with its reason
    rest = rows.filter(~pl.col("pred_index").is_in(list(expected)))
    assert set(rest["status"].to_list()) <= {"ignored"}
    assert rest["reason"].null_count() == 0
    # every non-crowd box is matched (TP) or missed (FN), once
    fn = result.matches().filter(pl.col("status") == "FN").height
    tp = rows.filter(pl.col("status") == "TP").height
    assert tp + fn == dataset.objects.filter(~pl.col("is_crowd")).height
    assert rows.filter(pl.col("status") == "TP")["iou"].min() >= 0.5
