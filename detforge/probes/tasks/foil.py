"""Noun foils: "There is a dog and a cat." vs the same with the cat replaced by a class that
is verified absent from the image.

The linear form states one class beside a present one (``text``; label 1 when the stated
class is boxed on the image, 0 when it is verified absent) and is balanced per stated pair,
so each sentence is as often true as false. For the zero-shot pair, a true statement's foil
class is drawn first from the classes the same pair states falsely in that source and split
(then a taxonomy sibling, then any verified absence), and a false statement's caption from
the classes stated truly: foil and caption sentences come from one distribution.
"""

from __future__ import annotations

import polars as pl

from detforge.probes.captions import sentence, with_names
from detforge.probes.facts import Facts, Settings, hash_series
from detforge.probes.tasks import Task

GROUP = ["class_a", "source", "split"]
TRIES = 8  # random other classes per item: the last resort where nothing better is absent


def _present(facts: Facts) -> pl.DataFrame:
    return facts.per.select("image_id", "label", "object_ids")


def make(facts: Facts, settings: Settings) -> pl.DataFrame:
    present = _present(facts)
    where = facts.images.select("image_id", "source", "split")
    pairs = present.join(present, on="image_id", suffix="_a").filter(
        pl.col("label") != pl.col("label_a")
    )
    pairs = pairs.with_columns(
        _r=hash_series(pairs, ["image_id", "label", "label_a"], settings.seed)
    )
    true = (
        pairs.sort("_r")
        .unique(subset=["image_id", "label"], keep="first")  # one kept class per stated class
        .select(
            "image_id",
            class_a="label_a",
            class_b="label",
            object_ids=pl.concat_list("object_ids_a", "object_ids"),
            label=pl.lit(1),
            evidence=pl.lit("box"),
        )
    )
    stated = true.join(where, on="image_id").select(*GROUP, "class_b").unique()
    anchors = (
        present.filter(pl.len().over("image_id") >= 2)  # a false statement needs a true caption
        .rename({"label": "class_a"})
        .join(where, on="image_id")
    )
    anchors = anchors.with_columns(_r=hash_series(anchors, ["image_id", "class_a"], settings.seed))
    cap = 8 * settings.max_per_label  # enough images per kept class for every stated class
    anchors = anchors.filter(pl.col("_r").rank("ordinal").over(GROUP) <= cap)
    false = (
        anchors.drop("_r")
        .join(stated, on=GROUP)
        .join(facts.negatives.rename({"label": "class_b"}), on=["image_id", "class_b"])
    )
    false = false.with_columns(
        _r=hash_series(false, ["image_id", "class_a", "class_b"], settings.seed)
    )
    false = (
        false.sort("_r")
        .unique(subset=["image_id", "class_b"], keep="first")  # one kept class per stated one
        .select("image_id", "class_a", "class_b", "object_ids", "evidence", label=pl.lit(0))
    )
    return pl.concat([true, false], how="diagonal_relaxed").with_columns(verified=pl.lit(True))


def _siblings(facts: Facts) -> pl.DataFrame:
    """(id, sibling) pairs: two classes sharing an is_a parent."""
    parents = facts.parents
    return (
        parents.join(parents, on="parent", suffix="_s")
        .filter(pl.col("id") != pl.col("id_s"))
        .select("id", sibling="id_s")
        .unique()
    )


def _best(candidates: pl.DataFrame, priority: pl.Expr, column: str, seed: int) -> pl.DataFrame:
    """The candidate of lowest ``priority`` per item (ties by a seeded hash)."""
    ranked = candidates.with_columns(_p=priority)
    ranked = ranked.with_columns(_r=hash_series(ranked, ["item_id", column], seed))
    return ranked.sort("_p", "_r").unique(subset=["item_id"], keep="first").drop("_p", "_r")


