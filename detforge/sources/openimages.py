"""OpenImages v4–v7: box CSV, human-verified image-label CSV, class CSV, hierarchy JSON.

Coordinates are already normalised. Flags are ``1``/``0``/``-1`` (unknown → null). The
CSVs carry no image size: width/height come from the image headers (``check_files=False``
leaves them null). Images are ``<split dir>/<ImageID>.jpg`` (``train``, ``validation``,
``test``; a mirror's ``train_0 … train_f`` shards are found too).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from detforge import schema
from detforge.dataset import DetDataset
from detforge.errors import InputError
from detforge.sources import common, headers
from detforge.sources.openimages_classes import (
    HIERARCHY_FILE,
    read_categories,
)

__all__ = ["SOURCE", "read", "read_categories", "files"]

SOURCE = "openimages"
SPLIT_DIRS = {"train": "train", "val": "validation", "test": "test"}
#: candidate file names per version (first existing wins); {s} is the split's file prefix
BOX_FILES = {
    "v7": ["oidv6-{s}-annotations-bbox.csv", "{s}-annotations-bbox.csv"],
    "v6": ["oidv6-{s}-annotations-bbox.csv", "{s}-annotations-bbox.csv"],
    "v5": ["{s}-annotations-bbox.csv"],
    "v4": ["{s}-annotations-bbox.csv"],
}
#: human-verified image labels: any ``[oidvN-]<split>-annotations-human-imagelabels*.csv``
#: (``-boxable`` or not); see :func:`_label_file` for which one wins when several exist
LABEL_GLOB = "*{s}-annotations-human-imagelabels*.csv"
CLASS_FILES = {
    "v7": ["oidv7-class-descriptions-boxable.csv", "class-descriptions-boxable.csv"],
    "v6": ["class-descriptions-boxable.csv", "oidv6-class-descriptions-boxable.csv"],
    "v5": ["class-descriptions-boxable.csv"],
    "v4": ["class-descriptions-boxable.csv"],
}
#: the full class lists (~20k classes), read when no boxable list is there
ALL_CLASS_FILES = [
    "oidv7-class-descriptions.csv",
    "oidv6-class-descriptions.csv",
    "class-descriptions.csv",
]
BOX_COLUMNS = {
    "ImageID": pl.String,
    "Source": pl.String,
    "LabelName": pl.String,
    "Confidence": pl.Float64,
    "XMin": pl.Float64,
    "XMax": pl.Float64,
    "YMin": pl.Float64,
    "YMax": pl.Float64,
    "IsOccluded": pl.Int8,
    "IsTruncated": pl.Int8,
    "IsGroupOf": pl.Int8,
    "IsDepiction": pl.Int8,
    "IsInside": pl.Int8,
}
LABEL_COLUMNS = {
    "ImageID": pl.String,
    "Source": pl.String,
    "LabelName": pl.String,
    "Confidence": pl.Float64,
}
FLAGS = {
    "IsOccluded": "is_occluded",
    "IsTruncated": "is_truncated",
    "IsGroupOf": "is_group_of",
    "IsDepiction": "is_depiction",
    "IsInside": "is_inside",
}


def _find(
    root: Path, candidates: dict[str, list[str]], version: str | None, prefix: str
) -> Path | None:
    if version is not None and version not in candidates:
        raise InputError(root, None, "version", f"unknown OpenImages version {version!r} (v4–v7)")
    for v in [version] if version else ["v6", "v7", "v5", "v4"]:
        for name in candidates[v]:
            if (root / name.format(s=prefix)).is_file():
                return root / name.format(s=prefix)
    return None


def _label_file(root: Path, prefix: str, version: str | None) -> Path | None:
    """The split's image-label CSV: ``-boxable`` first (its classes are the box classes),
    then the asked version's ``oidvN-`` name, an unprefixed one, any other; by name last."""
    found = sorted(root.glob(LABEL_GLOB.format(s=prefix)))
    wanted = f"oidv{version[1:]}-" if version else None

    def rank(path: Path) -> tuple:
        name = path.name
        versioned = name.startswith("oidv")
        order = 0 if wanted and name.startswith(wanted) else 1 if not versioned else 2
        return ("-boxable" not in name, order, name)

    return min(found, key=rank) if found else None


