"""Frame operations that bound the transient memory of the per-box tables.

Polars runs a whole-frame ``filter`` on one chunk layout: when the frame's columns (or
the mask) are chunked differently, as concatenated and joined tables are, it first
copies the whole frame into one chunk, so the filter's peak is about twice the table.
Column by column, the peak is the result plus one column.
"""

from __future__ import annotations

import polars as pl


def filter_columns(
    frame: pl.DataFrame, mask: pl.Series, columns: list[str] | None = None
) -> pl.DataFrame:
    """``frame.select(columns).filter(mask)``, built one column at a time, each column in
    one chunk (a ``select`` of a frame chunked unevenly copies it, too)."""
    mask = mask.rechunk()
    return pl.DataFrame(
        [frame.get_column(name).filter(mask).rechunk() for name in columns or frame.columns]
    )
