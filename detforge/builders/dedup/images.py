"""Image duplicate groups: find them, pick the kept copy, decide each other copy's fate.

1. **Nodes.** Images of one split with identical hashes (pHash and gradient hash, or
   the same bytes when near matching is off or an image could not be decoded) are one
   node: copies of each other at distance 0, whatever their number.
2. **Edges.** Nodes whose pHashes are within ``phash_distance`` (the exact search of
   :mod:`.mih`) and whose gradient hashes are within ``dhash_distance`` (the second,
   independent signal) are near duplicates. Only images of the same split are paired: a
   train copy of a val image is the decontamination stage's business.
3. **Groups, without chains.** Nodes are taken in kept-copy order (source priority,
   most pixels, largest file, image id, of their best image); a node not yet claimed
   becomes a group and claims every unclaimed node it has an edge to. So every member
   is within the radius of its group's kept copy: a chain a~b~c with a and c far apart
   gives {a, b} and {c}. (This is the greedy order computed in rounds, not a loop over
   images: a node leads when no better neighbour leads, and joins its best leading
   neighbour.)
"""

from __future__ import annotations

import numpy as np
import polars as pl

from detforge.builders.dedup.config import DedupConfig, preference
from detforge.builders.dedup.mih import hamming, near_pairs

#: one row per member of a duplicate group (see :func:`plan_groups`)
PLAN = pl.Schema(
    {
        "dup_group": pl.Int64,  # image_id of the kept copy
        "image_id": pl.Int64,
        "action": pl.String,  # kept | merged | removed_cropped
        "distance": pl.Int32,  # pHash Hamming distance to the kept copy
        "dhash_distance": pl.Int32,  # gradient-hash distance to the kept copy
        "exact": pl.Boolean,  # same bytes as the kept copy
        "aspect": pl.Float64,  # width / height of this copy
        "kept_aspect": pl.Float64,
    }
)
EDGES = pl.Schema({"a": pl.Int64, "b": pl.Int64})


def dhash_distance(a: pl.Series, b: pl.Series) -> np.ndarray:
    """Hamming distance of two columns of 128-bit gradient hashes (nulls count as 0)."""
    halves = []
    for column in (a, b):
        flat = column.cast(pl.Array(pl.UInt64, 2)).arr.explode().fill_null(0)
        halves.append(flat.to_numpy().reshape(-1, 2))
    return hamming(halves[0], halves[1]).sum(axis=1)


def nodes(hashed: pl.DataFrame, config: DedupConfig) -> pl.Series:
    """Per row, its node: the row index of the first image with the same split and
    hashes (null when the image has nothing to match on)."""
    near = config.phash_distance >= 0
    has_phash = pl.col("phash").is_not_null() & pl.col("dhash").is_not_null()
    by_hash = pl.lit(near) & has_phash
    by_bytes = pl.lit(config.exact) & pl.col("sha256").is_not_null() & ~by_hash
    frame = hashed.select(
        split=pl.col("split").fill_null(""),
        phash=pl.when(by_hash).then("phash"),
        d0=pl.when(by_hash).then(pl.col("dhash").arr.get(0)),
        d1=pl.when(by_hash).then(pl.col("dhash").arr.get(1)),
        sha=pl.when(by_bytes).then("sha256"),
        usable=by_hash | by_bytes,
    ).with_row_index("row")
    keys = ["split", "phash", "d0", "d1", "sha"]
    first = frame.filter("usable").group_by(keys).agg(node=pl.col("row").min())
    return (
        frame.join(first, on=keys, how="left", nulls_equal=True, maintain_order="left")
        .select(pl.when("usable").then("node").cast(pl.Int64))
        .to_series()
    )


def _reps(hashed: pl.DataFrame, node: pl.Series) -> pl.DataFrame:
    """The first row of every node that has hashes to search (``row``: its index)."""
    reps = hashed.with_row_index("row").filter(pl.col("row").is_in(node.drop_nulls().implode()))
    return reps.filter(pl.col("phash").is_not_null() & pl.col("dhash").is_not_null())