def files(root: Path, split: str, version: str | None = None) -> dict[str, Path | None]:
    """The ``boxes``, ``labels``, ``classes`` and ``hierarchy`` files of ``split`` under ``root``."""
    if split not in SPLIT_DIRS:
        raise InputError(
            root, None, "split", f"OpenImages has no split {split!r} (train, val, test)"
        )
    prefix = SPLIT_DIRS[split]
    classes = _find(root, CLASS_FILES, version, prefix)
    if classes is None:
        classes = next((root / n for n in ALL_CLASS_FILES if (root / n).is_file()), None)
    found = {
        "boxes": _find(root, BOX_FILES, version, prefix),
        "labels": _label_file(root, prefix, version),
        "classes": classes,
        "hierarchy": root / HIERARCHY_FILE if (root / HIERARCHY_FILE).is_file() else None,
    }
    for key, candidates in (("boxes", BOX_FILES), ("classes", CLASS_FILES)):
        if found[key] is None:
            names = sorted({n.format(s=prefix) for names in candidates.values() for n in names})
            looked = ", ".join(names + (ALL_CLASS_FILES if key == "classes" else []))
            raise InputError(root, None, None, f"no OpenImages {key} file ({looked}) found")
    return found


def read_csv(path: Path, columns: dict[str, pl.DataType], required: list[str]) -> pl.DataFrame:
    """A CSV with a header; ``required`` columns must exist and hold no empty cell."""
    try:
        header = pl.read_csv(path, n_rows=0).columns
    except (pl.exceptions.PolarsError, OSError) as error:
        raise InputError(
            path, None, None, f"malformed CSV ({str(error).splitlines()[0]})"
        ) from None
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(path, "header", missing[0], "missing column")
    wanted = {c: t for c, t in columns.items() if c in header}
    try:
        frame = pl.read_csv(path, columns=list(wanted), schema_overrides=wanted)
    except (pl.exceptions.PolarsError, OSError) as error:
        raise InputError(
            path, None, None, f"malformed CSV ({str(error).splitlines()[0]})"
        ) from None
    frame = frame.with_row_index("_row", offset=2)  # file line number (header is line 1)
    for col in required:
        empty = frame.filter(pl.col(col).is_null())
        if empty.height:
            raise InputError(path, f"line {empty['_row'][0]}", col, "missing or empty value")
    return frame


def _flag(path: Path, frame: pl.DataFrame, col: str) -> pl.Expr:
    if col not in frame.columns:
        return pl.lit(None, pl.Boolean)
    bad = frame.filter(~pl.col(col).is_in([-1, 0, 1]) & pl.col(col).is_not_null())
    if bad.height:
        raise InputError(path, f"line {bad['_row'][0]}", col, f"flag {bad[col][0]} not in 1/0/-1")
    return pl.when(pl.col(col) == -1).then(None).otherwise(pl.col(col) == 1)


def _image_dir(root: Path, split: str) -> pl.Expr:
    name = SPLIT_DIRS[split]
    shards = any((root / f"{name}_{digit}").is_dir() for digit in "0123456789abcdef")
    if not (root / name).is_dir() and shards:
        return pl.lit(f"{name}_") + pl.col("ImageID").str.slice(0, 1) + pl.lit("/")
    return pl.lit(f"{name}/")


