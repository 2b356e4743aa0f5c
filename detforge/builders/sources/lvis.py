"""LVIS v1: COCO-style JSON with federated fields; the images are COCO 2017's.

Images carry no ``file_name``: the file is ``<coco split>/<name>`` taken from ``coco_url``
(``http://images.cocodataset.org/train2017/000000391895.jpg`` → ``train2017/000000391895.jpg``),
relative to ``images_root`` (the COCO image root; default ``root``, or ``root/../coco``
when that folder holds ``train2017``/``val2017`` — the sample's layout).
``neg_category_ids`` → image label ``negative``; ``not_exhaustive_category_ids`` →
``not_exhaustive``.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from detforge import schema
from detforge.builders.sources import cocojson
from detforge.dataset import DetDataset
from detforge.errors import InputError

SOURCE = "lvis"
FILES = {"train": "lvis_v1_train.json", "val": "lvis_v1_val.json"}
CATEGORY_EXTRA = {
    "synonyms": ("synonyms", pl.List(pl.String)),
    "synset": ("synset", pl.String),
    "def": ("definition", pl.String),
    "frequency": ("frequency", pl.String),
}
FEDERATED = {"neg_category_ids": "negative", "not_exhaustive_category_ids": "not_exhaustive"}


def read_categories(path: Path) -> pl.DataFrame:
    """SOURCE_CATEGORIES (with synset, synonyms, definition, frequency) of an LVIS file."""
    return cocojson.read_categories(Path(path), SOURCE, CATEGORY_EXTRA)


def default_images_root(root: Path) -> Path:
    """``root/../coco`` when it holds COCO's split folders (sample layout), else ``root``."""
    coco = root.parent / "coco"
    if any((coco / d).is_dir() for d in ("train2017", "val2017")):
        return coco
    return root


def _file_name() -> pl.Expr:
    # coco_url's last two components; a file_name key (some LVIS copies) wins when present
    from_url = pl.col("coco_url").str.split("/").list.slice(-2, 2).list.join("/")
    return pl.coalesce(pl.col("file_name"), from_url)


def read(
    root: Path,
    split: str,
    *,
    version: str | None = None,
    images_root: Path | None = None,
    check_files: bool = True,
) -> DetDataset:
    """LVIS v1 ``split`` (train/val): ``root`` holds ``lvis_v1_<split>.json`` (or is the file)."""
    root = Path(root)
    if version not in (None, "v1"):
        raise InputError(root, None, "version", f"unknown LVIS version {version!r} (v1)")
    file = root if root.is_file() else root / FILES.get(split, f"lvis_v1_{split}.json")
    if not file.is_file():
        raise InputError(file, None, None, "LVIS annotation file not found")
    base = file.parent
    image_root = Path(images_root) if images_root else default_images_root(base)
    keys = {
        "coco_url": pl.String,
        "file_name": pl.String,
        "neg_category_ids": pl.List(pl.Int64),
        "not_exhaustive_category_ids": pl.List(pl.Int64),
    }
    parsed = cocojson.parse(file, SOURCE, image_keys=keys, category_extra=CATEGORY_EXTRA)
    dataset, images = cocojson.to_dataset(
        parsed, SOURCE, split, _file_name(), image_root, check_files=check_files
    )
    labels = pl.concat(
        [
            images.select("image_id", pl.col(key).alias("category_id"))
            .explode("category_id")
            .drop_nulls("category_id")
            .with_columns(pl.lit(status).alias("status"), pl.lit(key).alias("_field"))
            for key, status in FEDERATED.items()
        ]
    )
    known = parsed.categories.select(pl.col("source_label").cast(pl.Int64).alias("category_id"))
    unknown = labels.join(known, on="category_id", how="anti")
    if unknown.height:
        row = unknown.join(images.select("image_id", "id"), on="image_id").row(0, named=True)
        raise InputError(file, row["id"], row["_field"], f"unknown category {row['category_id']}")
    image_labels = labels.select(
        "image_id",
        pl.lit(SOURCE).alias("source"),
        pl.col("category_id").cast(pl.String).alias("source_label"),
        "status",
    ).unique(maintain_order=True)
    return dataset.replace(image_labels=schema.conform(image_labels, "image_labels"))
