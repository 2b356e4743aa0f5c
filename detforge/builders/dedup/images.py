"""Image duplicate groups: find them, pick the kept copy, decide each other copy's fate.

Exact pairs share a SHA-256; near pairs are within the pHash radius (found by
multi-index hashing). Only images of the same split are grouped: a train copy
of a val image is the decontamination stage's business. Groups are the
connected components of the pair graph (scipy), so a chain a~b~c is one group.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from detforge.builders.dedup.config import DedupConfig, priority_rank
from detforge.builders.dedup.mih import PairSearch, hamming, near_pairs

#: one row per member of a duplicate group (see :func:`plan_groups`)
PLAN = pl.Schema(
    {
        "dup_group": pl.Int64,  # image_id of the kept copy
        "image_id": pl.Int64,
        "action": pl.String,  # kept | merged | removed_cropped
        "distance": pl.Int32,  # pHash Hamming distance to the kept copy
        "exact": pl.Boolean,  # same bytes as the kept copy
        "aspect": pl.Float64,  # width / height of this copy
        "kept_aspect": pl.Float64,
    }
)


def exact_pairs(sha: pl.Series, groups: pl.Series) -> pl.DataFrame:
    """Pairs ``(i, j)`` of equal non-null hashes within a group: each member to its group's first."""
    frame = pl.DataFrame({"sha": sha, "g": groups}).with_row_index("j").drop_nulls("sha")
    first = frame.group_by("sha", "g").agg(pl.col("j").min().alias("i"))
    return (
        frame.join(first, on=["sha", "g"])
        .filter(pl.col("i") != pl.col("j"))
        .select(pl.col("i").cast(pl.Int64), pl.col("j").cast(pl.Int64))
    )


def find_pairs(hashed: pl.DataFrame, config: DedupConfig) -> tuple[pl.DataFrame, PairSearch | None]:
    """Duplicate pairs ``(i, j)`` (row positions in ``hashed``) within each split."""
    split = hashed["split"].fill_null("")
    parts = []
    if config.exact:
        parts.append(exact_pairs(hashed["sha256"], split))
    search = None
    if config.phash_distance >= 0:
        search = near_pairs(hashed["phash"], config.phash_distance, groups=split)
        parts.append(search.pairs.select("i", "j"))
    pairs = pl.concat(parts) if parts else pl.DataFrame(schema={"i": pl.Int64, "j": pl.Int64})
    return pairs.unique().sort("i", "j"), search


def components(n: int, pairs: pl.DataFrame) -> np.ndarray:
    """Component label of each of ``n`` nodes of the undirected graph ``pairs``."""
    # imported here: scipy costs ~56 MB of memory, and only a build that dedups needs it
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    i, j = pairs["i"].to_numpy(), pairs["j"].to_numpy()
    graph = coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def plan_groups(hashed: pl.DataFrame, pairs: pl.DataFrame, config: DedupConfig) -> pl.DataFrame:
    """One :data:`PLAN` row per image of every duplicate group.

    The kept copy is the first by (source priority, source, image_id). Another
    copy is ``merged`` (its boxes carried) when its aspect ratio is within
    ``framing_tolerance`` of the kept copy's, else ``removed_cropped``.
    """
    if not pairs.height:
        return pl.DataFrame(schema=PLAN)
    labels = components(hashed.height, pairs)
    members = (
        hashed.drop("dup_group", strict=False)
        .with_columns(
            comp=pl.Series(labels),
            aspect=(
                pl.coalesce("width", "file_width").cast(pl.Float64)
                / pl.coalesce("height", "file_height").cast(pl.Float64)
            ),
            rank=priority_rank(config),
        )
        .filter(pl.len().over("comp") > 1)
        .sort("comp", "rank", "source", "image_id")
    )
    kept = members.group_by("comp", maintain_order=True).first()
    members = members.join(
        kept.select(
            "comp",
            dup_group="image_id",
            kept_sha="sha256",
            kept_phash="phash",
            kept_aspect="aspect",
        ),
        on="comp",
    )
    distance = hamming(
        members["phash"].fill_null(0).to_numpy(), members["kept_phash"].fill_null(0).to_numpy()
    )
    same_framing = (pl.col("aspect") / pl.col("kept_aspect") - 1).abs() <= config.framing_tolerance
    plan = members.with_columns(
        distance=pl.when(pl.col("phash").is_not_null() & pl.col("kept_phash").is_not_null())
        .then(pl.Series(distance, dtype=pl.Int32))
        .otherwise(None),
        exact=pl.col("sha256") == pl.col("kept_sha"),
        action=pl.when(pl.col("image_id") == pl.col("dup_group"))
        .then(pl.lit("kept"))
        .when(same_framing.fill_null(False))
        .then(pl.lit("merged"))
        .otherwise(pl.lit("removed_cropped")),
    )
    return plan.select(PLAN.names()).cast(PLAN).sort("dup_group", "image_id")


def describe() -> pl.Expr:
    """A one-line reason per report row (an expression over the report frame)."""
    how = (
        pl.when(pl.col("exact"))
        .then(pl.lit("exact duplicate (same bytes)"))
        .otherwise(
            pl.format("near duplicate (pHash distance {} to the kept copy)", pl.col("distance"))
        )
    )
    kept_name = pl.format("{}/{}", pl.col("kept_source"), pl.col("kept_source_image_id"))
    framing = pl.format(
        "aspect {} vs {}", pl.col("aspect").round(4), pl.col("kept_aspect").round(4)
    )
    return (
        pl.when(pl.col("action") == "kept")
        .then(pl.format("kept by source priority; group of {}", pl.len().over("dup_group")))
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
