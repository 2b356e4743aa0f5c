"""The saved views of a browse dataset (``dataset.save_view``), each a FiftyOne view stage
chain over the fields :mod:`.build` writes."""

from __future__ import annotations

from typing import Any

#: a false positive at least this confident is worth a look
HIGH_CONFIDENCE = 0.5


def _slug(task: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in task.lower()).strip("-")


def evaluated(dataset: Any, splits: list[str]) -> Any:
    """The samples predictions are scored on: kept (not removed) images of ``splits``."""
    from fiftyone import ViewField as F

    return dataset.match((F("removed") == None) & F("split").is_in(splits))  # noqa: E711


def define_views(
    dataset: Any,
    *,
    eval_key: str | None,
    eval_splits: list[str],
    federated: bool,
    probe_tasks: list[str],
    high_confidence: float = HIGH_CONFIDENCE,
) -> dict[str, tuple[Any, str]]:
    """``name -> (view, description)`` of every view that applies to ``dataset``."""
    from fiftyone import ViewField as F

    kept = dataset.match(F("removed") == None)  # noqa: E711 (a mongo null test)
    views: dict[str, tuple[Any, str]] = {
        "label-conflicts": (
            kept.filter_labels("ground_truth", F("conflict_with").length() > 0),
            "Boxes of different sources and different unified labels on one object "
            "(IoU >= 0.7): a merge that disagrees",
        ),
        "near-duplicate-groups": (
            dataset.match(F("dup_count") > 1).group_by("dup_group", order_by="image_id"),
            "Duplicate groups side by side: the kept copy and the copies the build removed",
        ),
        "decontaminated": (
            dataset.match(F("decontaminated") == True),  # noqa: E712
            "Training images removed because they duplicate an evaluation image",
        ),
    }
    if eval_key:
        fp = (F(eval_key) == "fp") & (F("confidence") >= high_confidence)
        fn = (F(eval_key) == "fn") & (F("frequency") == "r")
        if federated:
            # a COCO false positive on a class the image's source never annotated is not one
            fp = fp & (F("fed") != "ignored")
            fn = fn & (F("fed") != "ignored")
        scored = evaluated(dataset, eval_splits)
        views["high-confidence-false-positives"] = (
            scored.filter_labels("predictions", fp).sort_by(
                F("predictions.detections.confidence").max(), reverse=True
            ),
            f"Detections with confidence >= {high_confidence} that match no ground-truth box",
        )
        views["rare-class-misses"] = (
            scored.filter_labels("ground_truth", fn),
            "Ground-truth boxes of rare classes (frequency r) no detection found",
        )
    for task in probe_tasks:
        views[f"probe-failures-{_slug(task)}"] = (
            dataset.filter_labels("probe_failures", F("label") == task).filter_labels(
                "probe_boxes", F("label") == task, only_matches=False
            ),
            f"Probe items of task {task} the model got wrong (caption, foil, scores, boxes)",
        )
    return views


def save_views(dataset: Any, views: dict[str, tuple[Any, str]]) -> dict[str, int]:
    """Replace the dataset's saved views with ``views``; returns each view's sample count."""
    for name in dataset.list_saved_views():
        dataset.delete_saved_view(name)
    counts = {}
    for name, (view, description) in views.items():
        dataset.save_view(name, view, description=description)
        counts[name] = len(view)
    return counts