def _foil_classes(ones: pl.DataFrame, stated_false: pl.DataFrame, facts: Facts, seed: int):
    """The foil class of each true statement: verified absent first, then stated falsely with
    the same kept class in that source and split, then a sibling of the stated class."""
    keys = ones.select("item_id", "image_id", *GROUP, "class_b")
    ids = facts.names["id"].to_numpy()
    repeated = (
        keys.select("item_id", "image_id", "class_b")
        .with_columns(j=pl.int_ranges(0, TRIES))
        .explode("j")
    )
    picks = ids[(hash_series(repeated, ["item_id", "j"], seed).to_numpy() % len(ids)).astype(int)]
    negatives = facts.negatives.rename({"label": "foil_class"})
    per_image = negatives.with_columns(_r=hash_series(negatives, ["image_id", "foil_class"], seed))
    per_image = per_image.filter(pl.col("_r").rank("ordinal").over("image_id") <= TRIES)
    candidates = pl.concat(
        [
            keys.join(stated_false.rename({"class_b": "foil_class"}), on=GROUP).select(
                "item_id", "image_id", "class_b", "foil_class"
            ),
            keys.join(_siblings(facts), left_on="class_b", right_on="id").select(
                "item_id", "image_id", "class_b", foil_class="sibling"
            ),
            keys.join(per_image.select("image_id", "foil_class"), on="image_id").select(
                "item_id", "image_id", "class_b", "foil_class"
            ),
            repeated.select(
                "item_id", "image_id", "class_b", foil_class=pl.Series(picks, dtype=pl.Int32)
            ),
        ]
    ).unique()
    taken = pl.concat([facts.per.select("image_id", "label"), facts.positive])
    candidates = (
        candidates.join(ones.select("item_id", "class_a"), on="item_id")
        .filter(
            (pl.col("foil_class") != pl.col("class_a"))
            & (pl.col("foil_class") != pl.col("class_b"))
        )
        .join(taken.rename({"label": "foil_class"}), on=["image_id", "foil_class"], how="anti")
        .join(negatives, on=["image_id", "foil_class"], how="left")
        .join(
            _flag(keys, stated_false, "foil_class", "stated"),
            on=["item_id", "foil_class"],
            how="left",
        )
        .join(_sibling_flag(facts), on=["class_b", "foil_class"], how="left")
    )
    priority = (
        pl.col("evidence").is_null().cast(pl.Int32) * 4
        + pl.col("stated").is_null().cast(pl.Int32) * 2
        + pl.col("sibling").is_null().cast(pl.Int32)
    )
    best = _best(candidates, priority, "foil_class", seed)
    return best.select(
        "item_id",
        "foil_class",
        verified=pl.col("evidence").is_not_null(),
        evidence=pl.col("evidence").fill_null("unverified"),
    )


def _flag(keys: pl.DataFrame, stated: pl.DataFrame, column: str, name: str) -> pl.DataFrame:
    """(item_id, ``column``, ``name``=True) where the class is stated in the item's group."""
    return (
        keys.select("item_id", *GROUP)
        .join(stated.rename({"class_b": column}), on=GROUP)
        .select("item_id", column, **{name: pl.lit(True)})
        .unique()
    )


def _sibling_flag(facts: Facts) -> pl.DataFrame:
    return _siblings(facts).select(class_b="id", foil_class="sibling", sibling=pl.lit(True))


def _caption_classes(zeros: pl.DataFrame, stated_true: pl.DataFrame, facts: Facts, seed: int):
    """The caption class of each false statement: a boxed class, first one stated truly with
    the same kept class in that source and split, then a sibling of the stated class."""
    keys = zeros.select("item_id", "image_id", *GROUP, "class_b")
    present = _present(facts).rename({"label": "caption_class", "object_ids": "caption_boxes"})
    candidates = (
        keys.join(present, on="image_id")
        .join(zeros.select("item_id", "class_a"), on="item_id")
        .filter(pl.col("caption_class") != pl.col("class_a"))
        .join(
            _flag(keys, stated_true, "caption_class", "stated"),
            on=["item_id", "caption_class"],
            how="left",
        )
        .join(
            _sibling_flag(facts).rename({"foil_class": "caption_class"}),
            on=["class_b", "caption_class"],
            how="left",
        )
    )
    priority = pl.col("stated").is_null().cast(pl.Int32) * 2 + pl.col("sibling").is_null().cast(
        pl.Int32
    )
    return _best(candidates, priority, "caption_class", seed).select(
        "item_id", "caption_class", "caption_boxes"
    )


def write(items: pl.DataFrame, facts: Facts, settings: Settings) -> pl.DataFrame:
    seed = settings.seed
    stated = items.select(*GROUP, "class_b", "label").unique()
    ones, zeros = items.filter(pl.col("label") == 1), items.filter(pl.col("label") == 0)
    foils = _foil_classes(ones, stated.filter(pl.col("label") == 0).drop("label"), facts, seed)
    ones = ones.drop("verified", "evidence", "foil_class").join(foils, on="item_id")
    captions = _caption_classes(
        zeros, stated.filter(pl.col("label") == 1).drop("label"), facts, seed
    )
    zeros = (
        zeros.join(captions, on="item_id")
        .with_columns(
            foil_class=pl.col("class_b"),
            class_b=pl.col("caption_class"),
            object_ids=pl.concat_list("object_ids", "caption_boxes"),
        )
        .drop("caption_class", "caption_boxes")
    )
    frame = pl.concat([ones, zeros], how="diagonal_relaxed")
    named = with_names(frame, facts.names, "class_a", "class_b", "foil_class")
    a = pl.col("class_a_a")
    caption = sentence("There is ", a, " and ", pl.col("class_b_a"), ".")
    foil = sentence("There is ", a, " and ", pl.col("foil_class_a"), ".")
    return named.with_columns(
        caption=caption,
        foil=foil,
        text=pl.when(pl.col("label") == 1).then(caption).otherwise(foil),
        foil_label=pl.lit(None, pl.Int32),
    )


TASK = Task(
    name="foil",
    labels=("false", "true"),
    version=2,
    summary='"There is a dog and a cat." vs the cat replaced by a class verified absent',
    make=make,
    write=write,
    balance_key=("class_a", "class_b"),
    order=5,
)
