"""Above / below: is box A above or below box B (centres, beyond the margin)."""

from __future__ import annotations

import polars as pl

from detforge.probes.facts import Facts, Settings
from detforge.probes.tasks import Task
from detforge.probes.tasks._spatial import relations, writer


def make(facts: Facts, settings: Settings) -> pl.DataFrame:
    return (
        relations(facts, settings)
        .filter(pl.col("axis") == 1)
        .with_columns(label=pl.col("relation") - 2, flip=pl.lit(False))
        .drop("relation", "axis")
    )


TASK = Task(
    name="above_below",
    labels=("above", "below"),
    version=1,
    summary='"The dog is above the cat." vs "below"',
    make=make,
    write=writer(1),
    balance_key=("class_a", "class_b"),
    cue="'above' is true",
    order=3,
)
