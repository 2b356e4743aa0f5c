"""Probe-set generation from a built dataset's boxes, image labels and label coverage.

Images are sampled and split into train / val / test by duplicate group (copies of one photo
never straddle two splits). Each task of the registry makes candidate items from the facts
(:mod:`detforge.probes.facts`); candidates are balanced per label within the task's balance
key, the image source and the split; the task then writes the captions. Finally the text-only
and source-only rules of :mod:`detforge.probes.shortcuts` are scored on the set.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from detforge.dataset import DetDataset
from detforge.probes import shortcuts
from detforge.probes.balance import balance, cap
from detforge.probes.facts import Settings, gather, hash_np, hash_series
from detforge.probes.probeset import ProbeError, ProbeSet, make_probeset
from detforge.probes.tasks import Task, names, registry


def _identify(raw: pl.DataFrame, task: Task, images: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Item ids (stable for a seed) and the image's source, file, split and group."""
    for column, dtype in (("class_b", pl.Int32), ("foil_class", pl.Int32), ("twin_id", pl.Int64)):
        if column not in raw.columns:
            raw = raw.with_columns(pl.lit(None, dtype).alias(column))
    if "flip" not in raw.columns:
        raw = raw.with_columns(flip=pl.lit(False))
    raw = raw.with_columns(
        pl.col("class_a", "class_b", "foil_class").cast(pl.Int32),
        label=pl.col("label").cast(pl.Int32),
        _task=pl.lit(task.code, pl.Int64),
        _flip=pl.col("flip").cast(pl.Int64),
    )
    keys = ["_task", "image_id", "_flip", "class_a", "class_b", "foil_class", "label"]
    ids = (hash_np(raw, keys, seed) >> np.uint64(1)).astype(np.int64)
    return (
        raw.with_columns(item_id=pl.Series(ids)).drop("_task", "_flip").join(images, on="image_id")
    )


def split_images(
    images: pl.DataFrame, seed: int, split_fractions: tuple[float, float]
) -> pl.DataFrame:
    """``split`` (train / val / test) and ``image_group`` of each image: copies of one photo
    (one ``dup_group``) share a group and so a split."""
    group = pl.coalesce(
        pl.col("dup_group") if "dup_group" in images.columns else pl.lit(None, pl.Int64),
        pl.col("image_id"),
    )
    images = images.with_columns(image_group=group)
    u = hash_series(images, ["image_group"], seed + 1).cast(pl.Float64) / 2.0**64
    train, val = split_fractions
    return images.with_columns(
        split=pl.when(u < train)
        .then(pl.lit("train"))
        .when(u < train + val)
        .then(pl.lit("val"))
        .otherwise(pl.lit("test"))
    ).select("image_id", "source", "file_name", "split", "image_group")


def generate(
    dataset: DetDataset,
    *,
    seed: int = 0,
    tasks: Sequence[str] | None = None,
    max_images: int | None = 5000,
    max_per_label: int = 200,
    max_items: int | None = 5000,
    margin: float = 0.1,
    size_ratio: float = 1.5,
    split_fractions: tuple[float, float] = (0.6, 0.2),
    source_path: str | Path | None = None,
) -> ProbeSet:
    """Generate the probe items of ``tasks`` (default: every registered task) from ``dataset``,
    deterministic for ``seed``.

    ``max_images`` caps the images sampled (by a seeded hash of their duplicate group);
    ``max_per_label`` caps the items per label within one balance key; ``max_items`` the
    items per task (whole balance keys are kept or left out, so the set stays balanced: 5000
    items leave about 1000 test items, a 95 % interval of about ±0.03 around 0.5); ``margin`` is the
    minimum distance of box centres (normalised units) for a spatial relation; ``size_ratio``
    the minimum area ratio for a size item; ``split_fractions`` the train and val shares of
    duplicate groups (the rest is test).
    """
    known = registry()
    tasks = list(tasks or names())
    unknown = [t for t in tasks if t not in known]
    if unknown:
        raise ProbeError(f"unknown task(s) {unknown}; known: {', '.join(known)}")
    if dataset.categories.is_empty():
        raise ProbeError("the dataset has no categories: build it with a taxonomy first")
    images = split_images(dataset.images, seed, split_fractions)
    if max_images and images.height > max_images:
        rank = hash_series(images, ["image_group"], seed)
        images = images.with_columns(_r=rank).sort("_r", "image_id").head(max_images).drop("_r")
    facts = gather(dataset, images)
    settings = Settings(
        seed=seed, margin=margin, size_ratio=size_ratio, max_per_label=max_per_label
    )
    parts = []
    for name in tasks:
        task = known[name]
        raw = _identify(task.make(facts, settings), task, images, seed)
        keys = [*task.balance_key, "source", "split"]
        kept = cap(balance(raw, keys, task.unit, seed, max_per_label), keys, max_items, seed)
        label_names = dict(enumerate(task.labels))
        written = task.write(kept, facts, settings).with_columns(
            task=pl.lit(name),
            label_name=pl.col("label").replace_strict(label_names, return_dtype=pl.String),
        )
        parts.append(written)
    items = pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame()
    probes = make_probeset(
        items,
        dataset.categories,
        dict(dataset.roots),
        {
            "seed": seed,
            "tasks": tasks,
            "task_versions": {name: known[name].version for name in tasks},
            "dataset": str(source_path) if source_path else None,
            "taxonomy": dataset.meta.get("taxonomy"),
            "settings": {
                "max_images": max_images,
                "max_per_label": max_per_label,
                "max_items": max_items,
                "margin": margin,
                "size_ratio": size_ratio,
                "split_fractions": list(split_fractions),
            },
        },
    )
    return probes.with_meta(shortcuts=shortcuts.score(probes.items, facts))
