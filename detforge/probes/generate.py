"""Probe-set generation from a built dataset's boxes, image labels and label coverage.

Every negative fact an item states ("there is no c", "0 c", a foil class absent) comes from
a verified negative: an image label with status ``negative``, or ``c`` in the exhaustive
label space of the image's source with no box of ``c`` on the image. Mere absence of a box
is never read as absence. Items are balanced per label within each class (or ordered class
pair) and split, so that no class prior answers them; splits are by image.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from detforge.dataset import DetDataset
from detforge.probes import captions as cap
from detforge.probes import tasks as make
from detforge.probes.probeset import LABELS, TASKS, ProbeError, ProbeSet, make_probeset
from detforge.probes.tasks import PAIR, hash_np, hash_series


def _balance(items: pl.DataFrame, keys: list[str], seed: int, max_per_label: int) -> pl.DataFrame:
    """Keep, per key, the same number of items of each label (at least two labels per key)."""
    if items.is_empty():
        return items
    quota = (
        items.group_by([*keys, "label"])
        .len()
        .group_by(keys)
        .agg(pl.col("len").min().alias("_n"), pl.len().alias("_k"))
        .filter(pl.col("_k") >= 2)
    )
    ranked = items.with_columns(_r=hash_series(items, ["item_id"], seed))
    return (
        ranked.join(quota, on=keys)
        .with_columns(_i=pl.col("_r").rank("ordinal").over([*keys, "label"]))
        .filter(pl.col("_i") <= pl.min_horizontal("_n", pl.lit(max_per_label)))
        .drop("_r", "_n", "_k", "_i")
    )


def _finish(frame: pl.DataFrame, task: str, images: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Fill ids, label names and image columns of one task's items."""
    frame = frame.with_columns(task=pl.lit(task))
    for column, dtype in (("class_b", pl.Int32), ("foil_class", pl.Int32)):
        if column not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype).alias(column))
    if "flip" not in frame.columns:
        frame = frame.with_columns(flip=pl.lit(False))
    code = TASKS.index(task) + 1
    frame = frame.with_columns(_task=pl.lit(code), _flip=pl.col("flip").cast(pl.Int64))
    keys = ["_task", "image_id", "_flip", "class_a", "class_b", "foil_class"]
    frame = frame.with_columns(
        item_id=pl.Series((hash_np(frame, keys, seed) >> np.uint64(1)).astype(np.int64))
    )
    names = pl.Series(LABELS[task])
    return (
        frame.drop("_task", "_flip")
        .with_columns(
            label=pl.col("label").cast(pl.Int32),
            label_name=pl.col("label").map_elements(lambda i: names[i], return_dtype=pl.String),
        )
        .join(images.select("image_id", "source", "file_name", "split"), on="image_id")
    )


