"""Balancing: the same number of items of each label within every balance key."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from detforge.probes.facts import hash_series


def balance(
    items: pl.DataFrame, keys: list[str], unit: Sequence[str], seed: int, max_per_label: int
) -> pl.DataFrame:
    """Keep, per key, the same number of items of each kept label.

    A key keeps its most frequent labels (at least two) in the number that keeps the most
    items: counts 10, 5, 1 keep two labels of 5 items, not three of 1. Items are taken in a
    seeded order of their ``unit`` (items sharing a unit rank alike in every label, so mirror
    twins are kept or dropped together), at most ``max_per_label`` per label.
    """
    if items.is_empty():
        return items
    counts = items.group_by([*keys, "label"]).len()
    counts = counts.with_columns(
        _j=pl.col("len").rank("ordinal", descending=True).over(keys)
    ).with_columns(_score=pl.col("_j") * pl.col("len"))
    best = (
        counts.filter(pl.col("_j") >= 2)
        .sort("_score", "_j", descending=True)
        .group_by(keys, maintain_order=True)
        .first()
        .select(*keys, _k=pl.col("_j"), _n=pl.col("len"))
    )
    kept = counts.join(best, on=keys).filter(pl.col("_j") <= pl.col("_k"))
    ranked = items.with_columns(_r=hash_series(items, list(unit or ["item_id"]), seed))
    return (
        ranked.join(kept.select(*keys, "label", "_n"), on=[*keys, "label"])
        .with_columns(_i=pl.col("_r").rank("ordinal").over([*keys, "label"]))
        .filter(pl.col("_i") <= pl.min_horizontal("_n", pl.lit(max_per_label)))
        .drop("_r", "_n", "_i")
    )


def cap(items: pl.DataFrame, keys: list[str], max_items: int | None, seed: int) -> pl.DataFrame:
    """At most ``max_items`` items, taken as whole balance keys in a seeded order (so every kept
    key stays balanced); ``None`` or 0 keeps everything."""
    if not max_items or items.height <= max_items:
        return items
    sizes = items.group_by(keys).agg(_n=pl.len(), _id=pl.col("item_id").min())
    sizes = sizes.with_columns(_r=hash_series(sizes, ["_id"], seed)).sort("_r")
    kept = sizes.filter(pl.col("_n").cum_sum() <= max_items).select(keys)
    return items.join(kept, on=keys, how="semi")
