"""LVIS v1 and v0.5: COCO-style JSON with federated fields; the images are COCO's.

An image's file is ``<coco folder>/<name>`` taken from ``coco_url``
(``http://images.cocodataset.org/train2017/000000391895.jpg`` → ``train2017/000000391895.jpg``),
relative to ``images_root`` (the COCO image root; default ``root``, or ``root/../coco``
when that folder holds ``train2017``/``val2017`` — the sample's layout). Without a
``coco_url`` the image's ``file_name`` is used; LVIS v0.5 names COCO 2014 files
(``COCO_val2014_000000266409.jpg``), which live in their 2014 folder (``val2014/…``).
``neg_category_ids`` → image label ``negative``; ``not_exhaustive_category_ids`` →
``not_exhaustive``.

v0.5 numbers its 1230 classes otherwise than v1's 1203, so v0.5 data is read as source
``lvis_v0.5`` (a taxonomy needs its own rows for it; v1 rows never map it by accident).
The version is ``version`` when given, else ``v0.5`` for a file named ``lvis_v0.5_*``.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from detforge import schema
from detforge.dataset import DetDataset
from detforge.errors import InputError
from detforge.sources import cocojson

SOURCE = "lvis"
SOURCE_V05 = "lvis_v0.5"
#: annotation file per version and split (``version=None`` looks for v1, then v0.5)
FILES = {
    "v1": {"train": "lvis_v1_train.json", "val": "lvis_v1_val.json"},
    "v0.5": {"train": "lvis_v0.5_train.json", "val": "lvis_v0.5_val.json"},
}
CATEGORY_EXTRA = {
    "synonyms": ("synonyms", pl.List(pl.String)),
    "synset": ("synset", pl.String),
    "def": ("definition", pl.String),
    "frequency": ("frequency", pl.String),
}
FEDERATED = {"neg_category_ids": "negative", "not_exhaustive_category_ids": "not_exhaustive"}


def read_categories(path: Path) -> pl.DataFrame:
    """SOURCE_CATEGORIES (with synset, synonyms, definition, frequency) of an LVIS file."""
    return cocojson.read_categories(Path(path), source_of(Path(path)), CATEGORY_EXTRA)


def default_images_root(root: Path) -> Path:
    """``root/../coco`` when it holds COCO's split folders (sample layout), else ``root``."""
    coco = root.parent / "coco"
    if any((coco / d).is_dir() for d in ("train2017", "val2017")):
        return coco
    return root


def _file_name() -> pl.Expr:
    # coco_url's last two components; else file_name, a COCO 2014 name in its 2014 folder
    from_url = pl.col("coco_url").str.split("/").list.slice(-2, 2).list.join("/")
    folder = pl.col("file_name").str.extract(r"^COCO_((?:train|val|test)2014)_", 1)
    named = pl.when(folder.is_not_null()).then(folder + "/" + pl.col("file_name"))
    return pl.coalesce(from_url, named.otherwise(pl.col("file_name")))


def annotation_file(root: Path, split: str, version: str | None = None) -> Path:
    """``root`` itself when it is a file, else the ``split`` file of ``version`` under it."""
    if version not in (None, *FILES):
        raise InputError(root, None, "version", f"unknown LVIS version {version!r} (v1, v0.5)")
    if root.is_file():
        return root
    versions = [version] if version else list(FILES)
    for v in versions:
        file = root / FILES[v].get(split, f"lvis_{v}_{split}.json")
        if file.is_file():
            return file
    names = ", ".join(FILES[v].get(split, f"lvis_{v}_{split}.json") for v in versions)
    raise InputError(root, None, None, f"no LVIS annotation file ({names}) found")


def source_of(file: Path, version: str | None = None) -> str:
    """``lvis_v0.5`` for v0.5 data (asked for, or a ``lvis_v0.5_*`` file), else ``lvis``."""
    v05 = version == "v0.5" or (version is None and Path(file).name.startswith("lvis_v0.5"))
    return SOURCE_V05 if v05 else SOURCE


def read(
    root: Path,
    split: str,
    *,
    version: str | None = None,
    images_root: Path | None = None,
    check_files: bool = True,
) -> DetDataset:
    """LVIS ``split`` (train/val): ``root`` holds ``lvis_v1_<split>.json`` or
    ``lvis_v0.5_<split>.json`` (or is the file); ``version``: v1 or v0.5."""
    root = Path(root)
    file = annotation_file(root, split, version)
    source = source_of(file, version)
    base = file.parent
    image_root = Path(images_root) if images_root else default_images_root(base)
    keys = {
        "coco_url": pl.String,
        "file_name": pl.String,
        "neg_category_ids": pl.List(pl.Int64),
        "not_exhaustive_category_ids": pl.List(pl.Int64),
    }
    parsed = cocojson.parse(file, source, image_keys=keys, category_extra=CATEGORY_EXTRA)
    dataset, images = cocojson.to_dataset(
        parsed, source, split, _file_name(), image_root, check_files=check_files
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
        pl.lit(source).alias("source"),
        pl.col("category_id").cast(pl.String).alias("source_label"),
        "status",
    ).unique(maintain_order=True)
    return dataset.replace(image_labels=schema.conform(image_labels, "image_labels"))
