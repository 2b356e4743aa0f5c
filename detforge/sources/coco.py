"""Plain COCO instances JSON (``instances_{train,val}2017.json``).

Images are ``<images_root>/<file_name>``; by default the COCO folder (``root``) with
``file_name`` = ``<split>2017/<name>`` when that folder exists (the layout LVIS shares). COCO annotates its 80 classes exhaustively, so
``label_spaces`` lists all of them; ``iscrowd`` becomes ``is_crowd``.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from detforge.dataset import DetDataset
from detforge.errors import InputError
from detforge.sources import cocojson

SOURCE = "coco"
SPLIT_DIRS = {"train": "train2017", "val": "val2017"}


def read_categories(path: Path) -> pl.DataFrame:
    """SOURCE_CATEGORIES of a COCO instances file or a bare category list."""
    return cocojson.read_categories(Path(path), SOURCE)


def annotation_file(root: Path, split: str) -> Path:
    """``root`` itself when it is a file, else ``root/annotations/instances_<split>2017.json``."""
    if root.is_file():
        return root
    name = f"instances_{SPLIT_DIRS.get(split, split)}.json"
    for candidate in (root / "annotations" / name, root / name):
        if candidate.is_file():
            return candidate
    raise InputError(root, None, None, f"no COCO annotation file {name} found")


def read(
    root: Path,
    split: str,
    *,
    version: str | None = None,
    images_root: Path | None = None,
    check_files: bool = True,
    source: str = SOURCE,
) -> DetDataset:
    """COCO instances of ``split`` (``root``: the COCO folder or an instances JSON file).

    ``version`` is unused (one format). ``check_files=False`` skips the existence check.
    """
    root = Path(root)
    file = annotation_file(root, split)
    prefix = ""
    if images_root is None:
        images_root = root.parent if root.is_file() else root
        # the standard layout: <coco>/annotations/*.json beside <coco>/<split>2017/
        if file.parent.name == "annotations":
            images_root = file.parent.parent
        if (Path(images_root) / SPLIT_DIRS.get(split, split)).is_dir():
            prefix = SPLIT_DIRS.get(split, split) + "/"
    parsed = cocojson.parse(file, source, image_keys={"file_name": pl.String})
    dataset, _ = cocojson.to_dataset(
        parsed,
        source,
        split,
        pl.lit(prefix) + pl.col("file_name"),
        Path(images_root),
        check_files=check_files,
        label_spaces=True,
    )
    return dataset