def near_edges(
    hashed: pl.DataFrame,
    node: pl.Series,
    config: DedupConfig,
    *,
    others: pl.DataFrame | None = None,
    other_node: pl.Series | None = None,
    engine: str = "process",
    workers: int | None = None,
) -> tuple[pl.DataFrame, dict]:
    """Confirmed near-duplicate edges ``(a, b)`` between nodes (their first rows): within
    ``hashed`` and the same split, or (with ``others``) from ``hashed`` to ``others``. Also
    the counts of the search (``candidates``: pHash pairs, ``rejected``: those the
    gradient hash did not confirm)."""
    stats = {"nodes": int(node.drop_nulls().n_unique()), "candidates": 0, "rejected": 0}
    if config.phash_distance < 0:
        return pl.DataFrame(schema=EDGES), stats
    reps = _reps(hashed, node)
    right = None if others is None or other_node is None else _reps(others, other_node)
    search = near_pairs(
        reps["phash"],
        config.phash_distance,
        others=None if right is None else right["phash"],
        groups=reps["split"].fill_null("") if right is None else None,
        engine=engine,
        workers=workers,
    )
    # nodes sharing a pHash but not a gradient hash are distinct nodes at pHash distance
    # 0; expand() pairs them (quadratic only in such nodes per pHash, which are rare)
    pairs = search.expand()
    b_side = reps if right is None else right
    a, b = reps["row"].gather(pairs["i"]), b_side["row"].gather(pairs["j"])
    b_hashes = (hashed if others is None else others)["dhash"]
    confirm = dhash_distance(hashed["dhash"].gather(a), b_hashes.gather(b))
    ok = confirm <= config.dhash_distance
    stats["candidates"], stats["rejected"] = int(len(ok)), int((~ok).sum())
    edges = pl.DataFrame({"a": a.filter(ok), "b": b.filter(ok)}).cast(EDGES)
    return edges, stats


def leaders(order: pl.DataFrame, edges: pl.DataFrame) -> pl.DataFrame:
    """Greedy grouping of nodes: ``(node, leader)`` for every node in ``edges``.

    ``order`` has ``node`` and ``pos`` (kept-copy order). A node leads when no better
    neighbour leads, and follows its best leading neighbour otherwise: the result of
    taking nodes best first, each unclaimed one claiming its unclaimed neighbours.
    """
    pos = order.select("node", "pos")
    both = pl.concat([edges, edges.select(a="b", b="a")])
    # directed to the better neighbour: (node, better, better_pos)
    better = (
        both.join(pos, left_on="a", right_on="node")
        .join(pos.rename({"pos": "b_pos"}), left_on="b", right_on="node")
        .filter(pl.col("b_pos") < pl.col("pos"))
        .select(node="a", better="b", better_pos="b_pos")
    )
    state = pl.DataFrame({"node": pl.concat([edges["a"], edges["b"]]).unique()}).with_columns(
        leader=pl.lit(None, pl.Int64)
    )
    while True:
        open_ = state.filter(pl.col("leader").is_null()).select("node")
        if not open_.height:
            return state
        decided = state.filter(pl.col("leader").is_not_null())
        view = better.join(open_, on="node").join(
            decided.select(better="node", better_leader="leader"), on="better", how="left"
        )
        # follows: some better neighbour leads (leader == itself); take the best such
        follows = (
            view.filter(pl.col("better_leader") == pl.col("better"))
            .sort("better_pos")
            .group_by("node", maintain_order=True)
            .first()
            .select("node", new="better")
        )
        waiting = view.filter(pl.col("better_leader").is_null()).select("node").unique()
        leads = open_.join(follows, on="node", how="anti").join(waiting, on="node", how="anti")
        leads = leads.with_columns(new=pl.col("node"))
        step = pl.concat([follows, leads])
        state = state.join(step, on="node", how="left").select(
            "node", leader=pl.coalesce("leader", "new")
        )


