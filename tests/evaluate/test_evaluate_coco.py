"""COCO protocol: equal to pycocotools' COCOeval to 1e-6, overall, per source, per class,
and the IoU-0.5 matches equal pycocotools' per-image matching."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import polars as pl
import pytest
from evaluate_synth import coco_ground_truth, make_dataset, make_predictions, write_json
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from detforge.dataset import DetDataset
from detforge.evaluators import evaluate

STATS = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]


def reference(gt: dict, preds: list[dict], image_ids: list[int] | None = None) -> COCOeval:
    """pycocotools on the same ground truth and detections."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = json.loads(json.dumps(gt))
        coco.createIndex()
        dt = coco.loadRes(json.loads(json.dumps(preds)))
        ev = COCOeval(coco, dt, "bbox")
        if image_ids is not None:
            ev.params.imgIds = image_ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


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
    ref = reference(coco_ground_truth(dataset), preds)
    ours = result.metrics("coco")
    np.testing.assert_allclose([ours[k] for k in STATS], ref.stats, rtol=0, atol=1e-6)


def test_per_source_equals_pycocotools_on_that_source(generated):
    dataset, preds, result = generated
    per_source = result.protocols["coco"]["per_source"]
    assert set(per_source) == {"objects365", "openimages"}
    for source, ours in per_source.items():
        ids = dataset.images.filter(pl.col("source") == source)["image_id"].to_list()
        ref = reference(coco_ground_truth(dataset), preds, ids)
        np.testing.assert_allclose([ours[k] for k in STATS], ref.stats, rtol=0, atol=1e-6)
    assert per_source["objects365"]["AP"] != per_source["openimages"]["AP"]


def test_per_class_equals_pycocotools(generated):
    dataset, preds, result = generated
    ref = reference(coco_ground_truth(dataset), preds)
    table = result.protocols["coco"]["per_class"]
    precision = ref.eval["precision"][:, :, :, 0, -1]
    for row in table.iter_rows(named=True):
        k = ref.params.catIds.index(row["label"] + 1)
        p = precision[:, :, k]
        assert row["AP"] == pytest.approx(p[p > -1].mean(), abs=1e-6)
        assert row["AP50"] == pytest.approx(p[0][p[0] > -1].mean(), abs=1e-6)
    gt_labels = set(dataset.objects.filter(~pl.col("is_crowd"))["label"].to_list())
    assert set(table["label"].to_list()) == set(dataset.objects["label"].to_list()) >= gt_labels
    assert table["boxes"].sum() == dataset.objects.filter(~pl.col("is_crowd")).height


def test_matches_equal_pycocotools_matching_at_iou_half(generated):
    dataset, preds, result = generated
    ref = reference(coco_ground_truth(dataset), preds)
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


def coco_file_dataset(gt: dict) -> DetDataset:
    """A real COCO annotation file as a DetDataset (normalised float32 boxes; unified
    ids = COCO ids - 1, so that the file's ids are the export's)."""
    images = pl.DataFrame(gt["images"]).select(
        pl.col("id").alias("image_id"),
        pl.lit("coco").alias("source"),
        pl.col("id").cast(pl.String).alias("source_image_id"),
        "file_name",
        "width",
        "height",
        pl.lit("val").alias("split"),
    )
    anns = pl.DataFrame(
        [
            {k: a[k] for k in ("id", "image_id", "category_id", "bbox", "area", "iscrowd")}
            for a in gt["annotations"]
        ]
    ).join(images.select("image_id", "width", "height"), on="image_id")
    b = [pl.col("bbox").list.get(i) for i in range(4)]
    objects = anns.select(
        "image_id",
        pl.col("id").alias("object_id"),
        pl.lit("coco").alias("source"),
        pl.col("category_id").cast(pl.String).alias("source_label"),
        (pl.col("category_id") - 1).alias("label"),
        pl.concat_list(
            b[0] / pl.col("width"),
            b[1] / pl.col("height"),
            (b[0] + b[2]) / pl.col("width"),
            (b[1] + b[3]) / pl.col("height"),
        ).alias("bbox"),
        "area",
        pl.col("iscrowd").cast(pl.Boolean).alias("is_crowd"),
    )
    categories = pl.DataFrame(gt["categories"]).select(pl.col("id") - 1, "name")
    return DetDataset(images=images, objects=objects, categories=categories)


def jittered(gt: dict, seed: int) -> list[dict]:
    """Predictions from real boxes: jittered copies, dropped ones, and false positives."""
    rng = np.random.default_rng(seed)
    sizes = {i["id"]: (i["width"], i["height"]) for i in gt["images"]}
    cats = [c["id"] for c in gt["categories"]]
    preds = []
    for a in gt["annotations"]:
        if rng.random() < 0.15:
            continue
        x, y, w, h = a["bbox"]
        dx, dy, dw, dh = rng.normal(0, 0.1, 4) * [w, h, w, h]
        box = [max(x + dx, 0.0), max(y + dy, 0.0), max(w + dw, 1.0), max(h + dh, 1.0)]
        preds.append({"image_id": a["image_id"], "category_id": a["category_id"], "bbox": box})
    for image_id, (width, height) in sizes.items():
        for _ in range(15):
            w, h = rng.uniform(5, width / 2), rng.uniform(5, height / 2)
            box = [rng.uniform(0, width - w), rng.uniform(0, height - h), w, h]
            preds.append({"image_id": image_id, "category_id": int(rng.choice(cats)), "bbox": box})
    for p, s in zip(preds, rng.permutation(len(preds)) / len(preds), strict=True):
        p["score"] = float(s) + 0.001
    return preds


@pytest.mark.parametrize(
    "name",
    [
        "panopticapi_panoptic_coco_detection_format.json",
        "mmpose_test_coco_person_keypoints_val2017.json",
    ],
)
def test_real_coco_annotations_equal_pycocotools(shared_data, tmp_path, name):
    gt = json.loads((shared_data / "images" / "annotations" / name).read_text())
    dataset = coco_file_dataset(gt)
    preds = jittered(gt, seed=len(name))
    result = evaluate(dataset, write_json(tmp_path / "p.json", preds), protocols=["coco"])
    ref = reference(gt, preds)
    ours = result.metrics("coco")
    np.testing.assert_allclose(
        [-1 if ours[k] is None else ours[k] for k in STATS], ref.stats, rtol=0, atol=1e-6
    )
    assert ours["AP"] > 0.05  # a real, non-degenerate score
