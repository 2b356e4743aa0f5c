"""Which classes are annotated on which image, and LVIS frequency bins.

The federated rule: class ``c`` is *annotated* on image ``i`` iff ``c`` is in the
exhaustive ``label_spaces`` of ``i``'s source, or ``(i, c)`` has a ``positive`` /
``negative`` image label, or ``i`` has a ground-truth box of ``c``. A detection of a
class that is not annotated on its image is ignored (neither TP nor FP); an unmatched
detection of a class that is ``not_exhaustive`` on its image is ignored too, and so is
one of a class verified ``positive`` on an image with no box of it (present but not
boxed: a correct detection there has nothing to match; the build's COCO export writes
the same pairs as ``not_exhaustive_category_ids``). These are
LVIS's own rules (``neg_category_ids`` / ``not_exhaustive_category_ids``) with the
negatives generalised through ``label_spaces`` and ``image_labels``, so the evaluator
hands them to faster-coco-eval's LVIS mode as per-image category lists.
"""

from __future__ import annotations

import polars as pl

from detforge.dataset import DetDataset
from detforge.errors import DetforgeError

#: how APr/APc/APf bin the classes: LVIS's own ``frequency`` field, or (on request) the
#: merged train split's image counts with LVIS's thresholds
FREQUENCY_BINS = {
    "lvis": "each class's own LVIS frequency field (r/c/f as LVIS defines them); a class "
    "mapped from several LVIS classes takes the most frequent bin, a class with no LVIS "
    "class its categories.frequency",
    "train-counts": "merged train split: images with a box of the class (r <= 10, c 11-100, "
    "f > 100)",
}
#: LVIS bins by the number of training images that have a box of the class
RARE_MAX, COMMON_MAX = 10, 100
_RANK = {"r": 0, "c": 1, "f": 2}


def frequency_bins(dataset: DetDataset, bins: str = "lvis") -> pl.DataFrame:
    """``label, train_images, frequency`` (r/c/f, null = in no bin) for every class.

    ``bins="lvis"``: the ``frequency`` of the LVIS classes mapped to each class (the
    reader keeps LVIS's field in ``source_categories``; the mapping is read off the
    boxes and image labels), else ``categories.frequency``. ``bins="train-counts"``:
    counted from the train split's boxes (images with at least one box of the class):
    r = at most 10 images (0 included: a class never seen in training is rare),
    c = 11-100, f = more than 100; without a train split ``categories.frequency``.
    """
    if bins not in FREQUENCY_BINS:
        raise DetforgeError(f"unknown frequency bins {bins!r}: {', '.join(FREQUENCY_BINS)}")
    categories = dataset.categories.select(pl.col("id").alias("label"), "frequency")
    train = dataset.images.filter(pl.col("split") == "train").select("image_id")
    if bins == "lvis":
        return _source_frequency(dataset, categories)
    if train.height == 0:
        return categories.select(
            "label", pl.lit(None, pl.Int64).alias("train_images"), "frequency"
        ).sort("label")
    counts = (
        dataset.objects.filter(pl.col("label").is_not_null())
        .join(train, on="image_id", how="semi")
        .group_by("label")
        .agg(pl.col("image_id").n_unique().cast(pl.Int64).alias("train_images"))
    )
    n = pl.col("train_images")
    return (
        categories.select("label")
        .join(counts, on="label", how="left")
        .with_columns(n.fill_null(0))
        .with_columns(
            pl.when(n <= RARE_MAX)
            .then(pl.lit("r"))
            .when(n <= COMMON_MAX)
            .then(pl.lit("c"))
            .otherwise(pl.lit("f"))
            .alias("frequency")
        )
        .sort("label")
    )


def _source_frequency(dataset: DetDataset, categories: pl.DataFrame) -> pl.DataFrame:
    """Bins from the source classes' own ``frequency`` (LVIS's), see :func:`frequency_bins`."""
    given = dataset.source_categories.filter(pl.col("frequency").is_in(list(_RANK))).select(
        "source", "source_label", pl.col("frequency").replace_strict(_RANK).alias("_rank")
    )
    keys = ["source", "source_label", "label"]
    pairs = pl.concat(
        [
            dataset.objects.select(keys),
            dataset.image_labels.select(keys),
            dataset.label_spaces.select(keys),
        ]
    ).filter(pl.col("label").is_not_null())
    ranked = (
        pairs.join(given, on=["source", "source_label"], how="inner")
        .group_by("label")
        .agg(pl.col("_rank").max())
        .with_columns(
            pl.col("_rank").replace_strict({v: k for k, v in _RANK.items()}).alias("_lvis")
        )
    )
    return (
        categories.join(ranked.select("label", "_lvis"), on="label", how="left")
        .select(
            "label",
            pl.lit(None, pl.Int64).alias("train_images"),
            pl.coalesce("_lvis", "frequency").alias("frequency"),
        )
        .sort("label")
    )


def annotated(pairs: pl.DataFrame, dataset: DetDataset) -> pl.Series:
    """For ``pairs`` (``image_id, source, label``): is the label annotated on the image
    by ``label_spaces`` or a positive/negative image label? (Boxes are the third way;
    the caller knows those.)"""
    spaces = (
        dataset.label_spaces.filter(pl.col("label").is_not_null())
        .select("source", "label", pl.lit(True).alias("_space"))
        .unique(["source", "label"])
    )
    verified = (
        dataset.image_labels.filter(
            pl.col("label").is_not_null() & pl.col("status").is_in(["positive", "negative"])
        )
        .select("image_id", "label", pl.lit(True).alias("_verified"))
        .unique(["image_id", "label"])
    )
    joined = pairs.join(spaces, on=["source", "label"], how="left", maintain_order="left").join(
        verified, on=["image_id", "label"], how="left", maintain_order="left"
    )
    return (joined["_space"].fill_null(False) | joined["_verified"].fill_null(False)).alias(
        "annotated"
    )
