"""Frames → FiftyOne: samples, ``Detections`` and ``Classifications`` fields.

FiftyOne's API takes one Python object per label, so this is the one place a
loop runs per box; everything before it (joins, conversions, checks) is
columnar in :mod:`.frames` and :mod:`.predictions`.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import polars as pl

#: sample fields, declared up front so saved views never name a missing field
SAMPLE_FIELDS = {
    "image_id": "IntField",
    "source": "StringField",
    "source_image_id": "StringField",
    "split": "StringField",
    "dup_group": "IntField",
    "dup_count": "IntField",
    "decontaminated": "BooleanField",
    "removed": "StringField",
    "removed_reason": "StringField",
    "quarantine": "ListField",
}


def declare_fields(fo: Any, dataset: Any) -> None:
    """Declare :data:`SAMPLE_FIELDS` and the ``ground_truth`` field every browse dataset has."""
    for name, kind in SAMPLE_FIELDS.items():
        if name not in dataset.get_field_schema():
            kwargs = {"subfield": fo.StringField} if kind == "ListField" else {}
            dataset.add_sample_field(name, getattr(fo, kind), **kwargs)
    if "ground_truth" not in dataset.get_field_schema():
        dataset.add_sample_field(
            "ground_truth", fo.EmbeddedDocumentField, embedded_doc_type=fo.Detections
        )


def make_samples(fo: Any, frame: pl.DataFrame) -> list[Any]:
    """One ``fo.Sample`` per row of :func:`.frames.sample_frame` (tags: source, split,
    ``removed:<why>``)."""
    samples = []
    for row in frame.iter_rows(named=True):
        tags = [row["source"], row["split"]]
        if row["removed"]:
            tags.append(f"removed:{row['removed']}")
        metadata = None
        if row["width"] and row["height"]:
            metadata = fo.ImageMetadata(width=row["width"], height=row["height"])
        samples.append(
            fo.Sample(
                filepath=row["filepath"],
                tags=[t for t in tags if t],
                metadata=metadata,
                image_id=row["image_id"],
                source=row["source"],
                source_image_id=row["source_image_id"],
                split=row["split"],
                dup_group=row["dup_group"],
                dup_count=row["dup_count"],
                decontaminated=row["removed"] == "contamination",
                removed=row["removed"],
                removed_reason=row["removed_reason"],
                quarantine=row["quarantine"] or [],
            )
        )
    return samples


def detections(fo: Any, boxes: pl.DataFrame, attributes: list[str]) -> dict[int, Any]:
    """``image_id -> fo.Detections`` from rows with ``image_id, label, box`` (and
    ``confidence`` when present) plus the named attribute columns."""
    per_image: dict[int, list] = defaultdict(list)
    has_conf = "confidence" in boxes.columns
    for row in boxes.iter_rows(named=True):
        per_image[row["image_id"]].append(
            fo.Detection(
                label=row["label"],
                bounding_box=row["box"],
                confidence=row["confidence"] if has_conf else None,
                **{a: row[a] for a in attributes},
            )
        )
    return {image_id: fo.Detections(detections=d) for image_id, d in per_image.items()}


def classifications(fo: Any, rows: pl.DataFrame, attributes: list[str]) -> dict[int, Any]:
    """``image_id -> fo.Classifications`` from rows with ``image_id, label`` and attributes."""
    per_image: dict[int, list] = defaultdict(list)
    for row in rows.iter_rows(named=True):
        per_image[row["image_id"]].append(
            fo.Classification(label=row["label"], **{a: row[a] for a in attributes})
        )
    return {image_id: fo.Classifications(classifications=c) for image_id, c in per_image.items()}


def set_labels(dataset: Any, field: str, values: dict[int, Any], empty: Any) -> None:
    """Set ``field`` on every sample by ``image_id`` (``empty`` where an image has none)."""
    ids = dataset.values("image_id")
    dataset.set_values(field, {i: values.get(i, empty) for i in ids}, key_field="image_id")


def set_counts(dataset: Any, counts: pl.DataFrame) -> None:
    """Set each non-key column of ``counts`` (``image_id`` + int columns) as a sample field;
    images without a row get 0."""
    ids = dataset.values("image_id")
    for column in counts.columns:
        if column == "image_id":
            continue
        known = dict(zip(counts["image_id"].to_list(), counts[column].to_list(), strict=True))
        dataset.set_values(column, {i: known.get(i, 0) for i in ids}, key_field="image_id")
