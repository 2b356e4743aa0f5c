"""The dedup stage: hash images, group duplicates, carry annotations, merge boxes."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from detforge import schema
from detforge.builders.dedup.boxes import merge_boxes
from detforge.builders.dedup.carry import carry_image_labels, carry_objects, moves
from detforge.builders.dedup.config import DedupConfig
from detforge.builders.dedup.hashing import Note, attach_hashes
from detforge.builders.dedup.images import describe, plan_groups
from detforge.dataset import DetDataset

#: one row per member of a duplicate group, and per image that could not be hashed
REPORT = pl.Schema(
    {
        "dup_group": pl.Int64,  # image_id of the kept copy (null for unhashed rows)
        "image_id": pl.Int64,
        "source": pl.String,
        "source_image_id": pl.String,
        "split": pl.String,
        "file_name": pl.String,
        "action": pl.String,  # kept | merged | removed_cropped | unhashed
        "distance": pl.Int32,  # pHash distance to the kept copy
        "dhash_distance": pl.Int32,  # gradient-hash distance to the kept copy
        "exact": pl.Boolean,  # same bytes as the kept copy
        "boxes_carried": pl.Int64,  # boxes moved onto the kept copy
        "boxes_dropped": pl.Int64,  # boxes removed with a cropped copy
        "boxes_merged": pl.Int64,  # on kept rows: boxes of other copies absorbed by the box merge
        "reason": pl.String,
        # the member's own hashes: decontamination compares every member with the eval sets
        "sha256": pl.String,
        "phash": pl.UInt64,
        "dhash": pl.Array(pl.UInt64, 2),
    }
)


def dedup(
    dataset: DetDataset,
    config: DedupConfig,
    *,
    engine: str = "process",
    workers: int | None = None,
    cache_dir: Path | None = None,
    note: Note | None = None,
) -> tuple[DetDataset, pl.DataFrame]:
    """Deduplicate images and boxes of a dataset in unified labels (``note``: remarks such
    as a damaged hash cache being rebuilt).

    Returns the new dataset (``images.sha256``/``phash`` filled on every hashed
    image, ``dup_group`` set on kept copies, removed copies gone, carried boxes
    re-pointed, boxes of different copies merged) and a :data:`REPORT` frame. Boxes
    with a null label are carried like any other but never box-merged.
    Statistics go to ``meta["dedup"]``.
    """
    hashed = attach_hashes(
        dataset.images,
        dataset.roots,
        engine=engine,
        workers=workers,
        cache_dir=cache_dir,
        read_files=config.matches_images,
        note=note,
    )
    plan, search = plan_groups(hashed, config, engine=engine, workers=workers)
    moved = moves(plan, hashed)
    objects, counts = carry_objects(dataset.objects, moved)
    image_labels, derived, conflicts = carry_image_labels(
        dataset.image_labels, dataset.label_spaces, objects, moved
    )
    before = objects.height
    objects, n_merged = merge_boxes(objects, config)
    merged_per_image = (
        objects.filter(pl.col("merged_object_ids").list.len() > 0)
        .group_by("image_id")
        .agg(boxes_merged=pl.col("merged_object_ids").list.len().sum().cast(pl.Int64))
    )
    images = (
        hashed.join(moved.select("image_id"), on="image_id", how="anti", maintain_order="left")
        .join(
            plan.select("image_id", new_group="dup_group"),
            on="image_id",
            how="left",
            maintain_order="left",
        )
        .with_columns(dup_group=pl.coalesce("new_group", "dup_group"))
    )
    report = _report(hashed, plan, counts, merged_per_image)
    stats = {
        "images_in": dataset.images.height,
        "images_out": images.height,
        "groups": int(plan["dup_group"].n_unique()) if plan.height else 0,
        "merged": int((plan["action"] == "merged").sum()),
        "removed_cropped": int((plan["action"] == "removed_cropped").sum()),
        "unhashed": int(hashed["hash_error"].is_not_null().sum()),
        "boxes_carried": int(counts["boxes_carried"].sum() or 0),
        "boxes_dropped": int(counts["boxes_dropped"].sum() or 0),
        "boxes_in": before,
        "boxes_merged": n_merged,
        "negatives_derived": derived,
        "negatives_contradicted": conflicts,
        "hash_nodes": search["nodes"],
        "near_candidates": search["candidates"],
        "near_rejected": search["rejected"],
    }
    out = dataset.replace(
        images=schema.conform(images.select(schema.IMAGES.names()), "images"),
        objects=objects,
        image_labels=image_labels,
        meta={**dataset.meta, "dedup": stats},
    )
    return out, report


def _report(
    hashed: pl.DataFrame,
    plan: pl.DataFrame,
    counts: pl.DataFrame,
    merged_per_image: pl.DataFrame,
) -> pl.DataFrame:
    info = hashed.select(
        "image_id", "source", "source_image_id", "split", "file_name", "sha256", "phash", "dhash"
    )
    kept = info.select(
        dup_group="image_id", kept_source="source", kept_source_image_id="source_image_id"
    )
    rows = (
        plan.join(info, on="image_id")
        .join(kept, on="dup_group")
        .join(counts, on="image_id", how="left")
        .join(merged_per_image, on="image_id", how="left")
        .with_columns(
            pl.col("boxes_carried", "boxes_dropped").fill_null(0),
            boxes_merged=pl.when(pl.col("action") == "kept").then(
                pl.col("boxes_merged").fill_null(0)
            ),
        )
        .with_columns(describe())
    )
    unhashed = hashed.filter(pl.col("hash_error").is_not_null()).select(
        "image_id",
        "source",
        "source_image_id",
        "split",
        "file_name",
        "sha256",
        action=pl.lit("unhashed"),
        reason=pl.format("not hashed, not deduplicated: {}", pl.col("hash_error")),
    )
    frames = [rows.select(n for n in REPORT.names() if n in rows.columns), unhashed]
    out = pl.concat(frames, how="diagonal_relaxed")
    return out.select(REPORT.names()).cast(REPORT).sort("dup_group", "image_id", nulls_last=True)
