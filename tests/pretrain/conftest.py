"""Tiny COCO-format data for the pre-training benchmark: a 'build' and a downstream set."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image

from detforge import schema
from detforge.dataset import DetDataset

COLOURS = {"red_box": (220, 30, 30), "blue_box": (30, 30, 220)}


def write_coco(
    root: Path, split: str, count: int, seed: int, classes: list[str], first_id: int = 1
) -> Path:
    """``count`` 96×64 images (ids from ``first_id``) with one to two coloured rectangles,
    and their COCO file."""
    rng = np.random.default_rng(seed)
    (root / split).mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for index in range(count):
        pixels = np.full((64, 96, 3), 200, np.uint8)
        for _ in range(1 + index % 2):
            label = int(rng.integers(len(classes)))
            x, y = int(rng.integers(0, 56)), int(rng.integers(0, 32))
            w, h = int(rng.integers(20, 40)), int(rng.integers(16, 32))
            pixels[y : y + h, x : x + w] = COLOURS[classes[label]]
            annotations.append(
                {
                    "id": (first_id - 1) * 1000 + len(annotations) + 1,
                    "image_id": first_id + index,
                    "category_id": label + 1,
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }  # fmt: skip
            )
        name = f"{split}/{index:04d}.jpg"
        Image.fromarray(pixels).save(root / name, quality=95)
        images.append({"id": first_id + index, "file_name": name, "width": 96, "height": 64})
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(classes)]
    path = root / f"{split}.json"
    path.write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories})
    )
    return path


def tables_from_coco(coco: dict, split: str = "train") -> DetDataset:
    """The build's tables as the export was made from them (unified id = COCO id - 1)."""
    images = pl.DataFrame(coco["images"]).select(
        pl.col("id").alias("image_id"), pl.lit("sample").alias("source"),
        pl.col("id").cast(pl.String).alias("source_image_id"), "file_name", "width", "height",
        pl.lit(split).alias("split"),
    )  # fmt: skip
    boxes = pl.DataFrame(coco["annotations"])
    x, y, w, h = (pl.col("bbox").list.get(i) for i in range(4))
    objects = boxes.join(images.select("image_id", "width", "height"), on="image_id").select(
        "image_id", pl.col("id").alias("object_id"), pl.lit("sample").alias("source"),
        pl.col("category_id").cast(pl.String).alias("source_label"),
        (pl.col("category_id") - 1).alias("label"),
        schema.bbox_from_columns(x / pl.col("width"), y / pl.col("height"),
                                 (x + w) / pl.col("width"), (y + h) / pl.col("height")),
    )  # fmt: skip
    categories = pl.DataFrame(
        {
            "id": [c["id"] - 1 for c in coco["categories"]],
            "name": [c["name"] for c in coco["categories"]],
        }
    )
    return DetDataset(images=images, objects=objects, categories=categories)


@pytest.fixture(scope="session")
def tiny_benchmark_data(tmp_path_factory):
    """A build directory in the COCO-export layout and a downstream COCO set.

    The downstream val images are also the build's val split (numbered as its COCO export,
    unified id + 1), as when a benchmark tests on the build's own val split: its
    predictions can then be scored on the build too."""
    root = tmp_path_factory.mktemp("pretrain")
    source_root = root / "source_images"
    coco = root / "build" / "coco"
    coco.mkdir(parents=True)
    train = write_coco(source_root, "train", 8, 0, ["red_box", "blue_box"])
    (coco / "train.json").write_text(train.read_text().replace('"train/', '"sample/train/'))
    (coco / "roots.json").write_text(json.dumps({"sample": str(source_root)}))
    downstream = root / "downstream"
    val = write_coco(downstream, "val", 4, 2, ["red_box", "blue_box"], first_id=101)
    # the build was decontaminated against the downstream val set, as a real one would be
    digest = hashlib.sha256(val.read_bytes()).hexdigest()
    meta = {"decontaminated_against": {"downstream": {"annotations": str(val), "sha256": digest}}}
    train_tables = tables_from_coco(json.loads(train.read_text()))
    val_tables = tables_from_coco(json.loads(val.read_text()), split="val")
    tables = train_tables.replace(
        images=pl.concat([train_tables.images, val_tables.images]),
        objects=pl.concat([train_tables.objects, val_tables.objects]),
        meta=meta,
    )
    tables.write(root / "build" / "tables")
    return {
        "build_dir": root / "build",
        "downstream_train": write_coco(downstream, "train", 8, 1, ["red_box", "blue_box"]),
        "downstream_val": val,
        "downstream_images": downstream,
    }
