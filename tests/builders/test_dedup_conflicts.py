"""Dedup carry: a negative that a merged copy contradicts becomes not_exhaustive."""

from __future__ import annotations

import polars as pl

from detforge.builders.dedup import DedupConfig, dedup
from detforge.exports.coco import split_frames
from tests.builders.test_dedup import build_dataset


def _label(image: dict, source: str, label: int, status: str) -> dict:
    return {
        "image_id": image["image_id"],
        "source": source,
        "source_label": str(label),
        "label": label,
        "status": status,
    }


def test_contradicted_negatives_become_not_exhaustive(tmp_path) -> None:
    dataset, rows = build_dataset(tmp_path)
    a, b, b_copy = rows["a"], rows["b"], rows["b_copy"]
    extra = pl.DataFrame(
        [
            # kept b says no cup, its merged copy says a cup is there (no box)
            _label(b, "objects365", 4, "negative"),
            _label(b_copy, "coco", 4, "positive"),
            # kept b says no dog, its merged copy has a dog box (carried)
            _label(b, "objects365", 1, "negative"),
            # kept a says a cup is there, its merged copy a_small says none (planted negative)
            _label(a, "objects365", 4, "positive"),
        ],
        schema=dataset.image_labels.schema,
    )
    dataset = dataset.replace(image_labels=pl.concat([dataset.image_labels, extra]))
    out, _ = dedup(dataset, DedupConfig(), engine="process", workers=1)

    def labels(image: dict) -> list[tuple]:
        frame = out.image_labels.filter(pl.col("image_id") == image["image_id"])
        return frame.select("source", "label", "status").sort("label").rows()

    assert labels(b) == [
        ("coco", 0, "negative"),  # derived from coco's label space, no box: not a conflict
        ("coco", 1, "not_exhaustive"),  # the carried box's source
        ("coco", 4, "not_exhaustive"),
    ]
    assert labels(a) == [("openimages", 3, "positive"), ("objects365", 4, "not_exhaustive")]
    assert out.meta["dedup"]["negatives_contradicted"] == 3
    # the COCO export never lists a class as both verified absent and present
    images, _ = split_frames(out, "train")
    both = images.select(
        "id", pl.col("neg_category_ids").list.set_intersection("not_exhaustive_category_ids")
    ).filter(pl.col("neg_category_ids").list.len() > 0)
    assert both.is_empty()
    fed = {r["id"]: r for r in images.iter_rows(named=True)}
    assert fed[b["image_id"]]["neg_category_ids"] == [1]  # coco id = unified id + 1
    assert fed[b["image_id"]]["not_exhaustive_category_ids"] == [2, 5]
    assert fed[a["image_id"]]["neg_category_ids"] == []
    assert fed[a["image_id"]]["not_exhaustive_category_ids"] == [4, 5]
