"""The built-in sample: a few dozen generated photos in the sources' real on-disk layouts.

``write_sample(root)`` writes (see docs/sample.md)::

    ROOT/objects365/zhiyuan_objv2_{train,val}.json, ROOT/objects365/{train,val}/patchN/*.jpg
    ROOT/openimages/*-annotations-bbox.csv, *-annotations-human-imagelabels-boxable.csv,
        class-descriptions-boxable.csv, bbox_labels_600_hierarchy.json, {train,validation}/*.jpg
    ROOT/lvis/lvis_v1_{train,val}.json   (images: ROOT/coco/{train2017,val2017}/*.jpg)
    ROOT/coco/annotations/instances_val2017.json
    ROOT/planted.json                    (the planted cases)
"""

from __future__ import annotations

import json
from pathlib import Path

from detforge.atomic import atomic_path
from detforge.errors import DetforgeError
from detforge.sources.sample import formats, plan

__all__ = ["write_sample", "sample_files"]


def sample_files(seed: int = 0) -> dict[str, bytes]:
    """Every file of the sample for ``seed``, by path relative to the root (deterministic)."""
    built = plan.build(seed)
    files: dict[str, bytes] = {}
    by: dict[tuple[str, str], list[plan.Entry]] = {}
    for entry in built.entries:
        by.setdefault((entry.source, entry.split), []).append(entry)
    for split in ("train", "val"):
        formats.objects365(by[("objects365", split)], split, files)
        formats.openimages(by[("openimages", split)], split, files)
        formats.lvis(by[("lvis", split)], split, files)
    formats.coco_instances(by[("lvis", "val")], files)
    cases = [
        {**case, "images": [formats.image_ref(e) for e in case["images"]]} for case in built.cases
    ]
    planted = {"seed": seed, "cases": cases}
    files["planted.json"] = (json.dumps(planted, indent=2, ensure_ascii=False) + "\n").encode()
    return dict(sorted(files.items()))


def write_sample(root: Path, seed: int = 0) -> Path:
    """Write the sample under ``root`` (created, or replaced if it holds a previous sample)."""
    root = Path(root)
    if root.exists() and (
        not root.is_dir() or (any(root.iterdir()) and not (root / "planted.json").is_file())
    ):
        raise DetforgeError(
            f"{root}: exists and is not empty (nor a detforge sample); choose another --out"
        )
    files = sample_files(seed)
    with atomic_path(root) as tmp:
        for name, data in files.items():
            path = tmp / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    return root
