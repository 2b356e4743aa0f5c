"""A plain COCO instances or LVIS ground-truth JSON, read the way pycocotools / LVISEval read it.

``detforge evaluate --gt FILE.json`` needs no build: the file becomes a one-split
:class:`~detforge.dataset.DetDataset` whose ids are the file's own (``image_id`` = the
image's ``id``, ``label`` = the ``category_id``, ``object_id`` = the annotation's ``id``),
boxes are the file's pixel ``[x, y, w, h]`` in float64 exactly as written (``source_bbox``;
nothing clipped or dropped), and rows keep the file's order. What the reference tools do
with odd records, this does too, and says so in ``notes``:

* an annotation of a category or image the file does not list is not evaluated;
* COCO: ``iscrowd`` marks crowd regions (pycocotools overrides any ``ignore`` key with it);
* LVIS: ``iscrowd`` is not read (LVISEval has no crowd regions); ``neg_category_ids`` and
  ``not_exhaustive_category_ids`` become ``negative`` / ``not_exhaustive`` image labels;
* a missing ``area`` is the box's ``w * h`` (pycocotools would stop with a KeyError).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import polars as pl

from detforge import schema
from detforge.dataset import DetDataset
from detforge.errors import InputError
from detforge.sources import cocojson, common

FORMATS = ("coco", "lvis")
#: the split name the file's images get
SPLIT = "val"
#: the protocol each format is scored with unless one is asked for
DEFAULT_PROTOCOL = {"coco": "coco", "lvis": "lvis"}
_LVIS_IMAGE_KEYS = {
    "neg_category_ids": pl.List(pl.Int64),
    "not_exhaustive_category_ids": pl.List(pl.Int64),
}
_IMAGE_KEYS = {"file_name": pl.String, "coco_url": pl.String, **_LVIS_IMAGE_KEYS}
_CATEGORY_EXTRA = {"frequency": ("frequency", pl.String)}


@dataclasses.dataclass(frozen=True)
class GroundTruthFile:
    """A ground-truth file as a dataset (see the module docstring), and what was odd in it."""

    path: Path
    format: str  # coco | lvis
    dataset: DetDataset
    notes: tuple[str, ...]


def _detect_format(parsed: cocojson.Parsed) -> str:
    """LVIS when any image carries LVIS's federated lists or any category a frequency."""
    images, categories = parsed.images, parsed.categories
    federated = any(images[key].is_not_null().any() for key in _LVIS_IMAGE_KEYS)
    return "lvis" if federated or categories["frequency"].is_not_null().any() else "coco"


def _check_ids(file: Path, parsed: cocojson.Parsed) -> None:
    """The ids a reference tool keys its dictionaries by: present and unique."""
    missing = parsed.images.with_row_index().filter(pl.col("id").is_null())
    if missing.height:
        raise InputError(file, f"images[{missing['index'][0]}]", "id", "missing or null value")
    common.check_unique(file, parsed.images, "id", "image")
    anns = parsed.annotations
    common.check_nulls(file, anns, ["id", "image_id", "category_id"], "id")
    common.check_unique(file, anns, "id", "annotation")
    bad = anns.filter(~pl.all_horizontal(pl.col(c).is_finite() for c in ("bx", "by", "bw", "bh")))
    if bad.height:
        raise InputError(file, bad["id"][0], "bbox", "NaN or infinite coordinate")


