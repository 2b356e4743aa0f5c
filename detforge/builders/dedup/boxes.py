"""Cross-source box merge: one box per object when several sources drew it.

After carrying, an image may hold boxes of several sources. Boxes of the same
unified label from *different* sources with IoU >= ``box_iou`` become one: the
box of the best-priority source stays and lists the others' object ids in
``merged_object_ids``. Resolution is greedy by priority rank: the boxes of the
best rank absorb, for each other source, their best-IoU unabsorbed match
(ties by object id); absorbed boxes never absorb. All columnar (a self-join
on ``(image_id, label)``); only the number of ranks is looped over.
"""

from __future__ import annotations

import polars as pl

from detforge import schema
from detforge.builders.dedup.config import DedupConfig, priority_rank


def _candidates(objects: pl.DataFrame, config: DedupConfig) -> pl.DataFrame:
    """Cross-source same-label pairs ``(keep, drop)`` with IoU >= threshold, keep ranking first."""
    multi = objects.filter(
        pl.col("label").is_not_null() & (pl.col("source").n_unique().over("image_id") > 1)
    )
    boxes = schema.bbox_columns(multi).select(
        "image_id",
        "label",
        "object_id",
        "source",
        priority_rank(config),
        "x1",
        "y1",
        "x2",
        "y2",
    )
    pairs = boxes.join(boxes, on=["image_id", "label"], suffix="_o").filter(
        (pl.col("source") != pl.col("source_o"))
        & (
            (pl.col("rank") < pl.col("rank_o"))
            | ((pl.col("rank") == pl.col("rank_o")) & (pl.col("source") < pl.col("source_o")))
        )
    )
    iw = (pl.min_horizontal("x2", "x2_o") - pl.max_horizontal("x1", "x1_o")).clip(lower_bound=0)
    ih = (pl.min_horizontal("y2", "y2_o") - pl.max_horizontal("y1", "y1_o")).clip(lower_bound=0)
    inter = iw.cast(pl.Float64) * ih.cast(pl.Float64)
    area = ((pl.col("x2") - pl.col("x1")) * (pl.col("y2") - pl.col("y1"))).cast(pl.Float64)
    area_o = ((pl.col("x2_o") - pl.col("x1_o")) * (pl.col("y2_o") - pl.col("y1_o"))).cast(
        pl.Float64
    )
    return (
        pairs.with_columns(iou=inter / (area + area_o - inter))
        .filter(pl.col("iou") >= config.box_iou)
        .select(
            keep="object_id",
            drop="object_id_o",
            drop_source="source_o",
            keep_rank="rank",
            keep_source="source",
            iou="iou",
        )
    )


def merge_boxes(objects: pl.DataFrame, config: DedupConfig) -> tuple[pl.DataFrame, int]:
    """Objects with cross-source duplicates merged, and the number of boxes absorbed."""
    pairs = _candidates(objects, config)
    absorbed = pl.DataFrame(schema={"keep": pl.Int64, "drop": pl.Int64})
    orders = pairs.select("keep_rank", "keep_source").unique().sort("keep_rank", "keep_source")
    for rank, source in orders.rows():
        gone = absorbed.select(object_id="drop")
        step = (
            pairs.filter((pl.col("keep_rank") == rank) & (pl.col("keep_source") == source))
            .join(gone, left_on="keep", right_on="object_id", how="anti")
            .join(gone, left_on="drop", right_on="object_id", how="anti")
            .sort("iou", "keep", "drop", descending=[True, False, False])
            .unique("drop", keep="first", maintain_order=True)
            .unique(["keep", "drop_source"], keep="first", maintain_order=True)
        )
        absorbed = pl.concat([absorbed, step.select("keep", "drop")])
    if not absorbed.height:
        return objects, 0
    lists = (
        absorbed.join(
            objects.select(
                drop="object_id",
                inherited=pl.col("merged_object_ids").fill_null(pl.lit([], pl.List(pl.Int64))),
            ),
            on="drop",
        )
        .group_by("keep")
        .agg(
            pl.concat_list("drop", "inherited")
            .list.explode(keep_nulls=False, empty_as_null=False)
            .alias("new_ids")
        )
    )
    out = (
        objects.join(
            absorbed.select(object_id="drop"), on="object_id", how="anti", maintain_order="left"
        )
        .join(lists, left_on="object_id", right_on="keep", how="left", maintain_order="left")
        .with_columns(
            merged_object_ids=pl.when(pl.col("new_ids").is_null())
            .then("merged_object_ids")
            .otherwise(
                pl.concat_list(
                    pl.col("merged_object_ids").fill_null(pl.lit([], pl.List(pl.Int64))),
                    "new_ids",
                )
                .list.unique()
                .list.sort()
            )
        )
        .drop("new_ids")
    )
    return out, absorbed.height
