"""The decontaminate stage: drop training images that (near-)duplicate an evaluation image.

Evaluation images are the dataset's own non-train splits (val, test, ...)
and every holdout set (e.g. COCO val2017 read by the COCO reader). A train
image is dropped when its bytes equal an evaluation image's (with
``config.exact``) or its pHash is within ``config.phash_distance`` of one; the
search is the dedup stage's multi-index hashing, never all pairs. Its boxes
and image labels go with it, and the report names the evaluation image it
matched.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from detforge import schema
from detforge.builders.dedup import DedupConfig, attach_hashes, near_pairs
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
        "matched_set": pl.String,  # holdout name, or "split:<name>" for the dataset's own split
        "matched_image_id": pl.Int64,
        "matched_source": pl.String,
        "matched_source_image_id": pl.String,
        "matched_file_name": pl.String,
        "distance": pl.Int32,  # pHash Hamming distance (0 for an exact copy)
        "exact": pl.Boolean,
        "reason": pl.String,
    }
)


def _eval_images(hashed: pl.DataFrame, holdouts: dict[str, pl.DataFrame]) -> pl.DataFrame:
    own = hashed.filter(pl.col("split") != TRAIN).with_columns(
        matched_set=pl.format("split:{}", pl.col("split"))
    )
    frames = [own] + [h.with_columns(matched_set=pl.lit(name)) for name, h in holdouts.items()]
    cols = ["matched_set", "image_id", "source", "source_image_id", "file_name", "sha256", "phash"]
    return pl.concat([f.select(cols) for f in frames]).with_columns(pl.col("phash").cast(pl.UInt64))


def _pairs(
    train: pl.DataFrame, evals: pl.DataFrame, config: DedupConfig
) -> tuple[pl.DataFrame, int]:
    """Matching ``(i, j)`` row pairs (``i`` into ``train``, ``j`` into ``evals``), and how
    many hashes the near search's bucket cap skipped."""
    parts = [pl.DataFrame(schema={"i": pl.Int64, "j": pl.Int64})]
    capped = 0
    if config.exact:
        left = train.select("sha256").with_row_index("i").drop_nulls()
        right = evals.select("sha256").with_row_index("j").drop_nulls()
        parts.append(left.join(right, on="sha256").select(pl.col("i", "j").cast(pl.Int64)))
    if config.phash_distance >= 0:
        search = near_pairs(train["phash"], config.phash_distance, others=evals["phash"])
        parts.append(search.pairs.select("i", "j"))
        capped = search.capped_hashes
    return pl.concat(parts).unique(), capped


def _report(train: pl.DataFrame, evals: pl.DataFrame, pairs: pl.DataFrame) -> pl.DataFrame:
    """The closest evaluation match of every matched train image."""
    left = train.select(
        "image_id", "source", "source_image_id", "file_name", "sha256", "phash"
    ).with_row_index("i")
    right = evals.select(
        "matched_set",
        matched_image_id="image_id",
        matched_source="source",
        matched_source_image_id="source_image_id",
        matched_file_name="file_name",
        matched_sha="sha256",
        matched_phash="phash",
    ).with_row_index("j")
    rows = (
        pairs.with_columns(pl.col("i", "j").cast(pl.UInt32)).join(left, on="i").join(right, on="j")
    )
    distance = hamming(
        rows["phash"].fill_null(0).to_numpy(), rows["matched_phash"].fill_null(0).to_numpy()
    )
    rows = rows.with_columns(
        exact=pl.col("sha256") == pl.col("matched_sha"),
        distance=pl.when(pl.col("phash").is_not_null() & pl.col("matched_phash").is_not_null())
        .then(pl.Series(distance, dtype=pl.Int32))
        .otherwise(None),
    )
    reason = (
        pl.when(pl.col("exact"))
        .then(pl.lit("exact copy (same bytes) of "))
        .otherwise(pl.format("near copy (pHash distance {}) of ", pl.col("distance")))
    )
    best = (
        rows.sort(
            "image_id",
            pl.col("exact").fill_null(False),
            "distance",
            "matched_set",
            "matched_image_id",
            descending=[False, True, False, False, False],
            nulls_last=True,
        )
        .unique("image_id", keep="first", maintain_order=True)
        .with_columns(
            reason=pl.concat_str(
                reason,
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
    report: pl.DataFrame, train: pl.DataFrame, evals: pl.DataFrame, sets: list, capped: int
) -> dict:
    """What the stage did; unhashed and capped images are images it could not fully check."""
    return {
        "capped_hashes": capped,
        "dropped": report.height,
        "sets": sets,
        "train_images": train.height,
        "eval_images": evals.height,
        "unhashed_train": int(train["phash"].is_null().sum()),
        "unhashed_eval": int(evals["phash"].is_null().sum()),
    }


def decontaminate(
    dataset: DetDataset,
    holdouts: dict[str, DetDataset],
    config: DedupConfig,
    *,
    engine: str = "process",
    workers: int | None = None,
    cache_dir: Path | None = None,
) -> tuple[DetDataset, pl.DataFrame]:
    """Drop every train image that duplicates an evaluation image; returns the dataset and a
    :data:`REPORT` frame (one row per dropped image, sorted by image_id).

    Images the dataset already hashed (dedup stage) are not re-read; holdout
    images are hashed through the same per-file cache.
    """
    opts = {
        "engine": engine,
        "workers": workers,
        "cache_dir": cache_dir,
        "read_files": config.matches_images,
    }
    hashed = attach_hashes(dataset.images, dataset.roots, **opts)
    held = {name: attach_hashes(h.images, h.roots, **opts) for name, h in sorted(holdouts.items())}
    evals = _eval_images(hashed, held)
    train = hashed.filter(pl.col("split") == TRAIN)
    pairs, capped = _pairs(train, evals, config)
    report = _report(train, evals, pairs)
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
        meta={**dataset.meta, "decontaminate": _stats(report, train, evals, sorted(held), capped)},
    )
    return out, report
