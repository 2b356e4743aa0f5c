"""Box merge after a carry: one box per object when several copies of a photo drew it.

After carrying, a kept image may hold boxes drawn on several copies (its own, and
each merged copy's, told apart by ``origin_image_id``), of one source or several.
Same-label boxes of *different* copies with IoU >= ``box_iou`` become one; boxes
drawn on one copy never merge with each other (two overlapping people are two
people). The box that stays is the kept copy's own, then that of the copy whose
source ranks first in ``priority`` (then the lower copy id); it lists the others'
object ids in ``merged_object_ids``. Resolution is greedy by that order: the boxes
of the best copy absorb, for each other copy, their best-IoU unabsorbed match (ties
by object id); absorbed boxes never absorb. All columnar (a self-join on
``(image_id, label)`` of images holding several copies' boxes); only the number of
copies per image is looped over.
"""

from __future__ import annotations

import polars as pl

from detforge import schema
from detforge.boxes import pair_iou
from detforge.builders.dedup.config import DedupConfig, priority_rank


def _candidates(objects: pl.DataFrame, config: DedupConfig) -> pl.DataFrame:
    """Same-label pairs ``(keep, drop)`` of different copies with IoU >= threshold, the
    keep box's copy coming first (``level``: 0 = the kept copy's own boxes)."""
    copy = pl.coalesce("origin_image_id", "image_id")
    multi = objects.filter(
        pl.col("label").is_not_null() & (copy.n_unique().over("image_id") > 1)
    ).with_columns(copy=copy)
    ranked = (
        multi.select("image_id", "copy", "source")
        .unique(["image_id", "copy"])
        .with_columns(priority_rank(config), own=pl.col("copy") != pl.col("image_id"))
        .sort("image_id", "own", "rank", "copy")
        .with_columns(level=pl.int_range(pl.len()).over("image_id"))
        .select("image_id", "copy", "level")
    )
    boxes = schema.bbox_columns(multi.join(ranked, on=["image_id", "copy"])).select(
        "image_id", "label", "object_id", "copy", "level", "x1", "y1", "x2", "y2"
    )
    pairs = boxes.join(boxes, on=["image_id", "label"], suffix="_o").filter(
        pl.col("level") < pl.col("level_o")
    )
    return (
        pairs.with_columns(iou=pair_iou("_o"))
        .filter(pl.col("iou") >= config.box_iou)
        .select(
            keep="object_id",
            drop="object_id_o",
            drop_copy="copy_o",
            level="level",
            iou="iou",
        )
    )


def merge_boxes(objects: pl.DataFrame, config: DedupConfig) -> tuple[pl.DataFrame, int]:
    """Objects with boxes of different copies merged, and the number of boxes absorbed."""
    pairs = _candidates(objects, config)
    absorbed = pl.DataFrame(schema={"keep": pl.Int64, "drop": pl.Int64})
    for level in sorted(pairs["level"].unique().to_list()):
        gone = absorbed.select(object_id="drop")
        step = (
            pairs.filter(pl.col("level") == level)
            .join(gone, left_on="keep", right_on="object_id", how="anti")
            .join(gone, left_on="drop", right_on="object_id", how="anti")
            .sort("iou", "keep", "drop", descending=[True, False, False])
            .unique("drop", keep="first", maintain_order=True)
            .unique(["keep", "drop_copy"], keep="first", maintain_order=True)
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