def generate(
    dataset: DetDataset,
    *,
    seed: int = 0,
    tasks: Sequence[str] = TASKS,
    max_images: int | None = 5000,
    max_per_label: int = 200,
    margin: float = 0.1,
    size_ratio: float = 1.5,
    split_fractions: tuple[float, float] = (0.6, 0.2),
    source_path: str | Path | None = None,
) -> ProbeSet:
    """Generate the probe items of ``tasks`` from ``dataset`` (deterministic for ``seed``).

    ``max_images`` caps the images sampled (by a seeded hash); ``max_per_label`` caps the
    items per label within one class or class pair; ``margin`` is the minimum distance of
    box centres (normalised units) for a spatial relation; ``size_ratio`` the minimum area
    ratio for a size item; ``split_fractions`` the train and val shares (the rest is test).
    """
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ProbeError(f"unknown task(s) {unknown}; known: {', '.join(TASKS)}")
    if dataset.categories.is_empty():
        raise ProbeError("the dataset has no categories: build it with a taxonomy first")
    images = dataset.images.select("image_id", "source", "file_name")
    if max_images and images.height > max_images:
        images = images.with_columns(_r=hash_series(images, ["image_id"], seed)).sort("_r")
        images = images.head(max_images).drop("_r")
    u = hash_series(images, ["image_id"], seed + 1).cast(pl.Float64) / 2.0**64
    train, val = split_fractions
    images = images.with_columns(
        split=pl.when(u < train)
        .then(pl.lit("train"))
        .when(u < train + val)
        .then(pl.lit("val"))
        .otherwise(pl.lit("test"))
    )
    names = dataset.categories.select(pl.col("id").cast(pl.Int32), "name").with_columns(
        name=cap.noun("name")
    )
    objects = (
        dataset.objects.filter(pl.col("label").is_not_null())
        .join(images.select("image_id"), on="image_id", how="semi")
        .with_columns(
            crowd=pl.col("is_crowd").fill_null(False) | pl.col("is_group_of").fill_null(False)
        )
    )
    per = (
        objects.sort("object_id")
        .group_by(PAIR)
        .agg(
            n=(~pl.col("crowd")).sum(),
            any_crowd=pl.col("crowd").any(),
            object_ids=pl.col("object_id"),
        )
    )
    labels = dataset.image_labels.filter(pl.col("label").is_not_null()).select(*PAIR, "status")
    not_exhaustive = labels.filter(pl.col("status") == "not_exhaustive").select(PAIR).unique()
    positive = labels.filter(pl.col("status") == "positive").select(PAIR).unique()
    negatives = _negatives(dataset, images, labels, per, positive, not_exhaustive)
    parents = (
        dataset.categories.select(pl.col("id").cast(pl.Int32), parent="parents")
        .explode("parent")
        .drop_nulls()
    )
    facts = {
        "per": per,
        "negatives": negatives,
        "names": names,
        "objects": objects,
        "parents": parents,
        "not_exhaustive": not_exhaustive,
    }
    makers = {
        "existence": make.existence,
        "counting": make.counting,
        "spatial": make.spatial,
        "size": make.size,
        "foil": make.foil,
    }
    keys = {
        "existence": ["class_a"],
        "counting": ["class_a"],
        "spatial": ["class_a", "class_b", "axis"],
        "size": ["class_a", "class_b"],
        "foil": ["class_b"],
    }
    parts = []
    for task in tasks:
        raw = makers[task](
            facts, seed=seed, margin=margin, size_ratio=size_ratio, positive=positive
        )
        raw = _finish(raw, task, images, seed)
        # balanced within each split too, so no split-level label prior answers either
        parts.append(_balance(raw, [*keys[task], "split"], seed, max_per_label))
    items = pl.concat([p.select(pl.all().exclude("axis")) for p in parts], how="diagonal_relaxed")
    meta = {
        "seed": seed,
        "tasks": list(tasks),
        "dataset": str(source_path) if source_path else None,
        "taxonomy": dataset.meta.get("taxonomy"),
        "settings": {
            "max_images": max_images,
            "max_per_label": max_per_label,
            "margin": margin,
            "size_ratio": size_ratio,
            "split_fractions": list(split_fractions),
        },
    }
    return make_probeset(items, dataset.categories, dict(dataset.roots), meta)


def _negatives(dataset, images, labels, per, positive, not_exhaustive) -> pl.DataFrame:
    """Verified (image, label) absences: negative image labels, then exhaustive label spaces."""
    from_labels = labels.filter(pl.col("status") == "negative").select(PAIR).unique()
    from_labels = from_labels.join(images, on="image_id", how="semi").with_columns(
        evidence=pl.lit("negative_label")
    )
    spaces = dataset.label_spaces.filter(pl.col("label").is_not_null()).select("source", "label")
    exhaustive = (
        images.select("image_id", "source")
        .join(spaces.unique(), on="source")
        .select(PAIR)
        .with_columns(evidence=pl.lit("exhaustive"))
    )
    return (
        pl.concat([from_labels, exhaustive])
        .unique(subset=PAIR, keep="first", maintain_order=True)
        .join(per, on=PAIR, how="anti")  # a box of the class beats any negative
        .join(positive, on=PAIR, how="anti")
        .join(not_exhaustive, on=PAIR, how="anti")
        .with_columns(pl.col("label").cast(pl.Int32))
    )
