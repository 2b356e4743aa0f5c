"""Per-detection and per-missed-box rows of an evaluation at IoU 0.5 (matches.parquet).

faster-coco-eval reports the ``(detection, ground truth)`` pairs it matched; one pass
with a single IoU threshold (0.5) and one area range (all) makes those pairs exactly its
matches. Everything else a detection can be (FP, or ignored and why) follows from the
protocol's rules, which :mod:`detforge.evaluators.detection` hands to the evaluator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from faster_coco_eval import COCOeval_faster

    from detforge.evaluators.detection import EvalData, Protocol


def matches(
    ev: COCOeval_faster, data: EvalData, protocol: Protocol, kept: pl.DataFrame, labels: list[int]
) -> pl.DataFrame:
    """Per-detection and per-unmatched-box rows of a ``matching`` evaluation (IoU 0.5).

    ``status`` TP/FP/FN/ignored; ``reason`` says why a row is ignored.
    """
    pairs = ev.eval["matched"]
    matched = (
        pl.DataFrame({"key": list(pairs.keys()), "iou": list(pairs.values())}, strict=False)
        .with_columns(pl.col("key").cast(pl.String).str.split_exact("_", 1))
        .unnest("key")
        .select(
            pl.col("field_0").cast(pl.Int64).alias("dt_id"),
            pl.col("field_1").cast(pl.Int64).alias("gt_id"),
            pl.col("iou").cast(pl.Float64),
        )
    )
    gt = data.gt.select("gt_id", "object_id", "iscrowd")
    last = protocol.max_dets[-1]
    dets = (
        data.dets.join(matched, on="dt_id", how="left")
        .join(gt, on="gt_id", how="left")
        .sort(["eval_id", "label", "score", "dt_id"], descending=[False, False, True, False])
        .with_columns(
            pl.col("dt_id").is_in(kept["dt_id"].implode()).alias("_kept"),
            # position by score within (image, class), as the evaluator sorts (stable)
            pl.int_range(pl.len()).over("eval_id", "label").alias("_rank"),
        )
        .sort("dt_id")
    )
    federated_rule = pl.lit(protocol.federated)
    reason = (
        pl.when(~pl.col("label").is_in(pl.Series(labels, dtype=pl.Int32).implode()))
        .then(pl.lit("class without ground truth"))
        .when(federated_rule & ~pl.col("annotated"))
        .then(pl.lit("class not annotated on image"))
        .when(~pl.col("_kept") | (pl.col("_rank") >= last))
        .then(pl.lit("beyond max detections"))
        .when(pl.col("gt_id").is_not_null() & (pl.col("iscrowd") == 1))
        .then(pl.lit("matched a crowd/group box"))
        .when(pl.col("gt_id").is_null() & federated_rule & pl.col("not_exhaustive"))
        .then(pl.lit("class not exhaustively annotated"))
    )
    det_rows = dets.select(
        "image_id",
        pl.col("pred_index"),
        pl.col("object_id"),
        "label",
        "score",
        "iou",
        pl.when(reason.is_not_null())
        .then(pl.lit("ignored"))
        .when(pl.col("gt_id").is_not_null())
        .then(pl.lit("TP"))
        .otherwise(pl.lit("FP"))
        .alias("status"),
        reason.alias("reason"),
    )
    missed = data.gt.join(matched, on="gt_id", how="anti").select(
        "image_id",
        pl.lit(None, pl.Int64).alias("pred_index"),
        "object_id",
        "label",
        pl.lit(None, pl.Float64).alias("score"),
        pl.lit(None, pl.Float64).alias("iou"),
        pl.when(pl.col("iscrowd") == 1)
        .then(pl.lit("ignored"))
        .otherwise(pl.lit("FN"))
        .alias("status"),
        pl.when(pl.col("iscrowd") == 1).then(pl.lit("crowd/group box")).alias("reason"),
    )
    return pl.concat([det_rows, missed]).with_columns(pl.lit(protocol.name).alias("protocol"))