def _image_labels(path: Path, known: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(ImageID, source_label, status)`` rows of the human-verified labels, and the
    quarantine rows of labels whose class is not in the boxable class list."""
    raw = read_csv(path, LABEL_COLUMNS, ["ImageID", "LabelName", "Confidence"])
    bad = raw.filter(~pl.col("Confidence").is_in([0.0, 1.0]))
    if bad.height:
        record, value = f"line {bad['_row'][0]}", bad["Confidence"][0]
        raise InputError(path, record, "Confidence", f"{value} not 0 or 1")
    outside = (
        raw.join(known, on="LabelName", how="anti")
        .group_by("LabelName", maintain_order=True)
        .agg(pl.len())
    )
    quarantine = outside.select(
        pl.lit(SOURCE).alias("source"),
        pl.lit(str(path)).alias("file"),
        pl.col("LabelName").alias("record"),
        pl.lit("LabelName").alias("field"),
        pl.format("class not in the boxable class list: {} image label(s) skipped", "len").alias(
            "reason"
        ),
    )
    status = (
        pl.when(pl.col("Confidence") == 1).then(pl.lit("positive")).otherwise(pl.lit("negative"))
    )
    labels = raw.join(known, on="LabelName", how="semi").select(
        "ImageID", pl.col("LabelName").alias("source_label"), status.alias("status")
    )
    return labels.unique(maintain_order=True), quarantine


def _images(
    file: Path, image_ids: pl.Series, split: str, image_root: Path, check_files: bool
) -> pl.DataFrame:
    """One row per ImageID: file name, stable id and (from the headers) width/height."""
    images = image_ids.unique().sort().to_frame("ImageID")
    images = images.with_columns(
        (_image_dir(image_root, split) + pl.col("ImageID") + pl.lit(".jpg")).alias("file_name"),
        schema.stable_id_expr(SOURCE, pl.col("ImageID")).alias("image_id"),
    )
    common.check_paths(file, images, "ImageID", "file_name")
    if not check_files:
        return images.with_columns(pl.lit(None, pl.Int32).alias(c) for c in ("width", "height"))
    common.check_files_exist(file, images.rename({"ImageID": "source_image_id"}), image_root)
    sizes = headers.image_sizes([image_root / f for f in images["file_name"].to_list()])
    return images.with_columns(
        pl.Series("width", [w for w, _ in sizes], dtype=pl.Int32),
        pl.Series("height", [h for _, h in sizes], dtype=pl.Int32),
    )


def _objects(file: Path, boxes: pl.DataFrame, split: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """OBJECTS rows of the box CSV (joined with image sizes) and their quarantine rows."""
    boxes = boxes.rename({"XMin": "x1", "XMax": "x2", "YMin": "y1", "YMax": "y2"})
    W, H = pl.col("width").cast(pl.Float64), pl.col("height").cast(pl.Float64)
    # the source's own box in pixels, before clipping (null without the image size)
    pixels = pl.concat_arr(
        pl.col("x1") * W,
        pl.col("y1") * H,
        (pl.col("x2") - pl.col("x1")) * W,
        (pl.col("y2") - pl.col("y1")) * H,
    )
    boxes = boxes.with_columns(
        pl.format("line {}", pl.col("_row")).alias("_record"),
        pl.when(W.is_not_null() & H.is_not_null()).then(pixels).alias("source_bbox"),
    )
    boxes, quarantine = common.clip_boxes(boxes, SOURCE, file, "_record")
    area = (pl.col("x2") - pl.col("x1")) * pl.col("width") * (pl.col("y2") - pl.col("y1"))
    objects = boxes.select(
        "image_id",
        schema.stable_id_expr(SOURCE, pl.format(f"{split}/{{}}", pl.col("_row") - 2)).alias(
            "object_id"
        ),
        pl.lit(SOURCE).alias("source"),
        pl.col("LabelName").alias("source_label"),
        "x1",
        "y1",
        "x2",
        "y2",
        (area * pl.col("height")).alias("area"),
        *(_flag(file, boxes, col).alias(name) for col, name in FLAGS.items()),
        pl.col("image_id").alias("origin_image_id"),
        "source_bbox",
    )
    return common.make_dataset_tables(objects), quarantine


def read(
    root: Path,
    split: str,
    *,
    version: str | None = None,
    images_root: Path | None = None,
    check_files: bool = True,
) -> DetDataset:
    """OpenImages ``split`` (train/val/test) under ``root`` in its own (MID) label space.

    ``check_files=False`` skips the image files (width/height then stay null).
    """
    root = Path(root)
    image_root = Path(images_root) if images_root else root
    found = files(root, split, version)
    box_file = found["boxes"]
    categories = read_categories(found["classes"], found["hierarchy"])
    known = categories.select(pl.col("source_label").alias("LabelName"))
    required = ["ImageID", "LabelName", "XMin", "XMax", "YMin", "YMax"]
    boxes = read_csv(box_file, BOX_COLUMNS, required)
    unknown = common.unknown(boxes, "LabelName", known["LabelName"])
    if unknown.height:
        record, mid = f"line {unknown['_row'][0]}", unknown["LabelName"][0]
        raise InputError(box_file, record, "LabelName", f"unknown class {mid}")
    labels = pl.DataFrame(
        schema={"ImageID": pl.String, "source_label": pl.String, "status": pl.String}
    )
    quarantine = schema.empty("quarantine")
    if found["labels"] is not None:
        labels, quarantine = _image_labels(found["labels"], known)
    image_ids = pl.concat([boxes["ImageID"], labels["ImageID"]])
    images = _images(box_file, image_ids, split, image_root, check_files)
    sizes = images.select("ImageID", "image_id", "width", "height")
    objects, bad_boxes = _objects(box_file, boxes.join(sizes, on="ImageID", how="left"), split)
    image_labels = labels.join(images.select("ImageID", "image_id"), on="ImageID")
    return DetDataset(
        images=images.select(
            "image_id",
            pl.lit(SOURCE).alias("source"),
            pl.col("ImageID").alias("source_image_id"),
            "file_name",
            "width",
            "height",
            pl.lit(split).alias("split"),
        ),
        objects=objects,
        image_labels=image_labels.select(
            "image_id", pl.lit(SOURCE).alias("source"), "source_label", "status"
        ),
        source_categories=categories,
        quarantine=pl.concat([quarantine, bad_boxes]),
        roots={SOURCE: str(image_root.resolve())},
        meta={f"{SOURCE}_{split}_file": str(box_file)},
    )
