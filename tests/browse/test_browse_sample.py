"""Browse the built-in sample after a real build: the views hold its planted duplicates and
contaminated image, plus a planted false positive, a rare-class miss and a failed probe item."""

from __future__ import annotations

import json

import polars as pl
import pytest
from typer.testing import CliRunner

from detforge.cli import app
from detforge.dataset import DetDataset
from detforge.evaluators.federated import frequency_bins
from detforge.evaluators.predictions import CATEGORY_ID_OFFSET
from detforge.inspection.build import build_browse_dataset


@pytest.fixture(scope="module")
def sample_build(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample-build") / "out"
    run = CliRunner().invoke(app, ["build-dataset", "--out", str(out)])
    assert run.exit_code == 0, run.output
    planted = json.loads((out / ".sample" / "planted.json").read_text())
    return out, DetDataset.read(out / "tables"), {c["case"]: c for c in planted["cases"]}


def _image(tables: DetDataset, source: str, source_image_id: str) -> int:
    row = tables.images.filter(
        (pl.col("source") == source) & (pl.col("source_image_id") == source_image_id)
    )
    return row["image_id"].item()


def _keys(view) -> set[tuple[str, str]]:
    return set(zip(view.values("source"), view.values("source_image_id"), strict=True))


def test_sample_views(fo, sample_build, tmp_path):
    out, tables, cases = sample_build
    rare_image = cases["rare_class_val"]["images"][0]
    miss_image = _image(tables, rare_image["source"], rare_image["source_image_id"])
    counting = next(i for i in cases["counting"]["images"] if i["split"] == "val")
    probe_image = _image(tables, counting["source"], counting["source_image_id"])
    rare_name = "ping-pong_ball"
    assert rare_name in cases["rare_class_val"]["what"]
    rare = tables.categories.filter(pl.col("name") == rare_name)["id"]
    assert (
        frequency_bins(tables).filter(pl.col("label").is_in(rare.implode()))["frequency"][0] == "r"
    )
    val = tables.images.filter(pl.col("split") == "val").select("image_id", "width", "height")
    gt = tables.objects.join(val, on="image_id").filter(pl.col("label").is_not_null())
    # every val box detected exactly, but the rare-class boxes of the planted image missed
    found = gt.filter(~((pl.col("image_id") == miss_image) & pl.col("label").is_in(rare.implode())))
    b = pl.col("bbox")
    dets = found.select(
        "image_id",
        (pl.col("label") + CATEGORY_ID_OFFSET).alias("category_id"),
        pl.concat_list(
            b.arr.get(0) * pl.col("width"),
            b.arr.get(1) * pl.col("height"),
            (b.arr.get(2) - b.arr.get(0)) * pl.col("width"),
            (b.arr.get(3) - b.arr.get(1)) * pl.col("height"),
        ).alias("bbox"),
        pl.lit(0.8).alias("score"),
    ).to_dicts()
    # the planted false positive: a confident box of a class the image does not show
    fp_image = probe_image
    absent = gt.filter(
        ~pl.col("label").is_in(gt.filter(pl.col("image_id") == fp_image)["label"].implode())
    )
    fp = {"image_id": fp_image, "category_id": int(absent["label"][0]) + CATEGORY_ID_OFFSET}
    dets.append({**fp, "bbox": [1.0, 1.0, 20.0, 20.0], "score": 0.99})
    preds = tmp_path / "preds.json"
    preds.write_text(json.dumps(dets))
    boxes = tables.objects.filter(pl.col("image_id") == probe_image)["object_id"].to_list()
    run = tmp_path / "run"
    run.mkdir()
    pl.DataFrame(
        {
            "item_id": [10, 11],
            "task": ["counting", "counting"],
            "image_id": [probe_image, miss_image],
            "object_ids": [boxes, []],
            "caption": ["three dogs", "no dog"],
            "foil": ["two dogs", "a dog"],
            "correct": [False, True],
        }
    ).write_parquet(run / "predictions.parquet")

    build_browse_dataset(out, predictions=preds, probe_run=run, name="sample")
    ds = fo.load_dataset("sample")
    assert set(ds.load_saved_view("high-confidence-false-positives").values("image_id")) == {
        fp_image
    }
    misses = ds.load_saved_view("rare-class-misses")
    assert set(misses.values("image_id")) == {miss_image}
    assert set(misses.values("ground_truth.detections.label", unwind=True)) == {rare_name}
    groups = [
        _keys(group) for group in ds.load_saved_view("near-duplicate-groups").iter_dynamic_groups()
    ]
    planted_pairs = [
        {(i["source"], i["source_image_id"]) for i in cases[c]["images"]}
        for c in ("same_photo", "exact_duplicate", "cropped_copy")
    ]
    assert sorted(groups, key=sorted) == sorted(planted_pairs, key=sorted)
    dirty = cases["contaminated"]["images"][0]
    assert _keys(ds.load_saved_view("decontaminated")) == {
        (dirty["source"], dirty["source_image_id"])
    }
    probe = ds.load_saved_view("probe-failures-counting")
    assert set(probe.values("image_id")) == {probe_image}
    assert len(probe.values("probe_boxes.detections", unwind=True)) == len(boxes)
