"""Detection metrics on a built dataset: COCO, LVIS-style and federated AP, per source.

Usage::

    from detforge.dataset import DetDataset
    from detforge.evaluators import evaluate, write

    result = evaluate(DetDataset.read("out/bigdet/tables"), "preds.json", split="val")
    result.metrics("federated")["AP"]
    write(result, "out/bigdet/eval/val")
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import polars as pl

from detforge.dataset import DetDataset
from detforge.errors import DetforgeError
from detforge.evaluators.detection import PROTOCOLS, evaluate_protocol, prepare
from detforge.evaluators.predictions import load_predictions
from detforge.evaluators.results import SCHEMA_VERSION, EvalResult, to_json, write

__all__ = [
    "PROTOCOLS",
    "SCHEMA_VERSION",
    "EvalResult",
    "evaluate",
    "load_predictions",
    "source_mapping",
    "to_json",
    "write",
]


def source_mapping(
    taxonomy: str, source: str, categories: pl.DataFrame | None = None
) -> pl.DataFrame:
    """``source_label, label`` rows of one source in a taxonomy's mapping.

    With the dataset's ``categories``, the taxonomy must number its classes as the
    dataset does: mapping through another taxonomy would score every detection as
    some other class.
    """
    from detforge import taxonomy as taxonomies

    loaded = taxonomies.load(taxonomy)
    if categories is not None:
        ours = loaded.classes.select("id", "name")
        theirs = categories.select("id", pl.col("name").alias("dataset_name"))
        differ = ours.join(theirs, on="id", how="full", coalesce=True).filter(
            pl.col("name").ne_missing(pl.col("dataset_name"))
        )
        if differ.height:
            row = differ.row(0, named=True)
            raise DetforgeError(
                f"taxonomy {taxonomy!r} does not number classes as the dataset does "
                f"({differ.height} ids differ, e.g. id {row['id']}: {row['name']!r} in the "
                f"taxonomy, {row['dataset_name']!r} in the dataset)"
            )
    mapping = loaded.mapping.filter(pl.col("source") == source)
    if mapping.height == 0:
        raise DetforgeError(f"taxonomy {taxonomy!r} maps no class of source {source!r}")
    return mapping.select("source_label", "label")


def evaluate(
    dataset: DetDataset,
    predictions: str | Path,
    *,
    split: str = "val",
    protocols: Sequence[str] = ("coco", "lvis", "federated"),
    mapping: pl.DataFrame | None = None,
    category_ids: str = "coco",
    matches: bool = True,
    step: Callable[[str], None] | None = None,
) -> EvalResult:
    """Score ``predictions`` (a file, see :mod:`.predictions`) on ``split`` of ``dataset``.

    ``protocols``: any of :data:`PROTOCOLS`. ``mapping``: ``source_label -> label`` rows
    when the predictions carry a source's labels (see :func:`source_mapping`).
    ``category_ids``: ``coco`` (the COCO export's ids, unified id + 1) or ``unified``.
    ``matches``: also compute per-detection TP/FP rows at IoU 0.5.
    ``step`` is called with a short description before each evaluation pass.
    """
    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown or not protocols:
        raise DetforgeError(
            f"unknown protocol(s) {', '.join(unknown) or '(none)'}: choose from {', '.join(PROTOCOLS)}"
        )
    images = dataset.images.filter(pl.col("split") == split)
    if images.height == 0:
        have = sorted(dataset.images["split"].unique().drop_nulls().to_list())
        raise DetforgeError(f"the dataset has no images in split {split!r} (splits: {have})")
    dets = load_predictions(
        predictions,
        images,
        dataset.categories["id"],
        split=split,
        mapping=mapping,
        category_ids=category_ids,
    )
    data = prepare(dataset, split, dets)
    counts = {"images": images.height, "boxes": data.gt.height, "detections": dets.height}
    per_class_counts = (
        data.categories.join(
            data.gt.group_by("label").agg(
                (pl.col("iscrowd") == 0).sum().cast(pl.Int64).alias("boxes")
            ),
            on="label",
            how="left",
        )
        .join(
            data.dets.group_by("label").agg(pl.len().cast(pl.Int64).alias("detections")),
            on="label",
            how="left",
        )
        .with_columns(pl.col("boxes", "detections").fill_null(0))
        .select("label", "name", "frequency", "boxes", "detections")
    )
    results = {}
    for name in dict.fromkeys(protocols):
        result = evaluate_protocol(
            data, PROTOCOLS[name], with_matches=matches, step=step or (lambda _: None)
        )
        result["per_class"] = per_class_counts.join(
            result["per_class"], on="label", how="inner"
        ).sort("label")
        results[name] = result
    has_train = dataset.images.filter(pl.col("split") == "train").height > 0
    return EvalResult(
        split=split,
        predictions=Path(predictions).name,
        counts=counts,
        frequency_from="train split box counts" if has_train else "categories.frequency",
        protocols=results,
    )
