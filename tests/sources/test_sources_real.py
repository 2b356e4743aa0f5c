"""Real data: the panoptic COCO-detection file reads as COCO; boxes round-trip to 1e-4 px."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
from PIL import Image

from detforge.schema import stable_id
from detforge.sources import coco
from detforge.sources.coco_boxes import to_coco_xywh

PANOPTIC = "images/annotations/panopticapi_panoptic_coco_detection_format.json"


def test_panoptic_detection_file_reads_as_coco(shared_data):
    path = shared_data / PANOPTIC
    # the photos sit beside it under other names (coco_val2017_<id>.jpg), one is absent:
    # read annotations only, then check sizes against the real photo's header
    dataset = coco.read(path, "val", images_root=shared_data / "images", check_files=False)
    raw = json.loads(path.read_text())
    assert dataset.validate() == []
    assert dataset.images.height == len(raw["images"]) == 2
    assert dataset.objects.height + dataset.quarantine.height == len(raw["annotations"])
    assert dataset.source_categories.height == 133
    assert dataset.objects.filter(pl.col("is_crowd")).height == sum(
        a["iscrowd"] for a in raw["annotations"]
    )
    row = dataset.images.filter(pl.col("source_image_id") == "439180").row(0, named=True)
    photo = Image.open(shared_data / "images" / "coco_val2017_000000439180.jpg")
    assert (row["width"], row["height"]) == photo.size == (640, 360)
    per_image = dataset.objects.group_by("image_id").len()
    counts = dict(zip(per_image["image_id"], per_image["len"], strict=True))
    assert counts[row["image_id"]] == sum(a["image_id"] == 439180 for a in raw["annotations"]) == 32


def test_boxes_round_trip_to_coco_xywh(shared_data):
    path = shared_data / PANOPTIC
    dataset = coco.read(path, "val", check_files=False)
    raw = json.loads(path.read_text())
    by_id = {a["id"]: a for a in raw["annotations"]}
    assert len(by_id) == len(raw["annotations"])
    back = to_coco_xywh(dataset.objects, dataset.images)
    # object ids are stable hashes of "<split>/<annotation id>": map back to the source ids
    source_of = {stable_id("coco", f"val/{i}"): i for i in by_id}
    got = np.array(back["coco_bbox"].to_list())
    want = np.array([by_id[source_of[o]]["bbox"] for o in back["object_id"]])
    assert got.shape == (len(by_id), 4)
    assert np.abs(got - want).max() < 1e-4


def test_to_coco_xywh_unknown_image_gives_null(shared_data):
    dataset = coco.read(shared_data / PANOPTIC, "val", check_files=False)
    back = to_coco_xywh(dataset.objects, dataset.images.head(0))
    assert back["coco_bbox"].null_count() == back.height
    assert back.columns[: len(dataset.objects.columns)] == dataset.objects.columns
