"""Spatial relations of two boxes from their centres: the shared maker and captions of the
``left_right`` and ``above_below`` tasks.

A pair of single-instance boxes relates along the axis where their centres differ most, by
more than the margin. Each axis is its own binary task, balanced per ordered class pair: a
four-way label would let the class names alone tell which axis a pair usually lies on.
"""

from __future__ import annotations

import polars as pl

from detforge.probes.captions import sentence, with_names
from detforge.probes.facts import Facts, Settings, box_pairs

RELATIONS = ("to the left of", "to the right of", "above", "below")


def relations(facts: Facts, settings: Settings) -> pl.DataFrame:
    """Ordered box pairs with ``relation`` (index into :data:`RELATIONS`) and ``axis``
    (0 horizontal, 1 vertical)."""
    pairs = box_pairs(facts)
    dx, dy = pl.col("cx_b") - pl.col("cx"), pl.col("cy_b") - pl.col("cy")
    horizontal = (dx.abs() >= dy.abs()) & (dx.abs() > settings.margin)
    vertical = (dy.abs() > dx.abs()) & (dy.abs() > settings.margin)
    relation = (
        pl.when(horizontal)
        .then(pl.when(dx > 0).then(0).otherwise(1))
        .when(vertical)
        .then(pl.when(dy > 0).then(2).otherwise(3))
    )
    return (
        pairs.with_columns(relation=relation)
        .filter(pl.col("relation").is_not_null())
        .select(
            "image_id",
            "class_a",
            "class_b",
            "object_ids",
            "relation",
            axis=pl.col("relation") // 2,
            evidence=pl.lit("box"),
            verified=pl.lit(True),
        )
    )


def relation_caption(relation: pl.Expr) -> pl.Expr:
    """``The dog is to the left of the cat.`` for relation index 0..3."""
    phrase = pl.lit(None, pl.String)
    for i in reversed(range(len(RELATIONS))):
        phrase = pl.when(relation == i).then(pl.lit(RELATIONS[i])).otherwise(phrase)
    a, b = pl.col("class_a_noun"), pl.col("class_b_noun")
    return sentence("The ", a, " is ", phrase, " the ", b, ".")


def writer(axis: int):
    """The captions of one axis: label 0/1 = the axis' first/second relation."""

    def write(items: pl.DataFrame, facts: Facts, settings: Settings) -> pl.DataFrame:
        named = with_names(items, facts.names, "class_a", "class_b")
        relation = pl.col("label") + 2 * axis
        return named.with_columns(
            text=sentence("the ", pl.col("class_a_noun"), " and the ", pl.col("class_b_noun")),
            caption=relation_caption(relation),
            foil=relation_caption(relation + 1 - 2 * pl.col("label")),
            foil_label=1 - pl.col("label"),
        )

    return write
