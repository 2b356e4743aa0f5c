"""Objects365 v1/v2: COCO-style JSON, images in ``<split>/patchN/`` folders.

``file_name`` in the JSON looks like ``images/v2/patch16/objects365_v2_00908726.jpg``; on
disk the image is ``<split>/patch16/objects365_v2_00908726.jpg`` under the root, so the
reader keeps the last two path components. Objects365 is exhaustive for its 365 classes:
``label_spaces`` lists all of them.

v1 numbers its 365 classes in another order than v2 (only a few ids share a name), so
v1 data is read as source ``objects365_v1``: a taxonomy needs its own rows for it, and
mapping v1 ids through v2 rows can never happen by accident.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from detforge.dataset import DetDataset
from detforge.errors import InputError
from detforge.sources import cocojson

SOURCE = "objects365"
SOURCE_V1 = "objects365_v1"
#: annotation file per version and split
FILES = {
    "v2": {"train": "zhiyuan_objv2_train.json", "val": "zhiyuan_objv2_val.json"},
    "v1": {"train": "objects365_train.json", "val": "objects365_val.json"},
}


def source_of(file: Path) -> str:
    """``objects365_v1`` for a v1 annotation file, else ``objects365`` (v2)."""
    return SOURCE_V1 if Path(file).name in FILES["v1"].values() else SOURCE


def read_categories(path: Path) -> pl.DataFrame:
    """SOURCE_CATEGORIES of an Objects365 annotation file or category list (raw names kept)."""
    return cocojson.read_categories(Path(path), source_of(Path(path)))


def annotation_file(root: Path, split: str, version: str | None = None) -> Path:
    """The annotation file of ``split`` under ``root`` (``version`` None: v2, else v1)."""
    versions = [version] if version else list(FILES)
    for v in versions:
        if v not in FILES:
            raise InputError(root, None, "version", f"unknown Objects365 version {v!r} (v1, v2)")
        if split not in FILES[v]:
            raise InputError(root, None, "split", f"Objects365 has no split {split!r} (train, val)")
        if (root / FILES[v][split]).is_file():
            return root / FILES[v][split]
    names = ", ".join(FILES[v][split] for v in versions)
    raise InputError(root, None, None, f"no Objects365 annotation file ({names}) found")


def _file_name(split: str) -> pl.Expr:
    # images/v2/patch16/x.jpg -> <split>/patch16/x.jpg ; a bare x.jpg (v1) -> <split>/x.jpg
    parts = pl.col("file_name").str.replace_all(r"\\", "/").str.split("/")
    tail = pl.when(parts.list.len() >= 2).then(parts.list.slice(-2, 2)).otherwise(parts)
    return pl.lit(f"{split}/") + tail.list.join("/")


def read(
    root: Path,
    split: str,
    *,
    version: str | None = None,
    images_root: Path | None = None,
    check_files: bool = True,
) -> DetDataset:
    """Objects365 ``split`` (train/val) under ``root`` as a DetDataset in its own label space.

    ``check_files=False`` skips the image-existence check (annotation-only runs).
    """
    root = Path(root)
    file = annotation_file(root, split, version)
    source = source_of(file)
    parsed = cocojson.parse(file, source, image_keys={"file_name": pl.String})
    dataset, _ = cocojson.to_dataset(
        parsed,
        source,
        split,
        _file_name(split),
        Path(images_root) if images_root else root,
        check_files=check_files,
        label_spaces=True,
    )
    return dataset
