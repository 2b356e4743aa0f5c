"""Left / right: is box A to the left or to the right of box B (centres, beyond the margin).

Every item has a twin on the mirrored image (``flip``) with the opposite label and the same
boxes: a free counterfactual, and a Winoground-style pair (two images, two captions).
"""

from __future__ import annotations

import polars as pl

from detforge.probes.facts import Facts, Settings
from detforge.probes.tasks import Task
from detforge.probes.tasks._spatial import relations, writer

TWIN = ["image_id", "class_a", "class_b"]


def make(facts: Facts, settings: Settings) -> pl.DataFrame:
    plain = (
        relations(facts, settings)
        .filter(pl.col("axis") == 0)
        .with_columns(label=pl.col("relation"), flip=pl.lit(False))
    )
    mirrored = plain.with_columns(label=1 - pl.col("label"), flip=pl.lit(True))
    return pl.concat([plain, mirrored]).drop("relation", "axis")


def write(items: pl.DataFrame, facts: Facts, settings: Settings) -> pl.DataFrame:
    """The captions, and each item's twin: the same boxes on the mirrored image."""
    mirror = items.select(*TWIN, twin_id="item_id", flip=~pl.col("flip"))
    twinned = items.drop("twin_id").join(
        mirror, on=[*TWIN, "flip"], how="left", maintain_order="left"
    )
    return writer(0)(twinned, facts, settings)


TASK = Task(
    name="left_right",
    labels=("left", "right"),
    version=1,
    summary='"The dog is to the left of the cat." vs "right of"; each with its mirrored twin',
    make=make,
    write=write,
    balance_key=("class_a", "class_b"),
    unit=("image_id", "class_a", "class_b"),  # an item and its mirror twin
    cue="'left of' is true",
    order=2,
)
