"""Readers of the sources' native formats, one module per format, and the built-in sample
written in those formats (:mod:`.sample`). Sources know no taxonomy and no pipeline.

Each reader module has ``read(root, split, *, version=None, images_root=None,
check_files=True) -> DetDataset`` (the dataset in the source's own label space) and
``read_categories(path) -> polars.DataFrame`` (``schema.SOURCE_CATEGORIES``).
"""

from __future__ import annotations

from types import ModuleType

from detforge.sources import coco, lvis, objects365, openimages

#: source name -> reader module (``.read``, ``.read_categories``)
READERS: dict[str, ModuleType] = {
    "objects365": objects365,
    "openimages": openimages,
    "lvis": lvis,
    "coco": coco,
}

__all__ = ["READERS"]
