"""Detection metrics on a built dataset or a plain COCO/LVIS file: COCO, LVIS-style and
federated AP, per source.

Usage::

    from detforge.dataset import DetDataset
    from detforge.evaluators import evaluate, evaluate_file, write

    result = evaluate(DetDataset.read("out/bigdet/tables"), "preds.json", split="val")
    result.metrics("federated")["AP"]
    write(result, "out/bigdet/eval/val")
    evaluate_file("instances_val2017.json", "dets.json").metrics("coco")["AP"]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

import polars as pl

from detforge.dataset import DetDataset
from detforge.errors import DetforgeError
from detforge.evaluators import federated
from detforge.evaluators.detection import PROTOCOLS, evaluate_protocol, prepare
from detforge.evaluators.groundtruth import DEFAULT_PROTOCOL, read_ground_truth
from detforge.evaluators.predictions import box_counts, load_predictions, read_predictions
from detforge.evaluators.provenance import declared_scheme, meta_path, read_meta
from detforge.evaluators.results import SCHEMA_VERSION, EvalResult, to_json, write

__all__ = [
    "PROTOCOLS",
    "SCHEMA_VERSION",
    "EvalResult",
    "evaluate",
    "evaluate_file",
    "declared_scheme",
    "load_predictions",
    "read_meta",
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


def source_spaces(dataset: DetDataset) -> dict[str, pl.Series]:
    """Each source's own class ids, where they are integers (a results file could be
    numbered in them)."""
    spaces = {}
    for (source,), rows in dataset.source_categories.group_by("source", maintain_order=True):
        ids = rows["source_label"].cast(pl.Int64, strict=False)
        if ids.null_count() == 0:
            spaces[source] = ids
    return spaces


def evaluate(
    dataset: DetDataset,
    predictions: str | Path,
    *,
    split: str = "val",
    protocols: Sequence[str] = ("coco", "lvis", "federated"),
    mapping: pl.DataFrame | None = None,
    category_ids: str = "auto",
    frequency: str = "lvis",
    matches: bool = True,
    step: Callable[[str], None] | None = None,
) -> EvalResult:
    """Score ``predictions`` (a file, see :mod:`.predictions`) on ``split`` of ``dataset``.

    ``protocols``: any of :data:`PROTOCOLS`. ``mapping``: ``source_label -> label`` rows
    when the predictions carry a source's labels (see :func:`source_mapping`).
    ``category_ids``: ``coco`` (the COCO export's ids, unified id + 1), ``unified``, or
    ``auto`` (what the file's ``.meta.json`` declares, else the only one the file's ids
    fit; ids that fit several are refused).
    ``frequency``: how APr/APc/APf bin classes (:data:`federated.FREQUENCY_BINS`).
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
    bins = federated.frequency_bins(dataset, frequency)
    dets, scheme = read_predictions(
        predictions,
        images,
        dataset.categories["id"],
        split=split,
        mapping=mapping,
        category_ids=category_ids,
        source_spaces=source_spaces(dataset),
        taxonomy_fingerprint=dataset.meta.get("taxonomy_fingerprint"),
    )
    data = prepare(dataset, split, dets, bins)
    counts = {
        "images": images.height,
        "boxes": data.gt.height,
        "detections": dets.height,
        **box_counts(dets, images),
    }
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
    no_train = frequency == "train-counts" and bins["train_images"].is_null().all()
    notes = []
    about = read_meta(predictions)
    if about and about.get("model"):
        notes.append(f"predictions of {about['model']} ({meta_path(predictions).name})")
    if data.converted_boxes:
        notes.append(
            f"{data.converted_boxes} ground-truth box(es) have no source box (a build made "
            "before detforge kept them, or boxes carried from a duplicate copy): converted "
            "from the normalised float32 box, which can move an IoU off a threshold"
        )
    return EvalResult(
        split=split,
        predictions=Path(predictions).name,
        predictions_path=str(Path(predictions).absolute()),
        counts=counts,
        frequency_from=(
            f"{frequency}: categories.frequency (no train split to count)"
            if no_train
            else f"{frequency}: {federated.FREQUENCY_BINS[frequency]}"
        ),
        protocols=results,
        ground_truth=f"split {split!r} of the dataset",
        category_ids=scheme,
        notes=tuple(notes),
    )


def evaluate_file(
    ground_truth: str | Path,
    predictions: str | Path,
    *,
    format: str | None = None,
    protocols: Sequence[str] | None = None,
    matches: bool = True,
    step: Callable[[str], None] | None = None,
) -> EvalResult:
    """Score ``predictions`` on a plain COCO instances or LVIS JSON, ids as in the file.

    ``format``: ``coco`` or ``lvis`` (None: detected, see :mod:`.groundtruth`).
    ``protocols`` default to ``coco`` for a COCO file and ``lvis`` for an LVIS one; r/c/f
    bins are the file's own ``frequency``.
    """
    gt = read_ground_truth(ground_truth, format)
    result = evaluate(
        gt.dataset,
        predictions,
        split=gt.dataset.images["split"][0] if gt.dataset.images.height else "val",
        protocols=protocols or (DEFAULT_PROTOCOL[gt.format],),
        category_ids="unified",
        frequency="lvis",
        matches=matches,
        step=step,
    )
    return dataclasses.replace(
        result,
        split=None,
        ground_truth=f"{gt.path.name} ({gt.format})",
        category_ids=f"as in {gt.path.name}",
        frequency_from=(
            f"{gt.path.name}: each category's own frequency field"
            if gt.format == "lvis"
            else "none: a COCO file has no frequency field"
        ),
        notes=gt.notes + result.notes,
    )
