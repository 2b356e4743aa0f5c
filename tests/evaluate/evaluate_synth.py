"""Generated ground truth and predictions for the evaluator's tests and benchmark.

Predictions and COCO ground truth use the build's COCO export ids: unified id + 1.

Image sizes are powers of two and boxes integer pixels, so normalised float32 boxes
convert back to exactly the pixel boxes a reference evaluator is given.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from detforge.dataset import DetDataset
from detforge.schema import stable_id

SIZES = (256, 512, 1024)


def make_dataset(
    seed: int = 0,
    *,
    images: int = 60,
    classes: int = 20,
    sources: tuple[str, ...] = ("objects365", "openimages"),
    boxes_per_image: float = 6.0,
    crowd: float = 0.04,
    split: str = "val",
) -> DetDataset:
    """Images of several sources with varied box sizes, crowd boxes and skewed classes."""
    rng = np.random.default_rng(seed)
    image_rows, object_rows = [], []
    weights = 1.0 / np.arange(1, classes + 1)  # a long tail of classes
    weights /= weights.sum()
    for i in range(images):
        source = sources[i % len(sources)]
        width, height = int(rng.choice(SIZES)), int(rng.choice(SIZES))
        image_id = stable_id(source, f"{split}/{seed}/{i}")
        image_rows.append((image_id, source, f"{i}", f"{i}.jpg", width, height, split))
        for k in range(rng.poisson(boxes_per_image)):
            scale = rng.choice([8, 24, 64, 200])  # small / medium / large boxes
            w = int(np.clip(rng.integers(scale // 2, scale * 2 + 1), 1, width))
            h = int(np.clip(rng.integers(scale // 2, scale * 2 + 1), 1, height))
            x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
            label = int(rng.choice(classes, p=weights))
            object_rows.append(
                {
                    "image_id": image_id,
                    "object_id": stable_id(source, f"{split}/{seed}/{i}/{k}"),
                    "source": source,
                    "source_label": str(label),
                    "label": label,
                    "bbox": [x / width, y / height, (x + w) / width, (y + h) / height],
                    "area": float(w * h),
                    "is_crowd": bool(rng.random() < crowd),
                }
            )
    columns = ["image_id", "source", "source_image_id", "file_name", "width", "height", "split"]
    categories = pl.DataFrame(
        {"id": list(range(classes)), "name": [f"class{c}" for c in range(classes)]}
    )
    return DetDataset(
        images=pl.DataFrame(image_rows, schema=columns, orient="row"),
        objects=pl.DataFrame(object_rows, schema_overrides={"bbox": pl.List(pl.Float64)}),
        categories=categories,
    )


def pixel_boxes(dataset: DetDataset) -> pl.DataFrame:
    """Ground truth with absolute pixel xywh (what a COCO file holds)."""
    size = dataset.images.select("image_id", "width", "height")
    b = [pl.col("bbox").arr.get(i).cast(pl.Float64) for i in range(4)]
    return dataset.objects.join(size, on="image_id").select(
        "image_id",
        "object_id",
        "label",
        "area",
        "is_crowd",
        (b[0] * pl.col("width")).alias("x"),
        (b[1] * pl.col("height")).alias("y"),
        ((b[2] - b[0]) * pl.col("width")).alias("w"),
        ((b[3] - b[1]) * pl.col("height")).alias("h"),
        "width",
        "height",
    )


def make_predictions(
    dataset: DetDataset, seed: int = 0, *, recall: float = 0.8, false_positives: float = 4.0
) -> list[dict]:
    """COCO results: jittered copies of most boxes (some with a wrong class) plus random
    false positives; scores distinct."""
    rng = np.random.default_rng(seed + 1000)
    classes = dataset.categories.height
    gt = pixel_boxes(dataset)
    keep = rng.random(gt.height) < recall
    hits = gt.filter(pl.Series(keep))
    n = hits.height
    jitter = rng.normal(0, 0.12, size=(n, 4)) * np.stack([hits["w"], hits["h"]] * 2, axis=1)
    x = np.clip(hits["x"].to_numpy() + jitter[:, 0], 0, None)
    y = np.clip(hits["y"].to_numpy() + jitter[:, 1], 0, None)
    w = np.maximum(hits["w"].to_numpy() + jitter[:, 2], 0.5)
    h = np.maximum(hits["h"].to_numpy() + jitter[:, 3], 0.5)
    wrong = rng.random(n) < 0.1
    labels = np.where(wrong, rng.integers(0, classes, n), hits["label"].to_numpy())
    images = dataset.images.select("image_id", "width", "height")
    count = rng.poisson(false_positives, images.height)
    fp_image = np.repeat(images["image_id"].to_numpy(), count)
    width = np.repeat(images["width"].to_numpy(), count).astype(np.float64)
    height = np.repeat(images["height"].to_numpy(), count).astype(np.float64)
    fw, fh = rng.uniform(4, width / 2), rng.uniform(4, height / 2)
    fx, fy = rng.uniform(0, width - fw), rng.uniform(0, height - fh)
    fp_label = rng.integers(0, classes, len(fp_image))
    columns = [
        np.concatenate(pair)
        for pair in (
            (hits["image_id"].to_numpy(), fp_image),
            (labels, fp_label),
            (x, fx),
            (y, fy),
            (w, fw),
            (h, fh),
        )
    ]
    scores = rng.permutation(len(columns[0])) / len(columns[0]) * 0.98 + 0.01
    return [
        {"image_id": i, "category_id": c + 1, "bbox": [a, b, cw, ch], "score": s}
        for i, c, a, b, cw, ch, s in zip(
            *(column.tolist() for column in columns), scores.tolist(), strict=True
        )
    ]


def coco_ground_truth(dataset: DetDataset, *, lvis: bool = False) -> dict:
    """The dataset's split as a COCO (or LVIS) ground-truth dict for a reference evaluator."""
    gt = pixel_boxes(dataset).sort("image_id", "object_id")
    annotations = [
        {
            "id": k + 1,
            "image_id": r["image_id"],
            "category_id": r["label"] + 1,
            "bbox": [r["x"], r["y"], r["w"], r["h"]],
            "area": r["area"],
            **({} if lvis else {"iscrowd": int(r["is_crowd"])}),
        }
        for k, r in enumerate(gt.iter_rows(named=True))
    ]
    images = [
        {"id": i, "width": w, "height": h}
        for i, w, h in dataset.images.select("image_id", "width", "height").iter_rows()
    ]
    if lvis:
        labels = dataset.image_labels
        for image in images:
            own = labels.filter(pl.col("image_id") == image["id"])
            for status, key in (
                ("negative", "neg_category_ids"),
                ("not_exhaustive", "not_exhaustive_category_ids"),
            ):
                ids = own.filter(pl.col("status") == status)["label"] + 1
                image[key] = sorted(ids.to_list())
    categories = [
        {"id": c + 1, "name": n, **({"frequency": f} if lvis else {})}
        for c, n, f in dataset.categories.select("id", "name", "frequency").iter_rows()
    ]
    return {"images": images, "annotations": annotations, "categories": categories}


def write_json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path
