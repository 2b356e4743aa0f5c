"""GitHub Markdown tables of polars frames (reports, dataset cards, probe-set cards)."""

from __future__ import annotations

import polars as pl


def md_table(frame: pl.DataFrame, limit: int | None = None) -> str:
    """A GitHub Markdown table of ``frame`` (first ``limit`` rows); ``_none_`` when empty.
    Integers get thousands separators, booleans read ``true``/``false``, nulls stay empty."""
    if limit is not None:
        frame = frame.head(limit)
    if frame.is_empty():
        return "_none_\n"

    def cell(value: object) -> str:
        if isinstance(value, bool) or value is None:
            text = "" if value is None else str(value).lower()
        else:
            text = f"{value:,}" if isinstance(value, int) else str(value)
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * frame.width]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join(lines) + "\n"
