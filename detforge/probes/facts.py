"""What the task makers read: boxes per (image, class), verified absences, names, hierarchy.

Every negative fact an item states ("there is no c", "0 c", a foil class absent) comes from a
verified negative: an image label with status ``negative``, or ``c`` in the exhaustive label
space of the image's source with no box of ``c`` on the image. Mere absence of a box is
never read as absence.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import polars as pl

from detforge.dataset import DetDataset
from detforge.probes.captions import class_names
from detforge.splitmix import splitmix64

PAIR = ["image_id", "label"]


def hash_np(frame: pl.DataFrame, columns: Sequence[str], seed: int) -> np.ndarray:
    """A stable uint64 hash of integer columns (nulls as -1), folded with splitmix64."""
    acc = np.zeros(frame.height, dtype=np.uint64)
    for column in columns:
        values = frame[column].fill_null(-1).cast(pl.Int64).to_numpy().astype(np.uint64)
        acc = splitmix64(acc ^ values, seed)
    return acc


def hash_series(frame: pl.DataFrame, columns: Sequence[str], seed: int) -> pl.Series:
    return pl.Series(hash_np(frame, columns, seed), dtype=pl.UInt64)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Generation settings every task maker receives."""

    seed: int = 0
    margin: float = 0.1
    size_ratio: float = 1.5
    max_per_label: int = 200


@dataclasses.dataclass(frozen=True)
class Facts:
    """The facts of the sampled images.

    ``images``: image_id, source, file_name, split, image_group. ``per``: one row per (image,
    class) with a box: non-crowd count ``n``, ``any_crowd``, ``object_ids``. ``negatives``:
    verified absences (image_id, label, evidence). ``objects``: the boxes (``crowd`` flag).
    ``names``: noun forms per class (:func:`detforge.probes.captions.class_names`).
    ``parents``: is_a edges (id, parent). ``not_exhaustive`` / ``positive``: image labels of
    those statuses. ``frequency``: boxes per class over the sampled images.
    """

    images: pl.DataFrame
    per: pl.DataFrame
    negatives: pl.DataFrame
    objects: pl.DataFrame
    names: pl.DataFrame
    parents: pl.DataFrame
    not_exhaustive: pl.DataFrame
    positive: pl.DataFrame
    frequency: pl.DataFrame


def gather(dataset: DetDataset, images: pl.DataFrame) -> Facts:
    """The facts of ``images`` (image_id, source, file_name, split, image_group) in ``dataset``."""
    objects = (
        dataset.objects.filter(pl.col("label").is_not_null())
        .join(images.select("image_id"), on="image_id", how="semi")
        .with_columns(
            pl.col("label").cast(pl.Int32),
            crowd=pl.col("is_crowd").fill_null(False) | pl.col("is_group_of").fill_null(False),
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
    labels = (
        dataset.image_labels.filter(pl.col("label").is_not_null())
        .join(images.select("image_id"), on="image_id", how="semi")
        .select(*PAIR, "status")
        .with_columns(pl.col("label").cast(pl.Int32))
    )
    not_exhaustive = labels.filter(pl.col("status") == "not_exhaustive").select(PAIR).unique()
    positive = labels.filter(pl.col("status") == "positive").select(PAIR).unique()
    parents = (
        dataset.categories.select(pl.col("id").cast(pl.Int32), parent="parents")
        .explode("parent")
        .drop_nulls()
    )
    frequency = objects.group_by("label").len("boxes").rename({"label": "id"})
    return Facts(
        images=images,
        per=per,
        negatives=_negatives(dataset, images, labels, per, positive, not_exhaustive),
        objects=objects,
        names=class_names(dataset.categories),
        parents=parents,
        not_exhaustive=not_exhaustive,
        positive=positive,
        frequency=frequency,
    )


def _negatives(dataset, images, labels, per, positive, not_exhaustive) -> pl.DataFrame:
    """Verified (image, label) absences: negative image labels, then exhaustive label spaces."""
    from_labels = labels.filter(pl.col("status") == "negative").select(PAIR).unique()
    from_labels = from_labels.with_columns(evidence=pl.lit("negative_label"))
    spaces = dataset.label_spaces.filter(pl.col("label").is_not_null()).select(
        "source", pl.col("label").cast(pl.Int32)
    )
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
    )


def single_boxes(facts: Facts) -> pl.DataFrame:
    """One row per box of a class that occurs exactly once on its image (non-crowd, not marked
    not-exhaustive): ``image_id, object_id, label, cx, cy, area`` (normalised units)."""
    single = (
        facts.per.filter((pl.col("n") == 1) & ~pl.col("any_crowd"))
        .join(facts.not_exhaustive, on=PAIR, how="anti")
        .select(PAIR)
    )
    x1, y1, x2, y2 = (pl.col("bbox").arr.get(i) for i in range(4))
    return (
        facts.objects.filter(~pl.col("crowd"))
        .join(single, on=PAIR, how="semi")
        .select(
            "image_id",
            "object_id",
            "label",
            cx=(x1 + x2) / 2,
            cy=(y1 + y2) / 2,
            area=(x2 - x1) * (y2 - y1),
        )
    )


def box_pairs(facts: Facts) -> pl.DataFrame:
    """Ordered pairs of single-instance boxes of two classes on one image (unambiguous "the"):
    ``class_a``, ``class_b``, both boxes' centres and areas, ``object_ids``."""
    boxes = single_boxes(facts)
    pairs = boxes.join(boxes, on="image_id", suffix="_b").filter(
        pl.col("label") != pl.col("label_b")
    )
    return pairs.rename({"label": "class_a", "label_b": "class_b"}).with_columns(
        object_ids=pl.concat_list("object_id", "object_id_b")
    )
