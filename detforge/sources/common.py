"""Helpers every source reader shares: JSON loading, safe paths, box checks, quarantine rows.

Box rules (the same for every format, see docs/sources.md):

* a box with zero or negative width/height (after clipping to the image) is dropped and
  recorded in ``quarantine``;
* a box partly outside the image is clipped to it and recorded in ``quarantine``;
* a box entirely outside the image has no area left after clipping, so it is dropped (and
  recorded) by the first rule;
* a non-positive ``area`` is replaced by the box's and recorded.

The source's own pixel box stays in ``source_bbox``, unclipped (evaluation uses it).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import orjson
import polars as pl

from detforge import schema
from detforge.errors import InputError

#: relative tolerance before a coordinate counts as "outside the image" (float noise)
OUTSIDE_TOLERANCE = 1e-6


def load_json(path: Path) -> Any:
    """Parse a JSON file with orjson; a missing or malformed file is an :class:`InputError`."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise InputError(path, None, None, f"cannot read file ({error.strerror})") from None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise InputError(path, None, None, f"malformed JSON ({error})") from None


def check_relative_path(file: Path, record: object, field: str, name: str) -> str:
    """``name`` as a clean relative POSIX path; absolute paths and ``..`` are an InputError."""
    if not name:
        raise InputError(file, record, field, "empty file name")
    posix = PurePosixPath(name.replace("\\", "/"))
    if posix.is_absolute() or name.startswith(("/", "\\")) or ":" in posix.parts[0]:
        raise InputError(file, record, field, f"absolute path {name!r} (must be relative)")
    if ".." in posix.parts:
        raise InputError(file, record, field, f"path {name!r} leaves the image root ('..')")
    return str(posix)


def check_paths(file: Path, frame: pl.DataFrame, id_col: str, col: str) -> None:
    """Reject absolute or ``..`` paths in ``frame[col]`` (vectorised check, one error)."""
    bad = frame.filter(
        pl.col(col).str.starts_with("/")
        | pl.col(col).str.starts_with("\\")
        | pl.col(col).str.contains(r"^[A-Za-z]:")
        | pl.col(col).str.contains(r"(^|[/\\])\.\.([/\\]|$)")
        | (pl.col(col).str.len_chars() == 0)
    )
    if bad.height:
        row = bad.row(0, named=True)
        check_relative_path(file, row[id_col], col, row[col])


def check_files_exist(file: Path, images: pl.DataFrame, root: Path) -> None:
    """Every ``images.file_name`` must exist under ``root``; the first missing is an error."""
    for image_id, name in zip(
        images["source_image_id"].to_list(), images["file_name"].to_list(), strict=True
    ):
        if not (root / name).is_file():
            raise InputError(file, image_id, "file_name", f"image file {root / name} not found")


def unknown(frame: pl.DataFrame, col: str, known: pl.Series) -> pl.DataFrame:
    """Rows of ``frame`` (in order) whose ``col`` is not in ``known``: a filter, where an
    anti join would hash and copy the whole, usually large, frame to find no row."""
    return frame.filter(~pl.col(col).is_in(known.implode()).fill_null(False))


def check_unique(file: Path, frame: pl.DataFrame, col: str, what: str) -> None:
    """A duplicated value in ``frame[col]`` is an InputError naming the first one."""
    dup = frame.filter(pl.col(col).is_duplicated())
    if dup.height:
        raise InputError(file, dup[col][0], col, f"duplicate {what} id")


def check_nulls(file: Path, frame: pl.DataFrame, columns: list[str], id_col: str | None) -> None:
    """A null (missing key / empty cell) in any of ``columns`` is an InputError."""
    for col in columns:
        missing = frame.filter(pl.col(col).is_null())
        if missing.height:
            if id_col is not None and id_col != col:
                record = missing[id_col][0]
            else:
                record = f"row {frame.with_row_index().filter(pl.col(col).is_null())['index'][0]}"
            raise InputError(file, record, col, "missing or null value")


