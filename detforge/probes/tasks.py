"""The item makers of each probe task, as polars joins over the facts `generate` gathers.

``facts`` holds ``per`` (one row per image and class: non-crowd count, crowd flag, box
ids), ``negatives`` (verified absences with their evidence), ``objects``, ``names`` and
``parents`` (is_a edges). Every maker returns raw items; `generate` balances them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from detforge.probes import captions as cap
from detforge.probes.probeset import mix

PAIR = ["image_id", "label"]


def hash_np(frame: pl.DataFrame, columns: Sequence[str], seed: int) -> np.ndarray:
    """A stable uint64 hash of integer columns (nulls as -1), folded with splitmix64."""
    acc = np.zeros(frame.height, dtype=np.uint64)
    for column in columns:
        values = frame[column].fill_null(-1).cast(pl.Int64).to_numpy().astype(np.uint64)
        acc = mix(acc ^ values, seed)
    return acc


def hash_series(frame: pl.DataFrame, columns: Sequence[str], seed: int) -> pl.Series:
    return pl.Series(hash_np(frame, columns, seed), dtype=pl.UInt64)


def with_names(frame: pl.DataFrame, names: pl.DataFrame, *cols: str) -> pl.DataFrame:
    for col in cols:
        frame = frame.join(names.rename({"id": col, "name": f"{col}_name"}), on=col, how="left")
    return frame


def existence(facts, **_) -> pl.DataFrame:
    present = (
        facts["per"]
        .select("image_id", "object_ids", class_a="label")
        .with_columns(label=pl.lit(1), evidence=pl.lit("box"))
    )
    absent = (
        facts["negatives"]
        .select("image_id", "evidence", class_a="label")
        .with_columns(label=pl.lit(0), object_ids=pl.lit([], pl.List(pl.Int64)))
    )
    frame = pl.concat([present, absent], how="diagonal_relaxed")
    frame = with_names(
        frame.with_columns(pl.col("class_a").cast(pl.Int32)), facts["names"], "class_a"
    )
    name = pl.col("class_a_name")
    yes, no = cap.there_is(name), cap.there_is_no(name)
    return frame.select(
        "image_id",
        "class_a",
        "object_ids",
        "evidence",
        "label",
        verified=pl.lit(True),
        text=name,
        caption=pl.when(pl.col("label") == 1).then(yes).otherwise(no),
        foil=pl.when(pl.col("label") == 1).then(no).otherwise(yes),
    )


def counting(facts, *, seed: int, **_) -> pl.DataFrame:
    counted = (
        facts["per"]
        .filter(~pl.col("any_crowd") & (pl.col("n") > 0))
        .join(facts["not_exhaustive"], on=PAIR, how="anti")  # more boxes may be missing
        .select(*PAIR, "object_ids", count=pl.col("n").clip(upper_bound=4), evidence=pl.lit("box"))
    )
    zeros = facts["negatives"].with_columns(
        count=pl.lit(0, pl.UInt32), object_ids=pl.lit([], pl.List(pl.Int64))
    )
    frame = pl.concat([counted, zeros], how="diagonal_relaxed").rename({"label": "class_a"})
    frame = with_names(
        frame.with_columns(pl.col("class_a").cast(pl.Int32)), facts["names"], "class_a"
    )
    # the foil is any other count, uniformly: foils then follow the captions' distribution,
    # so the text alone cannot tell which of the two is the caption
    step = (hash_series(frame, PAIR[:1] + ["class_a"], seed) % 4 + 1).cast(pl.Int32)
    count = pl.col("count").cast(pl.Int32)
    other = (count + step) % 5
    name = pl.col("class_a_name")
    return frame.select(
        "image_id",
        "class_a",
        "object_ids",
        "evidence",
        label=count,
        verified=pl.lit(True),
        text=name,
        caption=cap.count_caption(count, name),
        foil=cap.count_caption(other, name),
    )


def box_pairs(facts) -> pl.DataFrame:
    """Ordered pairs of single-instance boxes of two classes on one image (unambiguous "the")."""
    single = (
        facts["per"]
        .filter((pl.col("n") == 1) & ~pl.col("any_crowd"))
        .join(facts["not_exhaustive"], on=PAIR, how="anti")
        .select(PAIR)
    )
    boxes = (
        facts["objects"]
        .filter(~pl.col("crowd"))
        .join(single, on=PAIR, how="semi")
        .with_columns(
            cx=(pl.col("bbox").arr.get(0) + pl.col("bbox").arr.get(2)) / 2,
            cy=(pl.col("bbox").arr.get(1) + pl.col("bbox").arr.get(3)) / 2,
            area=(pl.col("bbox").arr.get(2) - pl.col("bbox").arr.get(0))
            * (pl.col("bbox").arr.get(3) - pl.col("bbox").arr.get(1)),
        )
        .select("image_id", "object_id", "label", "cx", "cy", "area")
    )
    pairs = boxes.join(boxes, on="image_id", suffix="_b").filter(
        pl.col("label") != pl.col("label_b")
    )
    pairs = pairs.rename({"label": "class_a", "label_b": "class_b"}).with_columns(
        pl.col("class_a", "class_b").cast(pl.Int32),
        object_ids=pl.concat_list("object_id", "object_id_b"),
    )
    return with_names(pairs, facts["names"], "class_a", "class_b")


def spatial(facts, *, margin: float, **_) -> pl.DataFrame:
    pairs = box_pairs(facts)
    dx, dy = pl.col("cx_b") - pl.col("cx"), pl.col("cy_b") - pl.col("cy")
    horizontal = (dx.abs() >= dy.abs()) & (dx.abs() > margin)
    vertical = (dy.abs() > dx.abs()) & (dy.abs() > margin)
    relation = (
        pl.when(horizontal)
        .then(pl.when(dx > 0).then(0).otherwise(1))
        .when(vertical)
        .then(pl.when(dy > 0).then(2).otherwise(3))
    )
    frame = pairs.with_columns(label=relation, flip=pl.lit(False)).filter(
        pl.col("label").is_not_null()
    )
    # the mirrored image swaps left and right: a free counterfactual with the same objects
    flipped = frame.filter(pl.col("label") <= 1).with_columns(
        label=1 - pl.col("label"), flip=pl.lit(True)
    )
    frame = pl.concat([frame, flipped])
    a, b = pl.col("class_a_name"), pl.col("class_b_name")
    opposite = pl.col("label") + 1 - 2 * (pl.col("label") % 2)
    return frame.select(
        "image_id",
        "class_a",
        "class_b",
        "object_ids",
        "flip",
        "label",
        axis=pl.col("label") // 2,
        evidence=pl.lit("box"),
        verified=pl.lit(True),
        text=pl.concat_str(a, pl.lit(" and "), b),
        caption=cap.relation_caption(pl.col("label"), a, b),
        foil=cap.relation_caption(opposite, a, b),
    )


def size(facts, *, size_ratio: float, **_) -> pl.DataFrame:
    ratio = pl.col("area") / pl.col("area_b")
    frame = (
        box_pairs(facts)
        .with_columns(
            label=pl.when(ratio >= size_ratio).then(1).when(ratio <= 1 / size_ratio).then(0)
        )
        .filter(pl.col("label").is_not_null())
    )
    a, b = pl.col("class_a_name"), pl.col("class_b_name")
    larger = pl.col("label") == 1
    return frame.select(
        "image_id",
        "class_a",
        "class_b",
        "object_ids",
        "label",
        evidence=pl.lit("box"),
        verified=pl.lit(True),
        text=pl.concat_str(a, pl.lit(" and "), b),
        caption=cap.size_caption(larger, a, b),
        foil=cap.size_caption(~larger, a, b),
    )


def foil(facts, *, seed: int, positive: pl.DataFrame, **_) -> pl.DataFrame:
    per, names, negatives = facts["per"], facts["names"], facts["negatives"]
    present = per.select(*PAIR, "object_ids").with_columns(pl.col("label").cast(pl.Int32))
    # B is the object to replace, A another class on the image kept in the caption
    ab = present.join(present, on="image_id", suffix="_a").filter(
        pl.col("label") != pl.col("label_a")
    )
    ab = ab.with_columns(_r=hash_series(ab, ["image_id", "label", "label_a"], seed))
    ab = (
        ab.sort("_r")
        .unique(subset=PAIR, keep="first")
        .rename({"label": "class_b", "label_a": "class_a"})
    )
    ab = ab.with_columns(object_ids=pl.concat_list("object_ids_a", "object_ids")).drop(
        "object_ids_a", "_r"
    )
    parents = facts["parents"]
    siblings = (
        parents.join(parents, on="parent", suffix="_s")
        .filter(pl.col("id") != pl.col("id_s"))
        .select(class_b="id", foil_class="id_s")
        .unique()
        .with_columns(sibling=pl.lit(True))
    )
    ids = names["id"].to_numpy()
    tries = 8  # random other classes per item: the fallback where no sibling is absent
    repeated = ab.select("image_id", "class_b").with_columns(j=pl.int_ranges(0, tries)).explode("j")
    picks = ids[
        (hash_series(repeated, ["image_id", "class_b", "j"], seed).to_numpy() % len(ids)).astype(
            int
        )
    ]
    randoms = repeated.with_columns(
        foil_class=pl.Series(picks, dtype=pl.Int32), sibling=pl.lit(False)
    )
    verified_negs = negatives.with_columns(_r=hash_series(negatives, PAIR, seed)).sort("_r")
    verified_negs = verified_negs.group_by("image_id", maintain_order=True).head(tries)
    from_negs = (
        ab.select("image_id", "class_b")
        .join(verified_negs.select("image_id", foil_class="label"), on="image_id")
        .with_columns(sibling=pl.lit(False))
    )
    from_sibs = ab.select("image_id", "class_b").join(siblings, on="class_b")
    candidates = pl.concat([from_sibs, from_negs, randoms.drop("j")], how="diagonal_relaxed")
    taken = present.select("image_id", foil_class="label")
    candidates = (
        candidates.join(taken, on=["image_id", "foil_class"], how="anti")
        .join(positive.rename({"label": "foil_class"}), on=["image_id", "foil_class"], how="anti")
        .join(
            negatives.select("image_id", foil_class="label", evidence="evidence"),
            on=["image_id", "foil_class"],
            how="left",
        )
        .with_columns(verified=pl.col("evidence").is_not_null())
        # a verified absence first (an unverified foil may be on the image), then a sibling
        .with_columns(
            _p=(~pl.col("verified")).cast(pl.Int32) * 2 + (~pl.col("sibling")).cast(pl.Int32)
        )
    )
    candidates = candidates.with_columns(
        _r=hash_series(candidates, ["image_id", "class_b", "foil_class"], seed)
    )
    best = candidates.sort("_p", "_r").unique(subset=["image_id", "class_b"], keep="first")
    frame = ab.join(best, on=["image_id", "class_b"]).filter(
        pl.col("foil_class") != pl.col("class_a")
    )
    frame = with_names(frame, names, "class_a", "class_b", "foil_class")
    a, b, f = pl.col("class_a_name"), pl.col("class_b_name"), pl.col("foil_class_name")
    true_caption, false_caption = cap.pair_caption(a, b), cap.pair_caption(a, f)
    label = (hash_series(frame, ["image_id", "class_b"], seed + 2) % 2).cast(pl.Int32)
    return frame.with_columns(label=label).select(
        "image_id",
        "class_a",
        "class_b",
        "foil_class",
        "object_ids",
        "verified",
        "label",
        evidence=pl.col("evidence").fill_null("unverified"),
        text=pl.when(pl.col("label") == 1).then(true_caption).otherwise(false_caption),
        caption=true_caption,
        foil=false_caption,
    )
