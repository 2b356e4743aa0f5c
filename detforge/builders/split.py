"""The split stage: keep the sources' splits, or re-split deterministically by hash.

A hash split assigns each image from a 64-bit mix (splitmix64) of its ``image_id``
and the seed, so the assignment depends on nothing but the id: adding or removing
other images never moves an image between splits. The stage runs before dedup and
decontamination, so copies that land in different splits are still caught: the
train copy of an eval image is dropped by decontamination.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from detforge.builders.recipe import SplitSpec
from detforge.dataset import DetDataset
from detforge.splitmix import splitmix64


def hash_splits(keys: pl.Series, fractions: dict[str, float], seed: int) -> pl.Series:
    """A split name per key: key's hash position in [0, 1) against cumulative fractions."""
    position = splitmix64(keys.cast(pl.Int64).to_numpy().view(np.uint64), seed) >> np.uint64(11)
    unit = position.astype(np.float64) / float(2**53)
    names = list(fractions)
    edges = np.cumsum([fractions[n] for n in names])
    edges[-1] = 1.0  # rounding never leaves an image without a split
    index = np.searchsorted(edges, unit, side="right")
    return pl.Series("split", np.array(names, dtype=object)[index], dtype=pl.String)


def split(dataset: DetDataset, spec: SplitSpec) -> DetDataset:
    """``dataset`` with ``images.split`` kept (mode ``source``) or re-assigned (mode ``hash``)."""
    if spec.mode == "source":
        return dataset
    images = dataset.images
    splits = hash_splits(images["image_id"], spec.fractions, spec.seed)
    return dataset.replace(images=images.with_columns(splits))