def read_ground_truth(path: str | Path, format: str | None = None) -> GroundTruthFile:
    """Read a COCO instances or LVIS JSON (``format`` None: detected) for evaluation."""
    file = Path(path)
    if format is not None and format not in FORMATS:
        raise InputError(file, None, None, f"unknown format {format!r} (coco, lvis)")
    if not file.is_file():
        raise InputError(file, None, None, "no such ground-truth file")
    parsed = cocojson.parse(file, "gt", image_keys=_IMAGE_KEYS, category_extra=_CATEGORY_EXTRA)
    _check_ids(file, parsed)
    kind = format or _detect_format(parsed)
    categories = parsed.categories.with_columns(pl.col("source").replace("gt", kind))
    notes: list[str] = []
    images = parsed.images.select(
        pl.col("id").alias("image_id"),
        pl.lit(kind).alias("source"),
        pl.col("id").cast(pl.String).alias("source_image_id"),
        pl.coalesce("file_name", "coco_url").alias("file_name"),
        "width",
        "height",
        pl.lit(SPLIT).alias("split"),
        "license",
    )
    anns = parsed.annotations
    if (anns["id"] == 0).any():
        notes.append(
            "an annotation has id 0, which pycocotools, LVISEval and faster-coco-eval also use "
            "as their 'unmatched' marker: they count the detection matched to it as a false "
            "positive; detforge counts the match (their AP on this file is lower; with ids "
            "from 1 they agree)"
        )
    known_images = pl.col("image_id").is_in(images["image_id"].implode())
    known_classes = pl.col("category_id").is_in(categories["source_label"].cast(pl.Int64).implode())
    for mask, what in ((~known_images, "an image"), (~known_classes, "a category")):
        stray = anns.filter(mask)
        if stray.height:
            notes.append(
                f"{stray.height} annotation(s) of {what} the file does not list (e.g. id "
                f"{stray['id'][0]}) are not evaluated, as pycocotools/LVISEval do"
            )
    anns = anns.filter(known_images & known_classes)
    no_area = anns.filter(pl.col("area").is_null()).height
    if no_area:
        notes.append(f"{no_area} annotation(s) without an area: the box's w*h is used")
    crowd = (pl.col("iscrowd").fill_null(0) != 0) if kind == "coco" else pl.lit(False)
    sizes = images.select(
        "image_id", pl.col("width").cast(pl.Float64), pl.col("height").cast(pl.Float64)
    )
    boxed = anns.join(sizes, on="image_id", how="left", maintain_order="left")
    W, H = pl.col("width"), pl.col("height")
    objects = boxed.select(
        "image_id",
        pl.col("id").alias("object_id"),
        pl.lit(kind).alias("source"),
        pl.col("category_id").cast(pl.String).alias("source_label"),
        pl.col("category_id").cast(pl.Int32).alias("label"),
        # normalised and clipped, as the dataset's bbox always is (null without a size)
        pl.concat_arr(
            (pl.col("bx") / W).clip(0, 1),
            (pl.col("by") / H).clip(0, 1),
            ((pl.col("bx") + pl.col("bw")) / W).clip(0, 1),
            ((pl.col("by") + pl.col("bh")) / H).clip(0, 1),
        ).alias("bbox"),
        pl.col("area").fill_null(pl.col("bw") * pl.col("bh")),
        crowd.alias("is_crowd"),
        pl.col("image_id").alias("origin_image_id"),
        pl.concat_arr("bx", "by", "bw", "bh").alias("source_bbox"),
    )
    labels = pl.concat(
        [
            parsed.images.select(pl.col("id").alias("image_id"), pl.col(key).alias("label"))
            .explode("label")
            .drop_nulls("label")
            .with_columns(pl.lit(status).alias("status"))
            for key, status in (
                ("neg_category_ids", "negative"),
                ("not_exhaustive_category_ids", "not_exhaustive"),
            )
        ]
    ).with_columns(
        pl.lit(kind).alias("source"), pl.col("label").cast(pl.String).alias("source_label")
    )
    spaces = categories.select("source", "source_label", pl.col("source_label").alias("label"))
    dataset = DetDataset(
        images=images,
        objects=objects,
        image_labels=labels if kind == "lvis" else schema.empty("image_labels"),
        # COCO annotates all its classes on every image; LVIS says so per image
        label_spaces=spaces if kind == "coco" else schema.empty("label_spaces"),
        categories=categories.select(
            pl.col("source_label").cast(pl.Int32).alias("id"), "name", "frequency"
        ),
        source_categories=categories,
        meta={"ground_truth": str(file), "format": kind},
    )
    return GroundTruthFile(file, kind, dataset, tuple(notes))
