"""COCO instances JSON per split, built column-wise (no per-box Python objects).

``OUT/coco/<split>.json`` holds:

- ``categories``: the unified classes with **``id = unified id + 1``** (COCO and LVIS
  ids start at 1; tools that map ids through class names, like mmdet's
  ``CocoDataset``, are indifferent), plus ``synset``/``synonyms``/``frequency``.
- ``images``: ``id`` = the dataset's int64 ``image_id``; ``file_name`` =
  ``<source>/<file name>``, resolvable through ``roots.json`` (``{source: image root}``)
  or the ``images/<source>`` symlinks beside it (``data_prefix=dict(img="coco/images/")``);
  ``source``; LVIS-style ``neg_category_ids`` (verified absent) and
  ``not_exhaustive_category_ids`` (LVIS not-exhaustive, and verified-present classes
  without boxes on the image).
- ``annotations``: ``id`` = ``object_id``, absolute ``bbox`` ``[x, y, w, h]`` (pixels: the
  source's own box as written, unclipped; a box carried from a duplicate copy converted
  and rounded to 0.01), ``area`` (source pixels²; w·h where unknown), ``iscrowd`` (crowd
  only: OpenImages group-of boxes keep ``iscrowd`` 0 and set ``is_group_of``).
- ``label_spaces``: ``{source: [category ids]}`` the source annotates exhaustively on
  every image (Objects365, COCO). With an image's ``neg_category_ids`` this gives the
  federated rule: class c is annotated on image i iff c is in its source's label space,
  in its neg/not-exhaustive lists, or has a box on i.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import orjson
import polars as pl

from detforge.atomic import atomic_path
from detforge.dataset import DetDataset
from detforge.sources.coco_boxes import to_coco_xywh

#: rows per JSON chunk: bounds the memory of the export on 25M-box datasets
CHUNK = 50_000


def coco_boxes(objects: pl.DataFrame, images: pl.DataFrame) -> pl.DataFrame:
    """``objects`` (of ``images``) with ``bbox`` replaced by absolute ``[x, y, w, h]``
    (float64 list): the source's own box where it describes the box on its image, as the
    source wrote it; else converted from the normalised box, rounded to 0.01 px (the
    float32 normalised boxes carry no more)."""
    return (
        to_coco_xywh(objects, images, decimals=2)
        .with_columns(pl.col("coco_bbox").arr.to_list().alias("bbox"))
        .drop("coco_bbox")
    )


def _annotation_records(objects: pl.DataFrame, images: pl.DataFrame) -> pl.DataFrame:
    """COCO annotation records of ``objects`` (labelled boxes of ``images``), in key order."""
    return coco_boxes(objects, images).select(
        pl.col("object_id").alias("id"),
        "image_id",
        (pl.col("label") + 1).cast(pl.Int64).alias("category_id"),
        "bbox",
        pl.coalesce(
            pl.col("area").cast(pl.Float64),  # the source's, or rescaled onto a kept copy
            (pl.col("bbox").list.get(2) * pl.col("bbox").list.get(3)).round(2),
        ).alias("area"),
        pl.col("is_crowd").fill_null(False).cast(pl.Int8).alias("iscrowd"),
        pl.col("is_group_of").fill_null(False).alias("is_group_of"),
        "source",
        "source_label",
    )


def categories_frame(dataset: DetDataset) -> pl.DataFrame:
    return dataset.categories.sort("id").select(
        (pl.col("id") + 1).cast(pl.Int64).alias("id"),
        "name",
        pl.col("synset"),
        pl.col("synonyms").fill_null([]),
        pl.col("frequency"),
        pl.col("definition").alias("def"),
    )


def federated_lists(dataset: DetDataset, images: pl.DataFrame) -> pl.DataFrame:
    """Per image of ``images``: sorted negative and not-exhaustive category ids."""
    field = {"negative": "neg_category_ids", "not_exhaustive": "not_exhaustive_category_ids"}
    return (
        dataset.federated_labels(images["image_id"])
        .select(
            "image_id",
            (pl.col("label") + 1).cast(pl.Int64),
            pl.col("status").replace_strict(field).alias("field"),
        )
        .group_by("image_id", "field")
        .agg(pl.col("label").sort())
        .pivot(on="field", index="image_id", values="label")
    )


def _split_images(dataset: DetDataset, split: str) -> pl.DataFrame:
    return dataset.images.filter(pl.col("split") == split).sort("image_id")


def image_records(images: pl.DataFrame, federated: pl.DataFrame) -> pl.DataFrame:
    """COCO image records of ``images`` with their federated fields, in key order."""
    for field in ("neg_category_ids", "not_exhaustive_category_ids"):
        if field not in federated.columns:
            federated = federated.with_columns(pl.lit(None, pl.List(pl.Int64)).alias(field))
    return images.join(federated, on="image_id", how="left", maintain_order="left").select(
        pl.col("image_id").alias("id"),
        (pl.col("source") + "/" + pl.col("file_name")).alias("file_name"),
        "width",
        "height",
        "source",
        "source_image_id",
        "license",
        pl.col("neg_category_ids").fill_null([]),
        pl.col("not_exhaustive_category_ids").fill_null([]),
    )


def _object_chunks(dataset: DetDataset, images: pl.DataFrame, rows: int) -> Iterator[pl.DataFrame]:
    """Labelled boxes of ``images`` in the dataset's order (the stage cache sorts it by
    image_id, object_id), ``rows`` input boxes at a time. Each chunk is a zero-copy slice
    filtered by one mask computed up front: a filter of the whole table would copy every
    box of the split at once, and a join or sort costs 5x the result's memory."""
    columns = [
        "object_id",
        "image_id",
        "label",
        "bbox",
        "source_bbox",
        "origin_image_id",
        "area",
        "is_crowd",
        "is_group_of",
    ]
    objects = dataset.objects.select(*columns, "source", "source_label")
    keep = objects.select(
        pl.col("label").is_not_null() & pl.col("image_id").is_in(images["image_id"].implode())
    ).to_series()
    for start in range(0, objects.height, rows):
        yield objects.slice(start, rows).filter(keep.slice(start, rows))


