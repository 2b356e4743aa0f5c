"""Counting: how many boxes of a class (0, 1, 2, 3, 4+); 0 only from a verified negative."""

from __future__ import annotations

import polars as pl

from detforge.probes.captions import count_caption, with_names
from detforge.probes.facts import PAIR, Facts, Settings, hash_series
from detforge.probes.tasks import Task

KEY = ["class_a", "source", "split"]


def make(facts: Facts, settings: Settings) -> pl.DataFrame:
    counted = (
        facts.per.filter(~pl.col("any_crowd") & (pl.col("n") > 0))
        .join(facts.not_exhaustive, on=PAIR, how="anti")  # more boxes may be missing
        .select(
            "image_id",
            "object_ids",
            class_a="label",
            label=pl.col("n").clip(upper_bound=4).cast(pl.Int32),
            evidence=pl.lit("box"),
        )
    )
    zeros = facts.negatives.select(
        "image_id",
        "evidence",
        class_a="label",
        label=pl.lit(0, pl.Int32),
        object_ids=pl.lit([], pl.List(pl.Int64)),
    )
    return pl.concat([counted, zeros], how="diagonal_relaxed").with_columns(verified=pl.lit(True))


def foil_counts(items: pl.DataFrame, seed: int) -> pl.Series:
    """The count each foil states: another count that the same class has in the same source
    and split, taken in turn (the r-th item of a count gets the (1 + r mod (k-1))-th other
    count), so caption and foil counts have one distribution and every (caption, foil)
    pair of counts occurs about as often as its reverse."""
    kept = items.group_by(KEY).agg(_labels=pl.col("label").unique().sort())
    ranked = items.with_columns(_r=hash_series(items, ["item_id"], seed)).join(
        kept, on=KEY, how="left"
    )
    k = pl.col("_labels").list.len()
    position = pl.col("label").rank("dense").over(KEY).cast(pl.Int64) - 1
    rank = pl.col("_r").rank("ordinal").over([*KEY, "label"]).cast(pl.Int64) - 1
    step = 1 + rank % (k - 1).clip(lower_bound=1)
    return ranked.select(
        pl.col("_labels").list.get((position + step) % k).cast(pl.Int32).alias("foil_label")
    )["foil_label"]


def write(items: pl.DataFrame, facts: Facts, settings: Settings) -> pl.DataFrame:
    named = with_names(items, facts.names, "class_a")
    named = named.with_columns(foil_label=foil_counts(named, settings.seed))
    return named.with_columns(
        text=pl.col("class_a_noun"),
        caption=count_caption(pl.col("label"), "class_a"),
        foil=count_caption(pl.col("foil_label"), "class_a"),
    )


TASK = Task(
    name="counting",
    labels=("0", "1", "2", "3", "4+"),
    version=2,
    summary='"There are two dogs." vs another count the class has; no crowd or group boxes',
    make=make,
    write=write,
    balance_key=("class_a",),
    cue="the smaller count is true",
    order=1,
)
