"""A small built dataset with planted cases, its predictions and a probe run.

Planted cases (``PLANTED``): a high-confidence false positive, a miss of a rare
class, a cross-source label conflict, a near-duplicate pair (one copy removed by
the build), a training image removed by decontamination and a failing probe item.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from PIL import Image, ImageDraw

from detforge.dataset import DetDataset
from detforge.schema import stable_id

W, H = 160, 120
CATEGORIES = [  # id, name, frequency
    (0, "person", "f"),
    (1, "car", "c"),
    (2, "zebra", "r"),
    (3, "lamp", "f"),
]


def image_id(name: str) -> int:
    return stable_id("coco", name)


PLANTED = {
    "fp_image": image_id("v1"),
    "fp_pred_index": 1,
    "fed_ignored_pred_index": 8,
    "miss_image": image_id("v2"),
    "conflict_image": image_id("v3"),
    "dup_kept": image_id("v4"),
    "dup_removed": image_id("t9"),
    "contaminated": image_id("t8"),
    "probe_fail_item": 2,
    "probe_fail_image": image_id("v1"),
}


def _box(x1, y1, x2, y2):
    return [x1 / W, y1 / H, x2 / W, y2 / H]


def _draw(path: Path, seed: int) -> None:
    """A distinct little picture (coloured shapes) so the App grid shows content."""
    image = Image.new("RGB", (W, H), (40 * seed % 255, 90, 160))
    draw = ImageDraw.Draw(image)
    draw.rectangle((10 + seed * 7, 10, 80 + seed * 5, 90), fill=(230, 200 - 20 * seed, 40))
    draw.ellipse((90, 30 + seed * 4, 150, 100), fill=(20, 180, 90 + 10 * seed))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, quality=90)


def write_planted(out: Path) -> Path:
    """``out/tables`` (a DetDataset), the build's dedup and decontamination reports under
    ``out/.stages`` and the image files; returns ``out``."""
    root = out / "images"
    names = ["v1", "v2", "v3", "v4", "v5", "t1", "t8", "t9"]
    for seed, name in enumerate(names):
        _draw(root / f"{name}.jpg", seed)
    kept = [n for n in names if n not in ("t8", "t9")]
    images = pl.DataFrame(
        {
            "image_id": [image_id(n) for n in kept],
            "source": "coco",
            "source_image_id": kept,
            "file_name": [f"{n}.jpg" for n in kept],
            "width": W,
            "height": H,
            "split": ["train" if n.startswith("t") else "val" for n in kept],
            "dup_group": [image_id("v4") if n == "v4" else None for n in kept],
        }
    )
    rows = [  # image, key, source, source_label, label, bbox, origin
        ("v1", "a", "coco", "1", 0, _box(10, 10, 80, 100), "v1"),
        ("v2", "b", "coco", "1", 0, _box(10, 10, 70, 100), "v2"),
        ("v2", "c", "coco", "24", 2, _box(90, 20, 150, 110), "v2"),
        ("v3", "d", "coco", "1", 0, _box(20, 20, 100, 100), "v3"),
        ("v3", "e", "objects365", "5", 3, _box(22, 21, 101, 102), "v3"),
        ("v4", "f", "coco", "3", 1, _box(30, 30, 120, 90), "t9"),
        ("v5", "g", "coco", "1", 0, _box(5, 5, 60, 60), "v5"),
        ("t1", "i", "coco", "1", 0, _box(5, 5, 60, 60), "t1"),
    ]
    objects = pl.DataFrame(
        {
            "image_id": [image_id(r[0]) for r in rows],
            "object_id": [stable_id(r[2], r[1]) for r in rows],
            "source": [r[2] for r in rows],
            "source_label": [r[3] for r in rows],
            "label": [r[4] for r in rows],
            "bbox": [r[5] for r in rows],
            "origin_image_id": [image_id(r[6]) for r in rows],
        },
        schema_overrides={"label": pl.Int32, "bbox": pl.Array(pl.Float32, 4)},
    )
    categories = pl.DataFrame(
        {
            "id": [c[0] for c in CATEGORIES],
            "name": [c[1] for c in CATEGORIES],
            "frequency": [c[2] for c in CATEGORIES],
        }
    )
    quarantine = pl.DataFrame(
        {
            "source": ["coco"],
            "file": ["instances_val.json"],
            "record": ["v5"],
            "field": ["bbox"],
            "reason": ["box outside the image"],
        }
    )
    # COCO annotates person, car and zebra exhaustively; lamps come from Objects365 boxes only
    label_spaces = pl.DataFrame(
        {"source": "coco", "source_label": ["1", "3", "24"], "label": [0, 1, 2]},
        schema_overrides={"label": pl.Int32},
    )
    DetDataset(
        images=images,
        label_spaces=label_spaces,
        objects=objects,
        categories=categories,
        quarantine=quarantine,
        roots={"coco": str(root), "objects365": str(root)},
    ).write(out / "tables")
    dedup = out / ".stages" / "dedup-0123" / "reports"
    dedup.mkdir(parents=True)
    pl.DataFrame(
        {
            "dup_group": [image_id("v4"), image_id("v4")],
            "image_id": [image_id("v4"), image_id("t9")],
            "source": "coco",
            "source_image_id": ["v4", "t9"],
            "split": ["val", "train"],
            "file_name": ["v4.jpg", "t9.jpg"],
            "action": ["kept", "merged"],
            "reason": ["kept copy", "near copy (pHash distance 2)"],
        }
    ).write_parquet(dedup / "dup_groups.parquet")
    decont = out / ".stages" / "decontaminate-4567" / "reports"
    decont.mkdir(parents=True)
    pl.DataFrame(
        {
            "image_id": [image_id("t8")],
            "source": "coco",
            "source_image_id": ["t8"],
            "file_name": ["t8.jpg"],
            "matched_set": ["split:val"],
            "reason": ["exact copy (same bytes) of split:val image coco/v2"],
        }
    ).write_parquet(decont / "contamination.parquet")
    return out


def write_predictions(path: Path) -> Path:
    """COCO results: v1 person found + a confident car where nothing is (the planted FP);
    v2 person found, the rare zebra missed; v3/v4/v5 found."""
    import json

    dets = [
        ("v1", 0, [10, 10, 70, 90], 0.9),
        ("v1", 1, [100, 40, 40, 40], 0.95),
        ("v2", 0, [10, 10, 60, 90], 0.8),
        ("v3", 0, [20, 20, 80, 80], 0.7),
        ("v3", 3, [22, 21, 79, 81], 0.6),
        ("v4", 1, [30, 30, 90, 60], 0.85),
        ("v5", 0, [5, 5, 55, 55], 0.3),
        ("v5", 1, [100, 70, 30, 30], 0.2),
        # COCO does not annotate lamps: a COCO-protocol FP the federated protocol ignores
        ("v1", 3, [120, 5, 30, 30], 0.9),
    ]
    records = [
        # COCO results name classes by the COCO export's category_id: unified id + 1
        {"image_id": image_id(n), "category_id": c + 1, "bbox": b, "score": s}
        for n, c, b, s in dets
    ]
    path.write_text(json.dumps(records))
    return path


def write_probe_run(run: Path) -> Path:
    """A probe run's predictions.parquet: item 2 (counting, on v1) fails, the others pass."""
    run.mkdir(parents=True)
    pl.DataFrame(
        {
            "model": "tiny-clip",
            "item_id": [1, 2, 3],
            "task": ["counting", "counting", "spatial"],
            "split": "test",
            "image_id": [image_id("v2"), image_id("v1"), image_id("v3")],
            "object_ids": [[stable_id("coco", "b")], [stable_id("coco", "a")], []],
            "flip": False,
            "caption": ["one person", "one person", "a person left of a lamp"],
            "foil": ["two persons", "three persons", "a person right of a lamp"],
            "scorer": "itm",
            "score_caption": [0.9, 0.1, 0.7],
            "score_foil": [0.2, 0.6, 0.3],
            "correct": [True, False, True],
            "blind_score": [0.1, -0.3, 0.2],
        }
    ).write_parquet(run / "predictions.parquet")
    return run
