"""Existence: is a class on the image? Present from a box, absent only from a verified negative."""

from __future__ import annotations

import polars as pl

from detforge.probes.captions import sentence, with_names
from detforge.probes.facts import Facts, Settings
from detforge.probes.tasks import Task


def make(facts: Facts, settings: Settings) -> pl.DataFrame:
    present = facts.per.select(
        "image_id", "object_ids", class_a="label", label=pl.lit(1), evidence=pl.lit("box")
    )
    absent = facts.negatives.select(
        "image_id",
        "evidence",
        class_a="label",
        label=pl.lit(0),
        object_ids=pl.lit([], pl.List(pl.Int64)),
    )
    return pl.concat([present, absent], how="diagonal_relaxed").with_columns(verified=pl.lit(True))


def write(items: pl.DataFrame, facts: Facts, settings: Settings) -> pl.DataFrame:
    named = with_names(items, facts.names, "class_a")
    yes = sentence("There is ", pl.col("class_a_a"), ".")
    no = sentence("There is no ", pl.col("class_a_noun"), ".")
    present = pl.col("label") == 1
    return named.with_columns(
        text=pl.col("class_a_noun"),
        caption=pl.when(present).then(yes).otherwise(no),
        foil=pl.when(present).then(no).otherwise(yes),
        foil_label=1 - pl.col("label"),
    )


TASK = Task(
    name="existence",
    labels=("absent", "present"),
    version=2,
    summary='"There is a dog." vs "There is no dog."; absent only from a verified negative',
    make=make,
    write=write,
    balance_key=("class_a",),
    cue="the negative sentence is true",
    order=0,
)