def split_frames(dataset: DetDataset, split: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The ``images`` and ``annotations`` records of one split (whole, for small data)."""
    images = _split_images(dataset, split)
    objects = pl.concat(_object_chunks(dataset, images, max(dataset.objects.height, 1)))
    return image_records(images, federated_lists(dataset, images)), _annotation_records(
        objects, images
    )


def _label_spaces(dataset: DetDataset) -> dict[str, list[int]]:
    spaces = (
        dataset.label_spaces.filter(pl.col("label").is_not_null())
        .group_by("source")
        .agg((pl.col("label") + 1).unique().sort())
        .sort("source")
    )
    return {row["source"]: row["label"] for row in spaces.iter_rows(named=True)}


def _write_array(handle: BinaryIO, frames: Iterator[pl.DataFrame]) -> None:
    """A JSON array of every frame's rows, written frame by frame (bounded memory)."""
    handle.write(b"[")
    first = True
    for frame in frames:
        if frame.height:
            if not first:
                handle.write(b",")
            buffer = io.BytesIO()
            frame.write_json(buffer)
            with buffer.getbuffer() as view:  # no copy of the chunk's JSON
                handle.write(view[1:-1])
            first = False
    handle.write(b"]")


def write_split(dataset: DetDataset, split: str, handle: BinaryIO) -> None:
    """One split's COCO JSON document, written in chunks of :data:`CHUNK` rows."""
    images = _split_images(dataset, split)
    head = {
        "info": {
            "description": f"{dataset.meta.get('recipe', 'detforge')} ({split})",
            "taxonomy": dataset.meta.get("taxonomy"),
            "taxonomy_fingerprint": dataset.meta.get("taxonomy_fingerprint"),
            "category_ids": "unified class id + 1",
        },
        "licenses": [],
    }
    handle.write(orjson.dumps(head, option=orjson.OPT_SORT_KEYS)[:-1])
    handle.write(b',"categories":' + categories_frame(dataset).write_json().encode())
    handle.write(
        b',"label_spaces":' + orjson.dumps(_label_spaces(dataset), option=orjson.OPT_SORT_KEYS)
    )
    handle.write(b',"images":')
    federated = federated_lists(dataset, images)
    _write_array(
        handle,
        (image_records(images.slice(i, CHUNK), federated) for i in range(0, images.height, CHUNK)),
    )
    handle.write(b',"annotations":')
    _write_array(
        handle,
        (_annotation_records(chunk, images) for chunk in _object_chunks(dataset, images, CHUNK)),
    )
    handle.write(b"}\n")


def split_json(dataset: DetDataset, split: str) -> bytes:
    """One split's COCO JSON document as bytes."""
    buffer = io.BytesIO()
    write_split(dataset, split, buffer)
    return buffer.getvalue()


def export(dataset: DetDataset, folder: Path) -> list[Path]:
    """Write ``<split>.json`` for every split, ``roots.json`` and ``images/<source>`` links,
    as one atomic directory."""
    folder = Path(folder)
    splits = sorted(dataset.images["split"].drop_nulls().unique().to_list())
    with atomic_path(folder) as tmp:
        tmp.mkdir(parents=True)
        for split in splits:
            with (tmp / f"{split}.json").open("wb") as handle:
                write_split(dataset, split, handle)
        roots = {
            source: str(Path(root).absolute()) for source, root in sorted(dataset.roots.items())
        }
        (tmp / "roots.json").write_bytes(
            orjson.dumps(roots, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"
        )
        (tmp / "images").mkdir()
        for source, root in roots.items():
            os.symlink(root, tmp / "images" / source, target_is_directory=True)
    return [folder / f"{split}.json" for split in splits]
