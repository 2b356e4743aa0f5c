"""Build (or replace) the FiftyOne dataset ``detforge browse`` opens."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from detforge.dataset import DetDataset
from detforge.errors import InputError
from detforge.inspection import frames
from detforge.inspection import predictions as preds
from detforge.inspection import samples as fos
from detforge.inspection.database import URI_ENV, load_fiftyone, require_fiftyone
from detforge.inspection.views import HIGH_CONFIDENCE, define_views, save_views
from detforge.lock import Note, writer_lock

EVAL_KEY = "eval"
GT_ATTRIBUTES = [
    "object_id",
    "source",
    "source_label",
    "source_name",
    "frequency",
    "iscrowd",
    "carried",
    "origin_image_id",
    "merged_object_ids",
    "conflict_with",
]


@dataclasses.dataclass
class BrowseResult:
    """What was built: the FiftyOne dataset's name, sample count, saved views and notes."""

    name: str
    samples: int
    views: dict[str, int]
    notes: list[str]
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)


def default_name(out: Path, split: str | None) -> str:
    """``detforge-<folder>[-<split>]``: one FiftyOne dataset per build output and split."""
    stem = Path(out).absolute().name or "dataset"
    return f"detforge-{stem}" + (f"-{split}" if split else "")


def _lock_file(name: str) -> Path:
    """The lock of FiftyOne dataset ``name`` in the configured database: one writer per
    dataset. It lives in the user's cache folder (the database is not a folder; the build
    output may be read-only)."""
    database = "|".join(os.environ.get(k, "") for k in (URI_ENV, "FIFTYONE_DATABASE_NAME"))
    digest = hashlib.sha256(f"{database}|{name}".encode()).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:60]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "detforge" / "locks" / f"browse-{slug}-{digest}.lock"


def _replace(fo: Any, new: Any, name: str) -> None:
    """Give the finished dataset ``new`` the name ``name``. An existing dataset of that name
    is renamed away first (its App settings, description and tags carry over), then deleted:
    a user sees the old dataset or the new one, never a half-built one."""
    old = fo.load_dataset(name) if fo.dataset_exists(name) else None
    if old is not None:
        new.app_config = old.app_config.copy()
        new.description = old.description
        new.tags = list(old.tags)
        old.name = f"{name}.replaced-{os.getpid()}-{secrets.token_hex(3)}"
    new.name = name
    new.persistent = True
    new.save()
    if old is not None:
        old.delete()


def build_browse_dataset(
    out: str | Path,
    *,
    split: str | None = None,
    predictions: str | Path | None = None,
    eval_dir: str | Path | None = None,
    probe_run: str | Path | None = None,
    name: str | None = None,
    high_confidence: float = HIGH_CONFIDENCE,
    step: Callable[[str], None] | None = None,
    note: Note | None = None,
) -> BrowseResult:
    """Turn a build output (and optionally predictions / an evaluation / a probe run) into a
    persistent FiftyOne dataset with saved views; re-running replaces it under the same name.

    Every input is read and checked before FiftyOne is touched. The dataset is written under
    an exclusive lock (a second writer of the same name stops at once with
    :class:`~detforge.lock.LockHeld`), built under a temporary name and renamed when whole.
    """
    require_fiftyone()  # before any reading: a base install learns which extra it lacks
    say = step or (lambda message: None)
    out = Path(out)
    tables = frames.find_tables(out)
    dataset = DetDataset.read(tables)
    unmapped = dataset.objects["label"].null_count()
    if unmapped:
        # the taxonomy removes the boxes of classes it drops: a build has a label on every box
        raise InputError(
            tables / "objects.parquet",
            None,
            "label",
            f"{unmapped} box(es) have no unified label: browse the output of `detforge build`",
        )
    notes: list[str] = []

    eval_info, matches = (None, None)
    if eval_dir is not None:
        eval_info, matches = preds.read_eval_dir(Path(eval_dir))
        split = split or eval_info.get("split")
        if predictions is None:
            predictions = preds.find_eval_predictions(Path(eval_dir), eval_info)
    reports = frames.build_reports(out)
    if not reports:
        notes.append("no dedup/decontamination reports found: removed copies are not shown")
    sample_rows = frames.sample_frame(dataset, split, reports, where=str(tables))
    frames.check_files(sample_rows, str(tables / "images.parquet"))
    kept = sample_rows.filter(pl.col("removed").is_null())
    boxes = frames.box_frame(dataset, kept["image_id"])

    pred_rows, eval_splits = None, []
    if predictions is not None:
        from detforge.evaluators import read_meta

        say("reading predictions")
        # the numbering the evaluation read the file with, when it is one of a build's
        scheme = (eval_info or {}).get("category_ids")
        scheme = scheme if scheme in ("coco", "unified") else None
        pred_rows = preds.prediction_frame(Path(predictions), dataset, kept, split, scheme)
        about = read_meta(predictions)
        if about and about.get("model"):
            notes.append(f"predictions of {about['model']}")
        # detections are scored on every image of the split(s) they were made for
        predicted = kept.filter(pl.col("image_id").is_in(pred_rows["image_id"].implode()))
        eval_splits = [split] if split else sorted(predicted["split"].unique().to_list())
    if matches is not None:
        per_det, per_box = preds.federated_statuses(matches, kept["image_id"], Path(eval_dir))
        pred_rows = pred_rows.join(per_det, on=["image_id", "pred_index"], how="left")
        boxes = boxes.join(per_box, on=["image_id", "object_id"], how="left")
    failures = None
    if probe_run is not None:
        failures = preds.probe_failures(Path(probe_run), dataset)
        outside = failures.filter(~pl.col("image_id").is_in(sample_rows["image_id"].implode()))
        if outside.height:
            notes.append(f"{outside.height} failed probe item(s) are on images of other splits")
        failures = failures.join(outside.select("item_id"), on="item_id", how="anti")

    name = name or default_name(out, split)
    with writer_lock(_lock_file(name), "browse", what=f"FiftyOne dataset {name!r}", note=note):
        say("loading FiftyOne")
        fo = load_fiftyone()
        # built under a temporary name, not persistent (FiftyOne deletes it if this process
        # dies), then renamed: concurrent or killed runs never leave duplicates or half views
        ds = fo.Dataset(f"{name}.building-{os.getpid()}-{secrets.token_hex(3)}")
        try:
            content = _Content(sample_rows, boxes, pred_rows, matches, failures, eval_splits)
            metrics, counts = _fill(fo, ds, content, high_confidence, say)
            ds.info = {
                "detforge_tables": str(tables.absolute()),
                "split": split,
                "evaluated_splits": eval_splits,
                "predictions": str(predictions) if predictions else None,
                "eval_dir": str(eval_dir) if eval_dir else None,
                "probe_run": str(probe_run) if probe_run else None,
                "quarantine": dataset.quarantine.height,
            }
            ds.save()
            _replace(fo, ds, name)
        except BaseException:
            if not ds.deleted and ds.name != name:
                ds.delete()
            raise
    return BrowseResult(name, len(ds), counts, notes, metrics)


