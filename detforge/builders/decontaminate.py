"""The decontaminate stage: drop training images that (near-)duplicate an evaluation image.

Evaluation images are the dataset's own non-train splits (val, test, ...) and every
holdout set (e.g. COCO val2017 read by the COCO reader). *Every* training image is
compared, including the copies the dedup stage merged into or removed from a group
(they come from its group report): a duplicate group leaves training as a whole
when any of its members matches, since the kept copy then shows the same photo as
the evaluation image even where it is itself a little further from it.

A member matches when its bytes equal an evaluation image's (with ``config.exact``),
or its pHash is within ``config.phash_distance`` of one and the gradient hashes
confirm it (``config.dhash_distance``); the search is the dedup stage's (exact,
:mod:`.dedup.mih`). The dropped image's boxes and image labels go with it, and the
report names the member that matched and the evaluation image.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from detforge import schema
from detforge.builders.dedup import DedupConfig, attach_hashes
from detforge.builders.dedup.hashing import Note
from detforge.builders.dedup.images import dhash_distance, near_edges, nodes
from detforge.builders.dedup.mih import hamming
from detforge.dataset import DetDataset

TRAIN = "train"

#: one row per dropped train image (its closest evaluation match)
REPORT = pl.Schema(
    {
        "image_id": pl.Int64,
        "source": pl.String,
        "source_image_id": pl.String,
        "file_name": pl.String,
        "via_image_id": pl.Int64,  # the group member that matched (the image itself or a copy)
        "via_source_image_id": pl.String,
        "matched_set": pl.String,  # holdout name, or "split:<name>" for the dataset's own split
        "matched_image_id": pl.Int64,
        "matched_source": pl.String,
        "matched_source_image_id": pl.String,
        "matched_file_name": pl.String,
        "distance": pl.Int32,  # pHash Hamming distance (0 for an exact copy)
        "dhash_distance": pl.Int32,  # gradient-hash distance
        "exact": pl.Boolean,
        "reason": pl.String,
    }
)


COLUMNS = ["image_id", "source", "source_image_id", "file_name", "split", "sha256", "phash"]


def _eval_images(hashed: pl.DataFrame, holdouts: dict[str, pl.DataFrame]) -> pl.DataFrame:
    own = hashed.filter(pl.col("split") != TRAIN).with_columns(
        matched_set=pl.format("split:{}", pl.col("split"))
    )
    frames = [own] + [h.with_columns(matched_set=pl.lit(name)) for name, h in holdouts.items()]
    return pl.concat(
        [f.select("matched_set", *COLUMNS, "dhash") for f in frames], how="vertical_relaxed"
    ).with_columns(pl.col("phash").cast(pl.UInt64))


def _train_members(hashed: pl.DataFrame, groups: pl.DataFrame | None) -> pl.DataFrame:
    """Every training image to compare: those left in the dataset and the copies dedup
    merged or removed, each with ``group`` = the image_id that stays in the dataset."""
    kept = hashed.filter(pl.col("split") == TRAIN).with_columns(group=pl.col("image_id"))
    frames = [kept.select("group", *COLUMNS, "dhash")]
    if groups is not None and groups.height:
        copies = groups.filter(
            pl.col("action").is_in(["merged", "removed_cropped"]) & (pl.col("split") == TRAIN)
        ).with_columns(group=pl.col("dup_group"))
        frames.append(copies.select("group", *COLUMNS, "dhash"))
    return pl.concat(frames, how="vertical_relaxed").with_columns(pl.col("phash").cast(pl.UInt64))


def _pairs(
    train: pl.DataFrame,
    evals: pl.DataFrame,
    config: DedupConfig,
    engine: str,
    workers: int | None,
) -> tuple[pl.DataFrame, dict]:
    """Matching ``(i, j)`` row pairs (``i`` into ``train``, ``j`` into ``evals``) and the
    search counts."""
    parts = [pl.DataFrame(schema={"i": pl.Int64, "j": pl.Int64})]
    if config.exact:
        left = train.select("sha256").with_row_index("i").drop_nulls()
        right = evals.select("sha256").with_row_index("j").drop_nulls()
        parts.append(left.join(right, on="sha256").select(pl.col("i", "j").cast(pl.Int64)))
    train_node, eval_node = nodes(train, config), nodes(evals, config)
    edges, stats = near_edges(
        train,
        train_node,
        config,
        others=evals,
        other_node=eval_node,
        engine=engine,
        workers=workers,
    )
    if edges.height:  # every row of each matched node, on both sides
        left = pl.DataFrame({"a": train_node}).with_row_index("i")
        right = pl.DataFrame({"b": eval_node}).with_row_index("j")
        parts.append(
            edges.join(left, on="a").join(right, on="b").select(pl.col("i", "j").cast(pl.Int64))
        )
    return pl.concat(parts).unique(), stats


def _report(train: pl.DataFrame, evals: pl.DataFrame, pairs: pl.DataFrame) -> pl.DataFrame:
    """One row per dropped image (a group's image left in the dataset): its closest
    evaluation match through any member."""
    left = train.select(
        "group",
        via_image_id="image_id",
        via_source="source",
        via_source_image_id="source_image_id",
        sha256="sha256",
        phash="phash",
        dhash="dhash",
    ).with_row_index("i")
    right = evals.select(
        "matched_set",
        matched_image_id="image_id",
        matched_source="source",
        matched_source_image_id="source_image_id",
        matched_file_name="file_name",
        matched_sha="sha256",
        matched_phash="phash",
        matched_dhash="dhash",
    ).with_row_index("j")
    rows = (
        pairs.with_columns(pl.col("i", "j").cast(pl.UInt32)).join(left, on="i").join(right, on="j")
    )
    distance = hamming(
        rows["phash"].fill_null(0).to_numpy(), rows["matched_phash"].fill_null(0).to_numpy()
    )
    both = pl.col("phash").is_not_null() & pl.col("matched_phash").is_not_null()
    rows = rows.with_columns(
        exact=pl.col("sha256") == pl.col("matched_sha"),
        distance=pl.when(both).then(pl.Series(distance, dtype=pl.Int32)),
        dhash_distance=pl.when(both).then(
            pl.Series(dhash_distance(rows["dhash"], rows["matched_dhash"]), dtype=pl.Int32)
        ),
    )
    kept = train.filter(pl.col("image_id") == pl.col("group")).select(
        "image_id", "source", "source_image_id", "file_name"
    )
    how = (
        pl.when(pl.col("exact"))
        .then(pl.lit("exact copy (same bytes) of "))
        .otherwise(
            pl.format(
                "near copy (pHash distance {}, gradient-hash distance {}) of ",
                "distance",
                "dhash_distance",
            )
        )
    )
    who = (
        pl.when(pl.col("via_image_id") == pl.col("image_id"))
        .then(pl.lit(""))
        .otherwise(pl.format("its duplicate {}/{} is a ", "via_source", "via_source_image_id"))
    )
    best = (
        rows.join(kept, left_on="group", right_on="image_id")
        .rename({"group": "image_id"})
        .sort(
            "image_id",
            pl.col("exact").fill_null(False),
            "distance",
            "matched_set",
            "matched_image_id",
            "via_image_id",
            descending=[False, True, False, False, False, False],
            nulls_last=True,
        )
        .unique("image_id", keep="first", maintain_order=True)
        .with_columns(
            reason=pl.concat_str(
                who,
                how,
                pl.format(
                    "{} image {}/{}",
                    "matched_set",
                    "matched_source",
                    "matched_source_image_id",
                ),
            )
        )
    )
    return best.select(REPORT.names()).cast(REPORT)


def _stats(
    report: pl.DataFrame, train: pl.DataFrame, evals: pl.DataFrame, sets: list, search: dict
) -> dict:
    """What the stage did; unhashed images are images it could not check."""
    return {
        "dropped": report.height,
        "sets": sets,
        "train_images": int(train["group"].n_unique()),
        "train_members": train.height,
        "eval_images": evals.height,
        "near_candidates": search["candidates"],
        "near_rejected": search["rejected"],
        "unhashed_train": int(train["phash"].is_null().sum()),
        "unhashed_eval": int(evals["phash"].is_null().sum()),
    }


def decontaminate(
    dataset: DetDataset,
    holdouts: dict[str, DetDataset],
    config: DedupConfig,
    *,
    groups: pl.DataFrame | None = None,
    engine: str = "process",
    workers: int | None = None,
    cache_dir: Path | None = None,
    note: Note | None = None,
) -> tuple[DetDataset, pl.DataFrame]:
    """Drop every train image that duplicates an evaluation image, or whose duplicate
    group has a member that does; returns the dataset and a :data:`REPORT` frame (one
    row per dropped image, sorted by image_id).

    ``groups`` is the dedup stage's report (every member of every group, with its
    hashes). Images the dataset already hashed (dedup stage) are not re-read; holdout
    images are hashed through the same per-file cache.
    """
    opts = {
        "engine": engine,
        "workers": workers,
        "cache_dir": cache_dir,
        "read_files": config.matches_images,
        "note": note,
    }
    hashed = attach_hashes(dataset.images, dataset.roots, **opts)
    held = {name: attach_hashes(h.images, h.roots, **opts) for name, h in sorted(holdouts.items())}
    evals = _eval_images(hashed, held)
    train = _train_members(hashed, groups)
    pairs, search = _pairs(train, evals, config, engine, workers)
    report = _report(train, evals, pairs).sort("image_id")
    dropped = report.select("image_id")
    out = dataset.replace(
        images=schema.conform(
            hashed.join(dropped, on="image_id", how="anti", maintain_order="left").select(
                schema.IMAGES.names()
            ),
            "images",
        ),
        objects=dataset.objects.join(dropped, on="image_id", how="anti", maintain_order="left"),
        image_labels=dataset.image_labels.join(
            dropped, on="image_id", how="anti", maintain_order="left"
        ),
        meta={**dataset.meta, "decontaminate": _stats(report, train, evals, sorted(held), search)},
    )
    return out, report
