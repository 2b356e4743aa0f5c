"""Box geometry as polars expressions over a frame of box pairs (normalised xyxy columns
``x1, y1, x2, y2`` beside the other box's, as :func:`detforge.schema.bbox_columns` makes)."""

from __future__ import annotations

import polars as pl


def pair_iou(suffix: str) -> pl.Expr:
    """Intersection over union (float64) of the box ``x1..y2`` and the box ``x1{suffix}..``
    on the same row: 0 for disjoint boxes."""

    def area(s: str) -> pl.Expr:
        return ((pl.col(f"x2{s}") - pl.col(f"x1{s}")) * (pl.col(f"y2{s}") - pl.col(f"y1{s}"))).cast(
            pl.Float64
        )

    width = pl.min_horizontal("x2", f"x2{suffix}") - pl.max_horizontal("x1", f"x1{suffix}")
    height = pl.min_horizontal("y2", f"y2{suffix}") - pl.max_horizontal("y1", f"y1{suffix}")
    inter = width.clip(lower_bound=0).cast(pl.Float64) * height.clip(lower_bound=0).cast(pl.Float64)
    return inter / (area("") + area(suffix) - inter)
