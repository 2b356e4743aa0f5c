"""COCO-style JSON (COCO, Objects365, LVIS): parse once with orjson, build columns per key.

The per-format modules only say how a file name is found and which extra tables they
fill; everything else (key checks, id checks, box normalisation, quarantine) lives here.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from detforge import schema
from detforge.dataset import DetDataset
from detforge.errors import InputError
from detforge.memory import release_free_heap
from detforge.sources import common, jsonchunks
from detforge.sources.coco_boxes import from_coco_xywh

IMAGE_KEYS: dict[str, pl.DataType] = {
    "id": pl.Int64,
    "width": pl.Int64,
    "height": pl.Int64,
    "license": pl.String,
}
ANNOTATION_KEYS: dict[str, pl.DataType] = {
    "id": pl.Int64,
    "image_id": pl.Int64,
    "category_id": pl.Int64,
    "area": pl.Float64,
    "iscrowd": pl.Int64,
}


def _records(file: Path, data: Any, key: str) -> list:
    """``data[key]`` as a list, or an InputError naming the missing/odd key."""
    if not isinstance(data, dict):
        raise InputError(file, None, key, "expected a JSON object at the top level")
    if key not in data:
        raise InputError(file, None, key, f"missing top-level key {key!r}")
    records = data[key]
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise InputError(file, None, key, f"{key!r} must be a list of objects")
    return records


def _column(
    file: Path, section: str, records: list, key: str, dtype: pl.DataType, offset: int = 0
) -> pl.Series:
    """One key of every record as a typed column (missing key → null)."""
    values = [r.get(key) for r in records]
    if dtype == pl.String:
        values = [v if v is None or isinstance(v, str) else str(v) for v in values]
    try:
        return pl.Series(key, values, dtype=dtype, strict=True)
    except (TypeError, ValueError, OverflowError, pl.exceptions.PolarsError):
        for index, value in enumerate(values):
            expected = str if dtype == pl.String else list if dtype.is_nested() else (int, float)
            if value is not None and not isinstance(value, expected):
                record = f"{section}[{offset + index}]"
                raise InputError(file, record, key, f"bad value {value!r}") from None
        raise InputError(file, section, key, "values of the wrong type") from None


def columns(
    file: Path, section: str, records: list, keys: dict[str, pl.DataType], offset: int = 0
) -> pl.DataFrame:
    """A frame of ``keys`` taken from a list of JSON objects (one column per key)."""
    return pl.DataFrame([_column(file, section, records, k, t, offset) for k, t in keys.items()])


def _bbox_columns(file: Path, records: list, offset: int = 0) -> pl.DataFrame:
    """``bbox: [x, y, w, h]`` of every annotation as four float64 columns."""
    boxes = [r.get("bbox") for r in records]
    try:
        array = np.array(boxes, dtype=np.float64).reshape(len(records), 4)
    except (TypeError, ValueError):
        for index, box in enumerate(boxes):
            if (
                not isinstance(box, list)
                or len(box) != 4
                or not all(isinstance(v, (int, float)) for v in box)
            ):
                record = f"annotations[{offset + index}] (id {records[index].get('id')})"
                raise InputError(
                    file, record, "bbox", f"expected [x, y, w, h] numbers, got {box!r}"
                ) from None
        raise InputError(file, "annotations", "bbox", "malformed boxes") from None
    return pl.DataFrame({k: array[:, i] for i, k in enumerate(("bx", "by", "bw", "bh"))})


def _annotation_frame(file: Path, offset: int, records: Any) -> pl.DataFrame:
    """Columns of one chunk of the ``annotations`` array."""
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise InputError(file, None, "annotations", "'annotations' must be a list of objects")
    return pl.concat(
        [
            columns(file, "annotations", records, ANNOTATION_KEYS, offset),
            _bbox_columns(file, records, offset),
        ],
        how="horizontal",
    )


def category_records(file: Path, data: Any) -> list:
    """The category list of a COCO-style file, or of a bare JSON list of categories."""
    if isinstance(data, list):
        if not all(isinstance(r, dict) for r in data):
            raise InputError(file, None, "categories", "expected a list of objects")
        return data
    return _records(file, data, "categories")


def read_categories(
    path: Path, source: str, extra: dict[str, tuple[str, pl.DataType]] | None = None
) -> pl.DataFrame:
    """SOURCE_CATEGORIES of a COCO-style JSON (full annotation file or a bare category list).

    ``extra`` maps JSON keys to ``(column, dtype)`` of further SOURCE_CATEGORIES columns.
    """
    path = Path(path)
    return categories_frame(path, category_records(path, common.load_json(path)), source, extra)


def categories_frame(
    file: Path, records: list, source: str, extra: dict[str, tuple[str, pl.DataType]] | None
) -> pl.DataFrame:
    """SOURCE_CATEGORIES from parsed category records (``id``/``name`` required)."""
    extra = extra or {}
    frame = columns(file, "categories", records, {"id": pl.Int64, "name": pl.String})
    common.check_nulls(file, frame, ["id", "name"], "id")
    common.check_unique(file, frame, "id", "category")
    frame = frame.with_columns(
        _column(file, "categories", records, key, dtype).alias(col)
        for key, (col, dtype) in extra.items()
    )
    frame = frame.rename({"id": "source_label"}).with_columns(
        pl.col("source_label").cast(pl.String)
    )
    return common.source_categories(frame, source)


@dataclasses.dataclass(frozen=True)
class Parsed:
    """A COCO-style file split into frames (raw keys; ``bx, by, bw, bh`` box columns)."""

    file: Path
    images: pl.DataFrame
    annotations: pl.DataFrame
    categories: pl.DataFrame  # SOURCE_CATEGORIES


def parse(
    file: Path,
    source: str,
    *,
    image_keys: dict[str, pl.DataType],
    category_extra: dict[str, tuple[str, pl.DataType]] | None = None,
) -> Parsed:
    """Load ``file`` and build typed frames of its images, annotations and categories.

    The annotations array is parsed in chunks (see :mod:`jsonchunks`) so that millions
    of annotation dicts never exist at once.
    """
    file = Path(file)
    data, chunks = jsonchunks.load_split(
        file, "annotations", lambda offset, records: _annotation_frame(file, offset, records)
    )
    images = _records(file, data, "images")
    _records(file, data, "annotations")  # present (and a list) at the top level
    categories = categories_frame(file, _records(file, data, "categories"), source, category_extra)
    image_frame = columns(file, "images", images, {**IMAGE_KEYS, **image_keys})
    del data, images  # the parsed dicts: their memory goes back below
    # one contiguous copy now, rather than a rechunk inside each later join and filter
    annotations = pl.concat(chunks, rechunk=True) if chunks else _annotation_frame(file, 0, [])
    del chunks
    release_free_heap()
    return Parsed(file, image_frame, annotations, categories)


def _checked_images(
    parsed: Parsed, source: str, file_name: pl.Expr, image_root: Path, check_files: bool
) -> pl.DataFrame:
    """Images after the id, size and path checks, with ``source_image_id``, ``file_name``
    (relative to ``image_root``) and the stable ``image_id``; raw ``id`` kept."""
    file, images = parsed.file, parsed.images
    common.check_nulls(file, images, ["id", "width", "height"], "id")
    common.check_unique(file, images, "id", "image")
    bad_size = images.filter((pl.col("width") <= 0) | (pl.col("height") <= 0))
    if bad_size.height:
        raise InputError(file, bad_size["id"][0], "width", "image width/height must be positive")
    if "file_name" in images.columns:  # the raw name, before a format rewrites it
        named = images.filter(pl.col("file_name").is_not_null())
        common.check_paths(file, named, "id", "file_name")
    images = images.with_columns(
        pl.col("id").cast(pl.String).alias("source_image_id"), file_name.alias("file_name")
    )
    common.check_nulls(file, images, ["file_name"], "id")
    common.check_paths(file, images, "id", "file_name")
    if check_files:
        common.check_files_exist(file, images, image_root)
    return images.with_columns(
        schema.stable_id_expr(source, pl.col("source_image_id")).alias("image_id")
    )


def _checked_objects(
    parsed: Parsed, images: pl.DataFrame, source: str, split: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """OBJECTS rows (boxes normalised, clipped) and the quarantine rows of bad boxes."""
    file, anns = parsed.file, parsed.annotations
    common.check_nulls(file, anns, ["id", "image_id", "category_id"], "id")
    common.check_unique(file, anns, "id", "annotation")
    unknown = common.unknown(anns, "image_id", images["id"])
    if unknown.height:
        record, image = unknown["id"][0], unknown["image_id"][0]
        raise InputError(file, record, "image_id", f"unknown image {image}")
    known = parsed.categories["source_label"].cast(pl.Int64)
    unknown = common.unknown(anns, "category_id", known)
    if unknown.height:
        record, category = unknown["id"][0], unknown["category_id"][0]
        raise InputError(file, record, "category_id", f"unknown category {category}")
    sizes = images.select(
        pl.col("id").alias("image_id"), pl.col("image_id").alias("_iid"), "width", "height"
    )
    boxes = anns.join(sizes, on="image_id", how="left").with_columns(from_coco_xywh())
    boxes, quarantine = common.clip_boxes(boxes, source, file, "id")
    boxes, bad_area = common.checked_area(boxes, source, file, "id")
    objects = boxes.select(
        pl.col("_iid").alias("image_id"),
        schema.stable_id_expr(source, pl.lit(f"{split}/") + pl.col("id").cast(pl.String)).alias(
            "object_id"
        ),
        pl.lit(source).alias("source"),
        pl.col("category_id").cast(pl.String).alias("source_label"),
        "x1",
        "y1",
        "x2",
        "y2",
        "area",
        (pl.col("iscrowd").fill_null(0) != 0).alias("is_crowd"),
        pl.col("_iid").alias("origin_image_id"),
        pl.concat_arr("bx", "by", "bw", "bh").alias("source_bbox"),
    )
    return common.make_dataset_tables(objects), pl.concat([quarantine, bad_area])


def to_dataset(
    parsed: Parsed,
    source: str,
    split: str,
    file_name: pl.Expr,
    image_root: Path,
    *,
    check_files: bool = True,
    label_spaces: bool = False,
) -> tuple[DetDataset, pl.DataFrame]:
    """Checked DetDataset tables from :func:`parse` output.

    ``file_name`` is the expression of each image's path relative to ``image_root`` (over
    the raw image columns). ``label_spaces``: the source annotates all its classes
    exhaustively. Returns the dataset and the checked images frame (raw columns kept,
    plus ``image_id``) so a format can add its own tables from extra keys.
    """
    images = _checked_images(parsed, source, file_name, image_root, check_files)
    objects, quarantine = _checked_objects(parsed, images, source, split)
    spaces = parsed.categories.select("source", "source_label") if label_spaces else None
    dataset = DetDataset(
        images=images.select(
            "image_id",
            pl.lit(source).alias("source"),
            "source_image_id",
            "file_name",
            "width",
            "height",
            pl.lit(split).alias("split"),
            "license",
        ),
        objects=objects,
        label_spaces=spaces if spaces is not None else schema.empty("label_spaces"),
        source_categories=parsed.categories,
        quarantine=quarantine,
        roots={source: str(image_root.resolve())},
        meta={f"{source}_{split}_file": str(parsed.file)},
    )
    return dataset, images
