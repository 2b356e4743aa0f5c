"""Find and read the sources' category tables for ``taxonomy validate`` / ``suggest``.

A path is a category file (Objects365/LVIS/COCO JSON, OpenImages class CSV,
with ``bbox_labels_600_hierarchy.json`` beside it), a source folder, or a data
root holding ``objects365/ openimages/ lvis/ coco/`` folders. ``FORMAT=PATH``
names the format explicitly.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from detforge import schema
from detforge.errors import InputError

FORMATS = ("objects365", "openimages", "lvis", "coco")
# files that carry a source's categories, smallest first, per source folder
FOLDER_FILES = {
    "objects365": (
        "zhiyuan_objv2_val.json",
        "objects365_val.json",
        "zhiyuan_objv2_train.json",
        "objects365_train.json",
    ),
    "openimages": ("class-descriptions-boxable.csv", "oidv6-class-descriptions.csv"),
    "lvis": ("lvis_v1_val.json", "lvis_v1_train.json"),
    "coco": ("annotations/instances_val2017.json", "annotations/instances_train2017.json"),
}


def detect(path: Path) -> str:
    """The source format of one category file, from its name."""
    name = path.name.lower()
    if name.endswith(".csv"):
        return "openimages"
    for fmt, hints in (
        ("lvis", ("lvis",)),
        ("objects365", ("objects365", "zhiyuan", "objv")),
        ("coco", ("coco", "instances_")),
    ):
        if any(h in name for h in hints):
            return fmt
    raise InputError(
        path, None, None, f"cannot tell the source format; write FORMAT=PATH ({'|'.join(FORMATS)})"
    )


def _folder_file(folder: Path, fmt: str) -> Path | None:
    return next((folder / f for f in FOLDER_FILES[fmt] if (folder / f).is_file()), None)


def locate(spec: str) -> list[tuple[str, Path]]:
    """(format, category file) pairs named by one ``--sources`` value."""
    fmt, _, rest = spec.partition("=")
    if rest and fmt in FORMATS:
        path = Path(rest)
        if path.is_dir():
            file = _folder_file(path, fmt)
            if file is None:
                raise InputError(path, None, None, f"no {fmt} category file in this folder")
            return [(fmt, file)]
        return [(fmt, path)]
    path = Path(spec)
    if not path.exists():
        raise InputError(path, None, None, "no such file or folder")
    if path.is_file():
        return [(detect(path), path)]
    found = [(f, _folder_file(path / f, f)) for f in FORMATS if (path / f).is_dir()]
    found = [(f, file) for f, file in found if file is not None]
    if not found:
        found = [(f, file) for f in FORMATS if (file := _folder_file(path, f)) is not None]
    if not found:
        raise InputError(path, None, None, "no source category files found here")
    return found


def read(spec: str, only: set[str] | None = None) -> pl.DataFrame:
    """SOURCE_CATEGORIES of every source a ``--sources`` value names (``only``: those formats)."""
    from detforge.sources import READERS

    frames = [
        READERS[fmt].read_categories(file)
        for fmt, file in locate(spec)
        if only is None or fmt in only
    ]
    return pl.concat(frames) if frames else schema.empty("source_categories")


def read_objects(spec: str, only: set[str] | None = None) -> pl.DataFrame:
    """Boxes (source label space) of every split found under a data root or source folder.

    Files name no split and give no boxes; a split a source does not have is skipped.
    """
    from detforge.sources import READERS

    frames = []
    for fmt, file in locate(spec):
        folder = file.parent.parent if fmt == "coco" else file.parent
        if (only is not None and fmt not in only) or not Path(
            spec.partition("=")[2] or spec
        ).is_dir():
            continue
        for split in ("train", "val"):
            try:
                data = READERS[fmt].read(folder, split, check_files=False)
            except InputError:
                continue
            frames.append(data.objects.select("source", "source_label"))
    return pl.concat(frames) if frames else schema.empty("objects").select("source", "source_label")
