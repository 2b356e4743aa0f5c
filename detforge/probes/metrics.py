"""Metrics of one model on one task: zero-shot, mismatched, linear + control, blind probes.

All accuracies are on the test split with bootstrap CIs over images; hyper-parameters and
the best layer are chosen on the validation split.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from detforge.probes.controls import control_labels
from detforge.probes.linear import fit_pairwise, fit_probe
from detforge.probes.probeset import SPLITS
from detforge.probes.stats import bootstrap_ci, pairwise_correct


def split_index(items: pl.DataFrame) -> dict[str, np.ndarray]:
    split = items["split"].to_numpy()
    return {s: np.flatnonzero(split == s) for s in SPLITS}


def ci(correct: np.ndarray, images: np.ndarray, n_boot: int, seed: int) -> dict[str, float]:
    return bootstrap_ci(correct, images, n_boot=n_boot, seed=seed)


def linear_probe(x, y, types, idx, images, *, n_boot, seed) -> dict[str, Any]:
    """Task probe and control-task probe on one feature matrix; test accuracy with CIs."""
    tr, va, te = idx["train"], idx["val"], idx["test"]
    fit = fit_probe(x[tr], y[tr], x[va], y[va], x[te], seed=seed)
    correct = (fit.predictions == y[te]).astype(float)
    control = control_labels(types, y, seed)
    cfit = fit_probe(x[tr], control[tr], x[va], control[va], x[te], seed=seed)
    control_acc = float((cfit.predictions == control[te]).mean())
    result = ci(correct, images[te], n_boot, seed)
    return {
        **result,
        "C": fit.C,
        "val_acc": fit.val_acc,
        "control_acc": control_acc,
        "selectivity": result["acc"] - control_acc,
        "predictions": fit.predictions,
    }


def blind(emb, text_index, items, idx, images, *, n_boot, seed) -> dict[str, Any]:
    """Linear and learned pairwise (caption vs foil) accuracy from text embeddings alone."""
    y = items["label"].to_numpy()
    x = emb[text_index["text"]]
    linear = linear_probe(x, y, items["text"].to_list(), idx, images, n_boot=n_boot, seed=seed)
    cap = {s: emb[text_index["caption"][i]] for s, i in idx.items()}
    foil = {s: emb[text_index["foil"][i]] for s, i in idx.items()}
    margin = fit_pairwise(cap, foil, seed=seed)
    zeroshot = ci(pairwise_correct(margin, 0 * margin), images[idx["test"]], n_boot, seed)
    linear.pop("predictions")
    return {"linear": linear, "zeroshot": zeroshot, "margin": margin}


def attach_scores(items: pl.DataFrame, scores: pl.DataFrame) -> pl.DataFrame:
    names = [c for c in scores.columns if c not in ("key", "text")]
    out = items
    for role, key, text in (
        ("caption", "key", "caption"),
        ("foil", "key", "foil"),
        ("mm_caption", "mismatched", "caption"),
        ("mm_foil", "mismatched", "foil"),
    ):
        renamed = scores.rename({n: f"{n}:{role}" for n in names})
        out = out.join(
            renamed,
            left_on=[key, text],
            right_on=["key", "text"],
            how="left",
            maintain_order="left",
        )
    return out


def evaluate(view_items, view, feats, tower, *, n_boot, seed):
    """All metrics of one model on one task; returns (metrics, per-item prediction frame)."""
    idx, images, test = view["idx"], view["images"], view["idx"]["test"]
    scorers = sorted({c.split(":")[0] for c in view_items.columns if c.endswith(":caption")})
    metrics: dict[str, Any] = {"zeroshot": {}, "linear": []}
    preds = view_items
    for s in scorers:
        cap, foil = view_items[f"{s}:caption"].to_numpy(), view_items[f"{s}:foil"].to_numpy()
        correct = pairwise_correct(cap, foil)
        mm = pairwise_correct(
            view_items[f"{s}:mm_caption"].to_numpy(), view_items[f"{s}:mm_foil"].to_numpy()
        )
        metrics["zeroshot"][s] = {
            **ci(correct[test], images[test], n_boot, seed),
            "mismatched": ci(mm[test], images[test], n_boot, seed),
        }
        if s == scorers[0]:
            preds = preds.with_columns(
                score_caption=pl.Series(cap),
                score_foil=pl.Series(foil),
                correct=pl.Series(correct >= 1),
                scorer=pl.lit(s),
            )
    y, types, fi = view_items["label"].to_numpy(), view_items["text"].to_list(), view_items["fi"]
    best = None
    for layer, array in sorted(feats.items()):
        fit = linear_probe(array[fi.to_numpy()], y, types, idx, images, n_boot=n_boot, seed=seed)
        predicted = fit.pop("predictions")
        metrics["linear"].append({"layer": layer, **fit})
        if best is None or fit["val_acc"] > best[0]:
            best = (fit["val_acc"], layer, predicted)
    if best is not None:
        metrics["best_layer"] = best[1]
        full = np.full(len(y), -1)
        full[test] = best[2]
        preds = preds.with_columns(linear_pred=pl.Series(full), linear_layer=pl.lit(best[1]))
    if tower is not None:
        b = blind(tower, view["text_index"], view_items, idx, images, n_boot=n_boot, seed=seed)
        b.pop("margin")
        metrics["text_tower"] = b
    return metrics, preds


def prediction_rows(preds: pl.DataFrame, model: str, blind_margin, idx) -> pl.DataFrame:
    margin = np.full(preds.height, np.nan)
    margin[idx["test"]] = blind_margin
    return (
        preds.with_columns(
            model=pl.lit(model),
            blind_score=pl.Series(margin).fill_nan(None),
        )
        .with_columns(
            blind_correct=pl.col("blind_score") > 0,
            linear_correct=pl.when(pl.col("linear_pred") >= 0).then(
                pl.col("linear_pred") == pl.col("label")
            ),
        )
        .select(
            "model",
            "item_id",
            "task",
            "split",
            "image_id",
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
            "linear_layer",
            "linear_correct",
        )
    )


def comparison(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (task, pre-trained model): primary zero-shot and best-layer linear accuracy."""
    rows = []
    for entry in results["models"]:
        if entry["init"] != "pretrained":
            continue
        for task, m in entry["tasks"].items():
            scorer = next(iter(m["zeroshot"]))
            best = next((r for r in m["linear"] if r["layer"] == m.get("best_layer")), None)
            rows.append(
                {
                    "task": task,
                    "model": entry["model"],
                    "scorer": scorer,
                    "zeroshot": m["zeroshot"][scorer]["acc"],
                    "linear": best["acc"] if best else None,
                    "selectivity": best["selectivity"] if best else None,
                }
            )
    return rows
