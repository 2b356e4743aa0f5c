"""Per-item outputs of a run: predictions to browse, paired comparisons between models.

With several ``--model``\\ s, each pre-trained model is compared with the first on the same
test items: the difference of zero-shot accuracy (each model's default scorer) and of
best-layer linear accuracy (seed 0), with a paired bootstrap CI over duplicate groups — so
"pre-trained vs fine-tuned" is one command.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from detforge.probes.metrics import TaskView
from detforge.probes.stats import paired_bootstrap

PREDICTION_COLUMNS = (
    "model",
    "item_id",
    "task",
    "split",
    "image_id",
    "image_group",
    "object_ids",
    "flip",
    "caption",
    "foil",
    "text",
    "label",
    "label_name",
    "scorer",
    "score_caption",
    "score_foil",
    "correct",
    "blind_score",
    "linear_pred",
    "linear_correct",
)


def prediction_rows(
    view: TaskView, arrays: dict[str, Any], model: str, blind_margin: np.ndarray
) -> pl.DataFrame:
    """One row per item: the default scorer's scores and correctness, the blind encoder's
    margin and the best layer's linear prediction (test items; null elsewhere)."""
    test = view.splits[0]["test"]
    n = view.items.height
    margin = np.full(n, np.nan)
    margin[test] = blind_margin
    linear = np.full(n, -1)
    if "linear" in arrays:
        linear[test] = arrays["linear"]
    scorer = next(iter(arrays["zeroshot"]), None)
    scores = arrays["zeroshot"].get(scorer, {})
    column = {
        k: pl.Series(scores[k]) if k in scores else pl.lit(None)
        for k in ("caption", "foil", "correct")
    }
    return (
        view.items.with_columns(
            model=pl.lit(model),
            scorer=pl.lit(scorer, pl.String),
            score_caption=column["caption"].cast(pl.Float64),
            score_foil=column["foil"].cast(pl.Float64),
            correct=column["correct"].cast(pl.Float64) >= 1,
            blind_score=pl.Series(margin).fill_nan(None),
            linear_pred=pl.Series(linear),
        )
        .with_columns(
            linear_correct=pl.when(pl.col("linear_pred") >= 0).then(
                pl.col("linear_pred") == pl.col("label")
            ),
            linear_pred=pl.when(pl.col("linear_pred") >= 0).then(pl.col("linear_pred")),
        )
        .select(PREDICTION_COLUMNS)
    )


def paired(
    results: dict[str, Any],
    arrays: dict[str, dict[str, dict[str, Any]]],
    views: dict[str, TaskView],
    *,
    n_boot: int,
) -> list[dict[str, Any]]:
    """Each pre-trained model against the first on every task (empty with one model)."""
    models = list(arrays)
    if len(models) < 2:
        return []
    base = models[0]
    rows = []
    for task, view in views.items():
        test, groups, seed = view.splits[0]["test"], view.groups, view.seeds[0]
        y = view.y[test]
        for other in models[1:]:
            row: dict[str, Any] = {"task": task, "base": base, "model": other}
            a, b = arrays[base][task], arrays[other][task]
            za, zb = _first_scorer(a), _first_scorer(b)
            if za is not None and zb is not None:
                row["zeroshot"] = paired_bootstrap(
                    za[test], zb[test], groups[test], n_boot=n_boot, seed=seed
                )
            if "linear" in a and "linear" in b:
                row["linear"] = paired_bootstrap(
                    (a["linear"] == y).astype(float),
                    (b["linear"] == y).astype(float),
                    groups[test],
                    n_boot=n_boot,
                    seed=seed,
                )
            rows.append(row)
    return rows


def _first_scorer(arrays: dict[str, Any]) -> np.ndarray | None:
    """Per-item zero-shot correctness of the model's default scorer (None without one)."""
    scorer = next(iter(arrays["zeroshot"]), None)
    return arrays["zeroshot"][scorer]["correct"] if scorer else None