@dataclasses.dataclass(frozen=True)
class _Content:
    """What goes into the FiftyOne dataset, read and checked before FiftyOne is touched."""

    samples: pl.DataFrame
    boxes: pl.DataFrame
    predictions: pl.DataFrame | None
    matches: pl.DataFrame | None
    failures: pl.DataFrame | None
    eval_splits: list[str]


def _fill(
    fo: Any, ds: Any, content: _Content, high_confidence: float, say: Callable[[str], None]
) -> tuple[dict[str, float], dict[str, int]]:
    """Samples, labels, evaluation and saved views into the empty dataset ``ds``; returns the
    evaluation's metrics and each saved view's sample count."""
    sample_rows, boxes, pred_rows = content.samples, content.boxes, content.predictions
    matches, failures, eval_splits = content.matches, content.failures, content.eval_splits
    fos.declare_fields(fo, ds)
    say(f"adding {sample_rows.height} samples")
    ds.add_samples(fos.make_samples(fo, sample_rows), progress=False)
    gt_attrs = GT_ATTRIBUTES + (["fed", "fed_reason"] if matches is not None else [])
    fos.set_labels(ds, "ground_truth", fos.detections(fo, boxes, gt_attrs), fo.Detections())

    metrics: dict[str, float] = {}
    if pred_rows is not None:
        say(f"evaluating {pred_rows.height} detections")
        attrs = ["pred_index"] + (["fed", "fed_reason"] if matches is not None else [])
        fos.set_labels(ds, "predictions", fos.detections(fo, pred_rows, attrs), fo.Detections())
        metrics = _evaluate(ds, eval_splits)
        if matches is not None:
            fos.set_counts(ds, _federated_counts(pred_rows, boxes))
    if failures is not None:
        _add_probes(fo, ds, failures, boxes)
    say("saving views")
    views = define_views(
        ds,
        eval_key=EVAL_KEY if pred_rows is not None else None,
        eval_splits=eval_splits,
        federated=matches is not None,
        probe_tasks=sorted(failures["task"].unique().to_list()) if failures is not None else [],
        high_confidence=high_confidence,
    )
    return metrics, save_views(ds, views)


def _evaluate(ds: Any, splits: list[str]) -> dict[str, float]:
    """FiftyOne's COCO-protocol matching on the kept images of ``splits``: ``eval``
    tp/fp/fn per box and ``eval_tp/fp/fn`` per sample."""
    from detforge.inspection.views import evaluated

    view = evaluated(ds, splits)
    results = view.evaluate_detections(
        "predictions",
        gt_field="ground_truth",
        eval_key=EVAL_KEY,
        method="coco",
        iscrowd="iscrowd",
        progress=False,
    )
    return {k: float(v) for k, v in results.metrics().items() if v is not None}


def _federated_counts(pred_rows: pl.DataFrame, boxes: pl.DataFrame) -> pl.DataFrame:
    """Per-sample ``fed_tp, fed_fp, fed_fn, fed_ignored`` from the evaluation's matches."""
    rows = pl.concat([pred_rows.select("image_id", "fed"), boxes.select("image_id", "fed")])
    statuses = ["tp", "fp", "fn", "ignored"]
    return rows.group_by("image_id").agg(
        (pl.col("fed") == s).sum().cast(pl.Int64).alias(f"fed_{s}") for s in statuses
    )


def _add_probes(fo: Any, ds: Any, failures: pl.DataFrame, boxes: pl.DataFrame) -> None:
    """``probe_failures`` (one Classification per failed item, label = task) and
    ``probe_boxes`` (the boxes each failed item was made from, label = task)."""
    items = failures.with_columns(label=pl.col("task"))
    attrs = [c for c in items.columns if c not in ("image_id", "label", "task")]
    fos.set_labels(
        ds, "probe_failures", fos.classifications(fo, items, attrs), fo.Classifications()
    )
    involved = (
        failures.select("image_id", "task", "item_id", "object_ids")
        .explode("object_ids")
        .rename({"object_ids": "object_id"})
        .join(boxes.select("object_id", "box", class_name="label"), on="object_id", how="inner")
        .select(
            "image_id", label=pl.col("task"), box="box", item_id="item_id", class_name="class_name"
        )
    )
    fos.set_labels(
        ds,
        "probe_boxes",
        fos.detections(fo, involved, ["item_id", "class_name"]),
        fo.Detections(),
    )
