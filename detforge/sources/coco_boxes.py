"""COCO absolute ``[x, y, w, h]`` boxes ⇄ detforge's normalised xyxy (readers and exporters)."""

from __future__ import annotations

import polars as pl

from detforge import schema


def from_coco_xywh(
    x: str = "bx",
    y: str = "by",
    w: str = "bw",
    h: str = "bh",
    width: str = "width",
    height: str = "height",
) -> list[pl.Expr]:
    """Expressions of normalised ``x1, y1, x2, y2`` (float64) from absolute xywh columns."""
    return [
        (pl.col(x) / pl.col(width)).alias("x1"),
        (pl.col(y) / pl.col(height)).alias("y1"),
        ((pl.col(x) + pl.col(w)) / pl.col(width)).alias("x2"),
        ((pl.col(y) + pl.col(h)) / pl.col(height)).alias("y2"),
    ]


def to_coco_xywh(
    objects: pl.DataFrame, images: pl.DataFrame, decimals: int | None = None
) -> pl.DataFrame:
    """``objects`` with ``coco_bbox``: ``[x, y, w, h]`` in pixels of its image (float64), and
    ``from_source``: whether that is the source's own box.

    The source's own box (``source_bbox``: as written, unclipped) wherever it describes the
    box on this image; a box without one, or carried from a duplicate copy (its
    ``origin_image_id`` is another image), is its normalised ``bbox`` times the image's size,
    rounded to ``decimals`` when given. ``images`` needs ``image_id``, ``width`` and
    ``height``; an object whose image is unknown or has no size gets a null box.
    """
    sizes = images.select("image_id", pl.col("width").alias("_w"), pl.col("height").alias("_h"))
    boxes = schema.bbox_columns(objects).join(
        sizes, on="image_id", how="left", maintain_order="left"
    )
    x1, y1 = (
        pl.col("x1").cast(pl.Float64) * pl.col("_w"),
        pl.col("y1").cast(pl.Float64) * pl.col("_h"),
    )
    x2, y2 = (
        pl.col("x2").cast(pl.Float64) * pl.col("_w"),
        pl.col("y2").cast(pl.Float64) * pl.col("_h"),
    )
    known = pl.col("_w").is_not_null() & pl.col("_h").is_not_null()
    xywh = [x1, y1, x2 - x1, y2 - y1]
    if decimals is not None:  # per coordinate, before packing: cheaper than a list.eval
        xywh = [v.round(decimals) for v in xywh]
    converted = pl.concat_arr(*xywh)  # 10x a concat_list → to_array
    own = pl.col("source_bbox").is_not_null() & (
        pl.col("origin_image_id").is_null() | (pl.col("origin_image_id") == pl.col("image_id"))
    )
    return boxes.with_columns(
        pl.when(known & own)
        .then(pl.col("source_bbox"))
        .when(known)
        .then(converted)
        .alias("coco_bbox"),
        (known & own).alias("from_source"),
    ).drop("x1", "y1", "x2", "y2", "_w", "_h")