def quarantine_rows(
    source: str, file: Path | str, frame: pl.DataFrame, record_col: str, field: str, reason: str
) -> pl.DataFrame:
    """QUARANTINE rows, one per row of ``frame``, naming the record by ``record_col``."""
    return frame.select(
        pl.lit(source).alias("source"),
        pl.lit(str(file)).alias("file"),
        pl.col(record_col).cast(pl.String).alias("record"),
        pl.lit(field).alias("field"),
        pl.lit(reason).alias("reason"),
    )


def clip_boxes(
    boxes: pl.DataFrame, source: str, file: Path | str, record_col: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Clip normalised ``x1, y1, x2, y2`` columns to [0, 1], drop empty boxes.

    Returns ``(kept, quarantine)``: boxes partly outside the image are clipped and recorded,
    boxes with no area left (zero/negative size, or entirely outside) are dropped and recorded.
    """
    lo, hi = -OUTSIDE_TOLERANCE, 1 + OUTSIDE_TOLERANCE
    outside = (
        (pl.col("x1") < lo)
        | (pl.col("y1") < lo)
        | (pl.col("x2") > hi)
        | (pl.col("y2") > hi)
        | pl.any_horizontal(pl.col("x1", "y1", "x2", "y2").is_nan())
    )
    clipped = boxes.with_columns(
        outside.alias("_outside"),
        *(pl.col(c).fill_nan(None).clip(0.0, 1.0) for c in ("x1", "y1", "x2", "y2")),
    )
    empty = (
        (pl.col("x2") <= pl.col("x1"))
        | (pl.col("y2") <= pl.col("y1"))
        | pl.any_horizontal(pl.col("x1", "y1", "x2", "y2").is_null())
    )
    dropped = clipped.filter(empty)
    kept = clipped.filter(~empty)
    moved = kept.filter(pl.col("_outside"))
    quarantine = pl.concat(
        [
            quarantine_rows(
                source, file, dropped, record_col, "bbox", "zero or negative size: box dropped"
            ),
            quarantine_rows(
                source, file, moved, record_col, "bbox", "box partly outside the image: clipped"
            ),
        ]
    )
    return kept.drop("_outside"), quarantine


def checked_area(
    boxes: pl.DataFrame, source: str, file: Path | str, record_col: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Fill ``area`` where missing and replace a non-positive one by the box's ``bw * bh``.

    Returns ``(boxes, quarantine)``: a recomputed area is recorded with the value it
    replaced (COCO-style tools would otherwise put the box in no area range).
    """
    box_area = pl.col("bw") * pl.col("bh")
    bad = boxes.filter(pl.col("area") <= 0)
    quarantine = bad.select(
        pl.lit(source).alias("source"),
        pl.lit(str(file)).alias("file"),
        pl.col(record_col).cast(pl.String).alias("record"),
        pl.lit("area").alias("field"),
        pl.format("area {} is not positive: recomputed from the box (w*h)", "area").alias("reason"),
    )
    fixed = boxes.with_columns(
        pl.when(pl.col("area").is_null() | (pl.col("area") <= 0))
        .then(box_area)
        .otherwise(pl.col("area"))
        .alias("area")
    )
    return fixed, quarantine


def make_dataset_tables(objects: pl.DataFrame) -> pl.DataFrame:
    """``objects`` with the ``bbox`` array built from ``x1..y2`` and the helper columns dropped."""
    # numpy (n, 4) float32 -> Array(Float32, 4) directly: list building is ~10x slower here
    corners = objects.select("x1", "y1", "x2", "y2").to_numpy().astype(np.float32)
    corners = corners.reshape(objects.height, 4)
    bbox = pl.Series("bbox", corners, dtype=schema.BBOX)
    return objects.drop("x1", "y1", "x2", "y2").with_columns(bbox)


def source_categories(frame: pl.DataFrame, source: str) -> pl.DataFrame:
    """``frame`` (with ``source_label``, ``name`` and optional extras) as SOURCE_CATEGORIES."""
    return schema.conform(frame.with_columns(pl.lit(source).alias("source")), "source_categories")
