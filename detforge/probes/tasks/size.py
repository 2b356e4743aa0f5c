"""Relative size: is box A larger or smaller than box B (area ratio beyond a threshold)."""

from __future__ import annotations

import polars as pl

from detforge.probes.captions import sentence, with_names
from detforge.probes.facts import Facts, Settings, box_pairs
from detforge.probes.tasks import Task


def make(facts: Facts, settings: Settings) -> pl.DataFrame:
    ratio = pl.col("area") / pl.col("area_b")
    label = (
        pl.when(ratio >= settings.size_ratio).then(1).when(ratio <= 1 / settings.size_ratio).then(0)
    )
    return (
        box_pairs(facts)
        .with_columns(label=label)
        .filter(pl.col("label").is_not_null())
        .select(
            "image_id",
            "class_a",
            "class_b",
            "object_ids",
            "label",
            evidence=pl.lit("box"),
            verified=pl.lit(True),
        )
    )


def size_caption(larger: pl.Expr) -> pl.Expr:
    """``The dog is larger than the cat.`` (``larger`` true) or ``... smaller than ...``."""
    word = pl.when(larger).then(pl.lit("larger")).otherwise(pl.lit("smaller"))
    a, b = pl.col("class_a_noun"), pl.col("class_b_noun")
    return sentence("The ", a, " is ", word, " than the ", b, ".")


def write(items: pl.DataFrame, facts: Facts, settings: Settings) -> pl.DataFrame:
    named = with_names(items, facts.names, "class_a", "class_b")
    larger = pl.col("label") == 1
    return named.with_columns(
        text=sentence("the ", pl.col("class_a_noun"), " and the ", pl.col("class_b_noun")),
        caption=size_caption(larger),
        foil=size_caption(~larger),
        foil_label=1 - pl.col("label"),
    )


TASK = Task(
    name="size",
    labels=("smaller", "larger"),
    version=2,
    summary='"The dog is larger than the cat." vs "smaller"; area ratio beyond --size-ratio',
    make=make,
    write=write,
    balance_key=("class_a", "class_b"),
    cue="'smaller' is true",
    order=4,
)
