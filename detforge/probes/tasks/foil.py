"""Noun foils as counterfactual pairs: "There is a dog and a cat." vs "There is a dog and a
wolf." on an image with the cat and no wolf, twinned with an image of the same source and
split with the wolf and no cat, where the two sentences swap roles.

Candidates: on image I with classes A and S boxed, a partner class S' verified absent. S'
is drawn among the classes boxed beside A elsewhere in the same source and split, from a
symmetric ring of partners (each class is paired with its ``PARTNERS`` neighbours in a
seeded order, both ways), so the reverse case (S' boxed, S absent) can exist. Items are
balanced per (A, {S, S'}, source, split) on the direction, and each item of one direction is
twinned with one of the other: every sentence is a caption exactly as often as a foil, so no
text rule (frequency, length, plausibility) can tell them apart, and each twin pair gives
Winoground's text, image and group scores. The linear form is the sentence naming the lower
class id of the pair, true on one twin and false on the other.
"""

from __future__ import annotations

import polars as pl

from detforge.probes.captions import sentence, with_names
from detforge.probes.facts import Facts, Settings, hash_series
from detforge.probes.tasks import Task

GROUP = ["class_a", "source", "split"]
PARTNERS = 3  # ring neighbours on each side: up to 6 partner classes per (A, S)


def _ring(pairs: pl.DataFrame, parents: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Symmetric partner pairs (A, S, S') within each group: S and S' are neighbours in a
    cyclic order of the classes boxed beside A there — taxonomy siblings side by side (a
    sibling is the harder foil), otherwise a seeded order."""
    first_parent = parents.group_by("id").agg(_parent=pl.col("parent").min())
    members = pairs.select(*GROUP, "class_b").unique()
    members = members.with_columns(_r=hash_series(members, ["class_a", "class_b"], seed))
    members = members.join(first_parent, left_on="class_b", right_on="id", how="left")
    members = members.sort("_parent", "_r", "class_b", nulls_last=True).with_columns(
        _pos=pl.int_range(pl.len()).over(GROUP), _n=pl.len().over(GROUP)
    )
    ring = []
    for step in range(1, PARTNERS + 1):
        shifted = members.select(
            *GROUP, partner="class_b", _pos=(pl.col("_pos") - step) % pl.col("_n")
        )
        ring.append(members.join(shifted, on=[*GROUP, "_pos"]).select(*GROUP, "class_b", "partner"))
    ring = pl.concat(ring).filter(pl.col("partner") != pl.col("class_b"))
    swapped = ring.select(*GROUP, class_b="partner", partner="class_b")
    return pl.concat([ring, swapped]).unique()


def make(facts: Facts, settings: Settings) -> pl.DataFrame:
    where = facts.images.select("image_id", "source", "split")
    present = facts.per.select("image_id", "label", "object_ids")
    pairs = (
        present.join(present, on="image_id", suffix="_b")
        .filter(pl.col("label") != pl.col("label_b"))
        .join(where, on="image_id")
        .select(
            "image_id",
            "source",
            "split",
            class_a="label",
            class_b="label_b",
            object_ids=pl.concat_list("object_ids", "object_ids_b"),
        )
    )
    ring = _ring(pairs, facts.parents, settings.seed)
    candidates = pairs.join(ring, on=[*GROUP, "class_b"]).join(
        facts.negatives.rename({"label": "partner"}), on=["image_id", "partner"]
    )
    lo, hi = pl.min_horizontal("class_b", "partner"), pl.max_horizontal("class_b", "partner")
    candidates = candidates.with_columns(lo=lo, hi=hi)
    # one kept class A per image and pair of stated classes: several would repeat the image
    candidates = candidates.with_columns(
        _r=hash_series(candidates, ["image_id", "class_a", "lo", "hi"], settings.seed)
    )
    return (
        candidates.sort("_r")
        .unique(subset=["image_id", "lo", "hi"], keep="first")
        .select(
            "image_id",
            "class_a",
            "class_b",
            "object_ids",
            "evidence",
            "lo",
            "hi",
            foil_class="partner",
            label=(pl.col("class_b") == pl.col("lo")).cast(pl.Int32),
            verified=pl.lit(True),
        )
    )


def twins(items: pl.DataFrame, keys: list[str], seed: int) -> pl.Series:
    """The item id each item is twinned with: the r-th item of one label with the r-th of the
    other in the same key (keys are balanced, so everyone has a twin)."""
    ranked = items.drop("twin_id", strict=False).with_columns(
        _h=hash_series(items, ["item_id"], seed)
    )
    ranked = ranked.with_columns(_r=pl.col("_h").rank("ordinal").over([*keys, "label"]))
    other = ranked.select(*keys, "_r", twin_id="item_id", label=1 - pl.col("label"))
    return ranked.join(other, on=[*keys, "_r", "label"], how="left", maintain_order="left")[
        "twin_id"
    ]


def write(items: pl.DataFrame, facts: Facts, settings: Settings) -> pl.DataFrame:
    keys = ["class_a", "lo", "hi", "source", "split"]
    named = with_names(items, facts.names, "class_a", "class_b", "foil_class")
    a = pl.col("class_a_a")
    caption = sentence("There is ", a, " and ", pl.col("class_b_a"), ".")
    foil = sentence("There is ", a, " and ", pl.col("foil_class_a"), ".")
    return named.with_columns(
        caption=caption,
        foil=foil,
        text=pl.when(pl.col("label") == 1).then(caption).otherwise(foil),
        foil_label=pl.lit(None, pl.Int32),
        twin_id=twins(named, keys, settings.seed),
    )


TASK = Task(
    name="foil",
    labels=("false", "true"),
    version=2,
    summary='"There is a dog and a cat." vs "… and a wolf", twinned with an image where they swap',
    make=make,
    write=write,
    balance_key=("class_a", "lo", "hi"),
    order=5,
)
