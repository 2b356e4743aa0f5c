"""A small hand-made taxonomy and dataset builder for the taxonomy tests (imported by name:
a uniquely named module, unlike ``conftest``)."""

from __future__ import annotations

import polars as pl

from detforge import schema
from detforge.dataset import DetDataset
from detforge.taxonomy import Taxonomy, UnifiedClass
from detforge.taxonomy.model import classes_frame

CLASSES = [
    UnifiedClass(0, "vehicle"),
    UnifiedClass(1, "car", synonyms=("automobile",), parents=(0,)),
    UnifiedClass(2, "person"),
    UnifiedClass(3, "shelf"),
    UnifiedClass(4, "wheel", part_of=(1,)),
    UnifiedClass(5, "dog"),
    UnifiedClass(6, "sedan", parents=(1,)),
]

# (source, source_label, source_name, label name or None, relation)
MAPPING = [
    ("objects365", "1", "Person", "person", "exact"),
    ("objects365", "2", "Car", "car", "exact"),
    ("objects365", "3", "Cabinet/shelf", "shelf", "merge"),
    ("objects365", "4", "Shelf ", "shelf", "merge"),
    ("objects365", "5", "Trash", None, "drop"),
    ("objects365", "6", "Wheel", "wheel", "synonym"),
    ("objects365", "7", "Puppy", "dog", "parent"),
    ("openimages", "/m/person", "Person", "person", "exact"),
    ("openimages", "/m/man", "Man", "person", "parent"),
    ("openimages", "/m/car", "Car", "car", "exact"),
    ("openimages", "/m/sedan", "Limousine", "car", "parent"),
    ("openimages", "/m/drop", "Dropme", None, "drop"),
    ("lvis", "1", "car_(automobile)", "car", "exact"),
    ("lvis", "2", "shelf", "shelf", "merge"),
    ("lvis", "3", "bookcase", "shelf", "merge"),
    ("lvis", "4", "puppy", "dog", "merge"),  # LVIS boxes puppies apart from dogs
    ("lvis", "5", "dog", "dog", "synonym"),
]
# OpenImages' own hierarchy (child MID -> is_a parent MID) for the toy's OpenImages classes:
# what lets Man and Limousine be parent rows beside Person and Car
OPENIMAGES_PARENTS = {"/m/man": "/m/person", "/m/sedan": "/m/car"}


def make_taxonomy(mapping=MAPPING, classes=CLASSES, name="toy") -> Taxonomy:
    rows = [
        {
            "source": s,
            "source_label": sl,
            "source_name": sn,
            "label_name": label,
            "relation": rel,
            "provenance": "manual",
            "score": 1.0,
        }
        for s, sl, sn, label, rel in mapping
    ]
    frame = pl.DataFrame(rows, schema_overrides={"label_name": pl.String, "score": pl.Float32})
    return Taxonomy(name=name, classes=classes_frame(list(classes)), mapping=frame)


def image_id(source: str, key: str) -> int:
    return schema.stable_id(source, key)


def make_dataset(images, boxes=(), labels=(), spaces=()) -> DetDataset:
    """images: (source, key); boxes: (source, key, source_label); labels: (source, key,
    source_label, status); spaces: (source, source_label)."""
    imgs = pl.DataFrame(
        [
            {
                "image_id": image_id(s, k),
                "source": s,
                "source_image_id": k,
                "file_name": f"{k}.jpg",
                "width": 100,
                "height": 100,
                "split": "train",
            }
            for s, k in images
        ],
        schema_overrides={"width": pl.Int32, "height": pl.Int32},
    )
    objs = pl.DataFrame(
        [
            {
                "image_id": image_id(s, k),
                "object_id": schema.stable_id(s, f"{k}/{n}"),
                "source": s,
                "source_label": sl,
                "bbox": [0.1, 0.1, 0.5, 0.5],
            }
            for n, (s, k, sl) in enumerate(boxes)
        ],
        schema={
            "image_id": pl.Int64,
            "object_id": pl.Int64,
            "source": pl.String,
            "source_label": pl.String,
            "bbox": schema.BBOX,
        },
    )
    lbls = pl.DataFrame(
        [
            {"image_id": image_id(s, k), "source": s, "source_label": sl, "status": st}
            for s, k, sl, st in labels
        ],
        schema={
            "image_id": pl.Int64,
            "source": pl.String,
            "source_label": pl.String,
            "status": pl.String,
        },
    )
    spc = pl.DataFrame(
        [{"source": s, "source_label": sl} for s, sl in spaces],
        schema={"source": pl.String, "source_label": pl.String},
    )
    return DetDataset(images=imgs, objects=objs, image_labels=lbls, label_spaces=spc)
