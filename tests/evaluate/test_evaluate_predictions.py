"""Predictions: both file formats give the same numbers; bad input is a one-line error
with counts and examples, never a silent drop."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from evaluate_synth import make_dataset, make_predictions, pixel_boxes, write_json

from detforge.errors import InputError
from detforge.evaluators import evaluate, load_predictions


@pytest.fixture(scope="module")
def case():
    dataset = make_dataset(1, images=20, classes=6)
    return dataset, make_predictions(dataset, 1)


def load(dataset, path, **kwargs):
    images = dataset.images.filter(pl.col("split") == "val")
    return load_predictions(path, images, dataset.categories["id"], split="val", **kwargs)


def error(dataset, tmp_path, data, name="p.json", **kwargs) -> str:
    path = tmp_path / name
    if isinstance(data, (bytes, str)):
        path.write_text(data if isinstance(data, str) else data.decode())
    else:
        write_json(path, data)
    with pytest.raises(InputError) as raised:
        load(dataset, path, **kwargs)
    message = str(raised.value)
    assert "\n" not in message and message.startswith(str(path))
    return message


def test_json_and_both_parquet_layouts_give_the_same_metrics(case, tmp_path):
    dataset, preds = case
    frame = pl.DataFrame(preds).with_columns(label=pl.col("category_id") - 1).drop("category_id")
    # normalised xyxy, computed exactly like the dataset's own boxes (inside the image)
    size = dataset.images.select("image_id", "width", "height")
    b = [pl.col("bbox").list.get(i) for i in range(4)]
    frame = frame.join(size, on="image_id", maintain_order="left").with_columns(
        pl.concat_list(
            b[0],
            b[1],
            pl.min_horizontal(b[2], pl.col("width") - b[0]),
            pl.min_horizontal(b[3], pl.col("height") - b[1]),
        ).alias("bbox")
    )
    preds = frame.select(pl.col("label").add(1).alias("category_id"), "bbox", "image_id", "score")
    preds = preds.to_dicts()
    frame.select("image_id", "label", "score", pl.col("bbox").alias("bbox_xywh")).write_parquet(
        tmp_path / "xywh.parquet"
    )
    frame.select(
        "image_id",
        "label",
        "score",
        pl.concat_list(
            b[0] / pl.col("width"),
            b[1] / pl.col("height"),
            (b[0] + b[2]) / pl.col("width"),
            (b[1] + b[3]) / pl.col("height"),
        ).alias("bbox"),
    ).write_parquet(tmp_path / "xyxy.parquet")
    results = [
        evaluate(dataset, tmp_path / name, protocols=["coco"]).metrics("coco")
        for name in ("xywh.parquet", "xyxy.parquet")
    ]
    results.append(
        evaluate(
            dataset, write_json(tmp_path / "p.json", preds), protocols=["coco"], category_ids="coco"
        ).metrics("coco")
    )
    for other in results[1:]:
        np.testing.assert_allclose(list(results[0].values()), list(other.values()), atol=1e-9)
    loaded = load(dataset, tmp_path / "xyxy.parquet")
    assert loaded["pred_index"].to_list() == list(range(len(preds)))


def test_unknown_image_ids_are_counted(case, tmp_path):
    dataset, preds = case
    bad = [dict(p, image_id=p["image_id"] + 1) if k % 10 == 0 else p for k, p in enumerate(preds)]
    message = error(dataset, tmp_path, bad)
    expected = sum(1 for k in range(len(preds)) if k % 10 == 0)
    assert f"{expected} detections in p.json have an image_id not in split 'val'" in message
    assert str(preds[0]["image_id"] + 1) in message


def test_every_problem_is_reported_at_once(case, tmp_path):
    dataset, preds = case
    bad = [dict(p) for p in preds[:20]]
    bad[0]["category_id"] = 99
    bad[1]["bbox"] = [1.0, 2.0, float("nan"), 3.0]
    bad[2]["bbox"] = [1.0, 2.0, -3.0, 3.0]
    bad[4]["bbox"] = [1.0, 2.0, 3.0]
    del bad[5]["score"]
    bad[6]["score"] = float("nan")
    text = json.dumps(bad)  # NaN is written as the bare token NaN, as Python's json does
    message = error(dataset, tmp_path, text, category_ids="coco")
    for part in (
        "1 detections in p.json have a category_id that is not a class of the dataset's COCO "
        "export (unified id + 1) (e.g. category_id 99)",
        "1 detections in p.json have a NaN/infinite bbox (e.g. pred_index 1)",
        "1 detections in p.json have a negative width/height (e.g. pred_index 2)",
        "1 detections in p.json have no 4-number bbox (e.g. pred_index 4)",
        "1 detections in p.json have no score (e.g. pred_index 5)",
        "1 detections in p.json have a NaN score (e.g. pred_index 6)",
    ):
        assert part in message


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty file"),
        ("   \n", "empty file"),
        ("[]", "no detections"),
        ('[{"image_id": 1, ', "malformed JSON"),
        ('{"annotations": []}', "expected a JSON list"),
        ('[{"image_id": "abc", "category_id": 1, "bbox": [1,2,3,4], "score": 1}]', "malformed"),
    ],
)
def test_unreadable_files(case, tmp_path, text, reason):
    dataset, _ = case
    assert reason in error(dataset, tmp_path, text)


def test_parquet_without_a_box_column(case, tmp_path):
    dataset, _ = case
    pl.DataFrame({"image_id": [1], "label": [1], "score": [0.5]}).write_parquet(
        tmp_path / "p.parquet"
    )
    with pytest.raises(InputError, match="missing column.*bbox"):
        load(dataset, tmp_path / "p.parquet")


def test_source_labels_through_a_mapping(case, tmp_path):
    dataset, preds = case
    # the source numbers its classes 101..106 and has a class 107 the taxonomy drops
    mapping = pl.DataFrame(
        {"source_label": [str(101 + c) for c in range(7)], "label": [*range(6), None]},
        schema={"source_label": pl.String, "label": pl.Int32},
    )
    shifted = [dict(p, category_id=p["category_id"] + 100) for p in preds]
    path = write_json(tmp_path / "src.json", shifted)
    mapped = evaluate(dataset, path, protocols=["coco"], mapping=mapping).metrics("coco")
    direct = evaluate(dataset, write_json(tmp_path / "u.json", preds), protocols=["coco"])
    assert mapped == direct.metrics("coco")
    shifted[0]["category_id"], shifted[1]["category_id"] = 107, 555
    message = error(dataset, tmp_path, shifted, name="src.json", mapping=mapping)
    assert (
        "1 detections in src.json have a label the taxonomy drops (e.g. category_id 107)" in message
    )
    assert "1 detections in src.json have a source label the taxonomy does not list" in message


def test_ground_truth_boxes_as_predictions_score_one(case, tmp_path):
    dataset, _ = case
    gt = pixel_boxes(dataset).filter(~pl.col("is_crowd"))
    perfect = [
        {
            "image_id": r["image_id"],
            "category_id": r["label"] + 1,
            "score": 0.5 + k * 1e-6,
            "bbox": [r["x"], r["y"], r["w"], r["h"]],
        }
        for k, r in enumerate(gt.iter_rows(named=True))
    ]
    result = evaluate(dataset, write_json(tmp_path / "gt.json", perfect))
    for protocol in ("coco", "lvis", "federated"):
        assert result.metrics(protocol)["AP"] == pytest.approx(1.0)


def test_unified_category_ids_read_without_the_coco_offset(case, tmp_path):
    dataset, preds = case
    unified = [dict(p, category_id=p["category_id"] - 1) for p in preds]
    path = write_json(tmp_path / "unified.json", unified)
    as_unified = evaluate(dataset, path, protocols=["coco"], category_ids="unified")
    as_coco = evaluate(dataset, write_json(tmp_path / "coco.json", preds), protocols=["coco"])
    assert as_unified.metrics("coco") == as_coco.metrics("coco")
    # COCO-numbered ids read as unified ones run past the last class: refused, not shifted
    message = error(dataset, tmp_path, preds, name="s.json", category_ids="unified")
    assert "have a category_id that is not a class of the dataset (e.g. category_id 6)" in message
    message = error(dataset, tmp_path, preds, category_ids="yolo")
    assert "unknown numbering 'yolo'" in message


def test_a_taxonomy_that_numbers_classes_otherwise_is_refused(case):
    from detforge.errors import DetforgeError
    from detforge.evaluators import source_mapping

    dataset, _ = case
    with pytest.raises(DetforgeError, match="does not number classes as the dataset does"):
        source_mapping("coco80", "lvis", dataset.categories)
    bigdet = source_mapping("coco80", "lvis")
    assert bigdet.height > 0


def test_boxes_outside_the_image_and_zero_size_are_scored_as_pycocotools_does(case, tmp_path):
    from evaluate_synth import coco_ground_truth
    from references import assert_equals_pycocotools, pycocotools

    dataset, preds = case
    odd = [dict(p) for p in preds]
    sizes = {i: (w, h) for i, w, h in dataset.images.select("image_id", "width", "height").rows()}
    for k, p in enumerate(odd[:30]):
        x, y, w, h = p["bbox"]
        p["bbox"] = [
            [-0.4, y, w, h],  # the case that made the whole file refused
            [sizes[p["image_id"]][0] - w / 2, y, w, h],
            [x, y, 0.0, h],
        ][k % 3]
    path = write_json(tmp_path / "odd.json", odd)
    result = evaluate(dataset, path, protocols=["coco"], category_ids="coco")
    outside = sum(
        x < 0 or y < 0 or x + w > sizes[p["image_id"]][0] or y + h > sizes[p["image_id"]][1]
        for p in odd
        for x, y, w, h in [p["bbox"]]
    )
    assert result.counts["detections_outside_image"] == outside >= 20
    assert result.counts["detections_zero_size"] == 10
    assert any("outside their image" in note for note in result.all_notes())
    assert_equals_pycocotools(result, pycocotools(coco_ground_truth(dataset), odd), 1)


@pytest.mark.parametrize(
    ("column", "values", "reason"),
    [
        ("bbox", [[12.0, 40.0, 300.0, 200.0]], "normalised coordinates outside [0, 1]"),
        ("label", [1.5], "non-integer class id (e.g. 1.5)"),
        ("image_id", ["a12"], "column has type String, expected integers (e.g. 'a12')"),
        ("score", ["high"], "column has type String, expected numbers (e.g. 'high')"),
        ("bbox", ["0 0 1 1"], "expected a list of 4 numbers"),
    ],
)
def test_wrong_parquet_values_are_one_line_errors(case, tmp_path, column, values, reason):
    dataset, _ = case
    image_id = int(dataset.images["image_id"][0])
    row = {"image_id": [image_id], "label": [1], "score": [0.5], "bbox": [[0.1, 0.1, 0.5, 0.5]]}
    pl.DataFrame({**row, column: values}).write_parquet(tmp_path / "p.parquet")
    with pytest.raises(InputError) as raised:
        load(dataset, tmp_path / "p.parquet")
    message = str(raised.value)
    assert "\n" not in message and f"field '{column}'" in message and reason in message


def test_category_ids_that_fit_several_id_spaces_are_refused(case, tmp_path):
    """Ids 1..6 fit the COCO export (unified + 1), the unified ids 0..5 and a source's own
    ids 1..365: no guess, one line naming the flags; an explicit choice is scored."""
    dataset, preds = case
    low = [p for p in preds if p["category_id"] < 6]  # never the last class: fits both
    path = write_json(tmp_path / "low.json", low)
    with pytest.raises(InputError, match="could be read as .*export.* or unified ids: pass "):
        evaluate(dataset, path, protocols=["coco"])
    source = pl.DataFrame({"source": "objects365", "source_label": [str(i) for i in range(1, 366)]})
    o365 = dataset.replace(source_categories=source)
    full = write_json(tmp_path / "all.json", preds)  # the last class too: only COCO ids fit
    with pytest.raises(InputError, match="objects365's own ids: pass --category-ids coco"):
        evaluate(o365, full, protocols=["coco"])
    assert evaluate(dataset, full, protocols=["coco"]).category_ids == "coco"
    explicit = evaluate(o365, full, protocols=["coco"], category_ids="coco")
    assert explicit.metrics("coco") == evaluate(dataset, full, protocols=["coco"]).metrics("coco")