def plan_groups(
    hashed: pl.DataFrame,
    config: DedupConfig,
    *,
    engine: str = "process",
    workers: int | None = None,
) -> tuple[pl.DataFrame, dict]:
    """One :data:`PLAN` row per image of every duplicate group, and search counts.

    A non-kept copy is ``merged`` (its boxes carried) when its aspect ratio is within
    ``framing_tolerance`` of the kept copy's, else ``removed_cropped``.
    """
    node = nodes(hashed, config)
    edges, stats = near_edges(hashed, node, config, engine=engine, workers=workers)
    rows = hashed.with_columns(
        node=node,
        aspect=(
            pl.coalesce("width", "file_width").cast(pl.Float64)
            / pl.coalesce("height", "file_height").cast(pl.Float64)
        ),
    ).with_row_index("row")
    ranked = rows.filter(pl.col("node").is_not_null()).sort(preference(config))
    best = ranked.group_by("node", maintain_order=True).agg(kept=pl.col("row").first())
    order = best.with_row_index("pos").with_columns(pl.col("pos").cast(pl.Int64))
    crowded = rows.filter(pl.col("node").is_not_null() & (pl.len().over("node") > 1))
    crowded = crowded.select(a="node", b="node").unique()
    graph = leaders(order, pl.concat([edges, crowded.cast(EDGES)]))
    kept = graph.join(best, left_on="leader", right_on="node").select("node", "kept")
    info = rows.select("row", "image_id", "sha256", "phash", "dhash", "aspect")
    members = (
        rows.select("row", "node")
        .join(kept, on="node")
        .filter(pl.len().over("kept") > 1)  # a node left with no neighbour is no group
        .join(info, on="row")
        .join(
            info.select(
                kept="row",
                dup_group="image_id",
                kept_sha="sha256",
                kept_phash="phash",
                kept_dhash="dhash",
                kept_aspect="aspect",
            ),
            on="kept",
        )
    )
    distance = hamming(
        members["phash"].fill_null(0).to_numpy(), members["kept_phash"].fill_null(0).to_numpy()
    )
    same_framing = (pl.col("aspect") / pl.col("kept_aspect") - 1).abs() <= config.framing_tolerance
    both = pl.col("phash").is_not_null() & pl.col("kept_phash").is_not_null()
    plan = members.with_columns(
        distance=pl.when(both).then(pl.Series(distance, dtype=pl.Int32)),
        dhash_distance=pl.when(both).then(
            pl.Series(dhash_distance(members["dhash"], members["kept_dhash"]), dtype=pl.Int32)
        ),
        exact=pl.col("sha256") == pl.col("kept_sha"),
        action=pl.when(pl.col("row") == pl.col("kept"))
        .then(pl.lit("kept"))
        .when(same_framing.fill_null(False))
        .then(pl.lit("merged"))
        .otherwise(pl.lit("removed_cropped")),
    )
    return plan.select(PLAN.names()).cast(PLAN).sort("dup_group", "image_id"), stats


def describe() -> pl.Expr:
    """A one-line reason per report row (an expression over the report frame)."""
    how = (
        pl.when(pl.col("exact"))
        .then(pl.lit("exact duplicate (same bytes)"))
        .otherwise(
            pl.format(
                "near duplicate (pHash distance {}, gradient-hash distance {} to the kept copy)",
                pl.col("distance"),
                pl.col("dhash_distance"),
            )
        )
    )
    kept_name = pl.format("{}/{}", pl.col("kept_source"), pl.col("kept_source_image_id"))
    framing = pl.format(
        "aspect {} vs {}", pl.col("aspect").round(4), pl.col("kept_aspect").round(4)
    )
    return (
        pl.when(pl.col("action") == "kept")
        .then(
            pl.format(
                "kept (source priority, then pixels, file size, id); group of {}",
                pl.len().over("dup_group"),
            )
        )
        .when(pl.col("action") == "merged")
        .then(
            pl.format(
                "{} of {}, same framing ({}): {} box(es) carried",
                how,
                kept_name,
                framing,
                pl.col("boxes_carried"),
            )
        )
        .otherwise(
            pl.format(
                "{} of {} with different framing ({}): removed, {} box(es) not carried",
                how,
                kept_name,
                framing,
                pl.col("boxes_dropped"),
            )
        )
        .alias("reason")
    )
