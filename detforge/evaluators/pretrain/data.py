"""Inputs of the benchmark: a build's COCO export, downstream subsets, sampling weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import orjson
import polars as pl

from detforge.atomic import write_bytes
from detforge.dataset import DetDataset
from detforge.errors import DetforgeError, InputError


def load_coco(path: Path) -> dict:
    """A COCO instances JSON, with a clear error when it is missing or malformed."""
    if not path.is_file():
        raise DetforgeError(f"{path}: no such annotation file")
    try:
        coco = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as error:
        raise InputError(path, None, None, f"not valid JSON ({error})") from None
    for key in ("images", "annotations", "categories"):
        if key not in coco:
            raise InputError(path, None, key, "missing key of a COCO instances file")
    return coco


def class_names(coco: dict) -> tuple[str, ...]:
    """Category names in category-id order (what mmdet's ``metainfo.classes`` wants)."""
    return tuple(c["name"] for c in sorted(coco["categories"], key=lambda c: c["id"]))


def link_build_images(build_coco_dir: Path, images_dir: Path) -> Path:
    """A folder where the build's ``<source>/<file_name>`` paths resolve.

    The COCO export names files relative to per-source roots (``roots.json``);
    one symlink per source makes them one image folder for mmdet.
    """
    roots_file = build_coco_dir / "roots.json"
    if not roots_file.is_file():
        raise DetforgeError(f"{roots_file}: missing; is {build_coco_dir.parent} a detforge build?")
    images_dir.mkdir(parents=True, exist_ok=True)
    for source, root in sorted(json.loads(roots_file.read_text()).items()):
        link = images_dir / source
        if link.is_symlink() and Path(link.readlink()) != Path(root):
            link.unlink()
        if not link.exists():
            link.symlink_to(Path(root), target_is_directory=True)
    return images_dir


def fraction_subset(coco: dict, percent: float, seed: int) -> dict:
    """A deterministic seeded ``percent`` % of the images (STAC-style) with their boxes."""
    if not 0 < percent <= 100:
        raise DetforgeError(f"fraction {percent} is not a percentage in (0, 100]")
    ids = np.array(sorted(image["id"] for image in coco["images"]), dtype=np.int64)
    count = max(1, round(len(ids) * percent / 100))
    keep = set(np.random.default_rng(seed).choice(ids, size=count, replace=False).tolist())
    return {
        **coco,
        "images": [image for image in coco["images"] if image["id"] in keep],
        "annotations": [a for a in coco["annotations"] if a["image_id"] in keep],
    }


def class_aware_weights(dataset: DetDataset, split: str = "train") -> dict[int, float]:
    """Per-image weight of ``split``: the sum over the image's classes of
    1 / (images with that class).

    Sampling images in proportion to it draws every class about equally often,
    the effect of BigDetection's class-aware sampling. Computed from the build's
    tables (columns, not the COCO JSON), so it scales to Objects365's 25M boxes.
    """
    images = dataset.images.filter(pl.col("split") == split).select("image_id")
    weights = (
        dataset.objects.lazy()
        .filter(pl.col("label").is_not_null())
        .join(images.lazy(), on="image_id", how="semi")
        .select("image_id", "label")
        .unique()
        .with_columns((1.0 / pl.len().over("label")).alias("w"))
        .group_by("image_id")
        .agg(pl.col("w").sum())
        .sort("image_id")
        .collect()
    )
    return dict(zip(weights["image_id"].to_list(), weights["w"].to_list(), strict=True))


def write_json(path: Path, payload: object) -> Path:
    write_bytes(path, orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SORT_KEYS))
    return path
