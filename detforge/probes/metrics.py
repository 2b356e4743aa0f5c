"""Metrics of one model on one task.

Zero-shot: the caption scored above its foil (ties ½), the same with a mismatched image,
and Winoground's text / image / group scores on left/right mirror twins. Linear probes per
layer over several probe seeds (mean ± std; the bootstrap CI over images is seed 0's),
each with the control task (selectivity) and the mismatched-image probe; the image-only
and text-only probes. Chance of a linear probe = the majority-label rate of the test split.
Hyper-parameters and the best layer are chosen on validation, never on test.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import polars as pl

from detforge.probes.controls import control_labels, control_split, resplit
from detforge.probes.linear import fit_pairwise, fit_probe
from detforge.probes.stats import bootstrap_ci, majority_rate, pairwise_correct, winoground


@dataclasses.dataclass
class TaskView:
    """One task's items in run order and what every probe on them shares."""

    task: str
    items: pl.DataFrame
    y: np.ndarray
    groups: np.ndarray
    seeds: list[int]
    splits: list[dict[str, np.ndarray]]  # per probe seed: train / val / test item indices
    controls: list[tuple[np.ndarray, np.ndarray]]  # per probe seed: (random labels, test mask)
    text_index: dict[str, np.ndarray]  # text / caption / foil → row of the text tables
    chance: float


def task_view(items: pl.DataFrame, task: str, position: dict[str, int], seeds: list[int]):
    view = items.filter(pl.col("task") == task)
    y = view["label"].to_numpy()
    groups = view["image_group"].to_numpy()
    splits = [resplit(view["split"].to_numpy(), groups, seed, i) for i, seed in enumerate(seeds)]
    controls = [
        (control_labels(groups, y, seed), control_split(groups, view["item_id"].to_numpy(), seed))
        for seed in seeds
    ]
    index = {
        c: np.array([position[t] for t in view[c]], dtype=int) for c in ("text", "caption", "foil")
    }
    return TaskView(
        task, view, y, groups, seeds, splits, controls, index, majority_rate(y[splits[0]["test"]])
    )


def _spread(values: list[float]) -> dict[str, float]:
    finite = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    if finite.size == 0:
        return {"mean": float("nan"), "std": float("nan")}
    std = float(finite.std(ddof=1)) if finite.size > 1 else 0.0
    return {"mean": float(finite.mean()), "std": std}


def linear(x: np.ndarray, view: TaskView, *, n_boot: int, control: bool) -> tuple[dict, np.ndarray]:
    """A linear probe of ``x`` (one row per item) over every probe seed; with ``control``, the
    control-task probe too (same C as the task probe of that seed). Returns the summary and
    seed 0's test predictions."""
    y, accs, vals, cs, ctrl, ctrl_chance, first = view.y, [], [], [], [], [], None
    for i, (seed, idx) in enumerate(zip(view.seeds, view.splits, strict=True)):
        tr, va, te = idx["train"], idx["val"], idx["test"]
        fit = fit_probe(x[tr], y[tr], x[va], y[va], x[te], seed=seed)
        accs.append(float(np.mean(fit.predictions == y[te])) if len(te) else float("nan"))
        vals.append(fit.val_acc)
        cs.append(fit.C)
        if i == 0:
            first = fit.predictions
        if control:
            labels, test = view.controls[i]
            c = fit.C if np.isfinite(fit.C) else 1.0
            cfit = fit_probe(
                x[~test], labels[~test], x[:0], labels[:0], x[test], cs=(c,), seed=seed
            )
            ctrl.append(
                float(np.mean(cfit.predictions == labels[test])) if test.any() else float("nan")
            )
            ctrl_chance.append(majority_rate(labels[test]))
    te = view.splits[0]["test"]
    summary: dict[str, Any] = {
        **bootstrap_ci(
            (first == y[te]).astype(float), view.groups[te], n_boot=n_boot, seed=view.seeds[0]
        ),
        **_spread(accs),
        "seeds": accs,
        "val_acc": _spread(vals)["mean"],
        "C": cs,
        "chance": view.chance,
    }
    if control:
        summary["control"] = {
            **_spread(ctrl),
            "seeds": ctrl,
            "chance": _spread(ctrl_chance)["mean"],
        }
        summary["selectivity"] = _spread([a - c for a, c in zip(accs, ctrl, strict=True)])["mean"]
    return summary, first


def text_only(emb: np.ndarray, view: TaskView, *, n_boot: int) -> tuple[dict, np.ndarray]:
    """A probe that reads only text embeddings ``emb``: linear on the item's text, and a learned
    caption-vs-foil scorer (train pairs, C on val; seed 0's split). Returns the metrics and
    the test margins (> 0 = caption preferred)."""
    lin, _ = linear(emb[view.text_index["text"]], view, n_boot=n_boot, control=False)
    idx = view.splits[0]
    caption = {s: emb[view.text_index["caption"][i]] for s, i in idx.items()}
    foil = {s: emb[view.text_index["foil"][i]] for s, i in idx.items()}
    margin = fit_pairwise(caption, foil, seed=view.seeds[0])
    te = idx["test"]
    pairwise = bootstrap_ci(
        pairwise_correct(margin, 0 * margin), view.groups[te], n_boot=n_boot, seed=view.seeds[0]
    )
    return {"linear": lin, "zeroshot": pairwise}, margin


def _twins(view: TaskView) -> tuple[np.ndarray, np.ndarray]:
    """Test positions of (item, its counterfactual twin), each pair once."""
    test = view.items.with_row_index("_pos").filter(pl.col("split") == "test")
    twins = test.select("item_id", "twin_id", "_pos").filter(pl.col("item_id") < pl.col("twin_id"))
    pairs = twins.join(test.select(twin_id="item_id", _twin="_pos"), on="twin_id")
    return pairs["_pos"].to_numpy(), pairs["_twin"].to_numpy()


def zeroshot(view: TaskView, scored: pl.DataFrame, *, n_boot: int) -> tuple[dict, dict]:
    """Per scorer: accuracy, mismatched-image accuracy, Winoground scores on twin pairs.
    Returns the metrics and, per scorer, each item's correctness and scores."""
    scorers = [c.split(":")[0] for c in scored.columns if c.endswith(":caption")]
    te, groups, seed = view.splits[0]["test"], view.groups, view.seeds[0]
    metrics, correct = {}, {}
    first, twin = _twins(view)
    for s in scorers:
        cap, foil = scored[f"{s}:caption"].to_numpy(), scored[f"{s}:foil"].to_numpy()
        right = pairwise_correct(cap, foil)
        correct[s] = {"correct": right, "caption": cap, "foil": foil}
        entry = bootstrap_ci(right[te], groups[te], n_boot=n_boot, seed=seed)
        mm_cap = scored[f"{s}:mm_caption"].cast(pl.Float64).fill_null(np.nan).to_numpy()
        mm_foil = scored[f"{s}:mm_foil"].cast(pl.Float64).fill_null(np.nan).to_numpy()
        has = te[np.isfinite(mm_cap[te]) & np.isfinite(mm_foil[te])]
        mm = pairwise_correct(mm_cap[has], mm_foil[has])
        entry["mismatched"] = bootstrap_ci(mm, groups[has], n_boot=n_boot, seed=seed)
        if len(first):
            scores = winoground(cap[first], foil[first], foil[twin], cap[twin])
            entry["winoground"] = {
                name: bootstrap_ci(v, groups[first], n_boot=n_boot, seed=seed)
                for name, v in scores.items()
            }
        metrics[s] = entry
    return metrics, correct


def evaluate(
    view: TaskView,
    scored: pl.DataFrame,
    feats: dict[int, np.ndarray],
    *,
    mismatched: dict[int, np.ndarray] | None,
    image: np.ndarray | None,
    tower: np.ndarray | None,
    n_boot: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every metric of one model on one task; controls run where their inputs are given
    (the pretrained model), not for its random-init twin. Returns the metrics and per-item
    arrays: ``zeroshot`` (per scorer: correctness, caption and foil scores) and ``linear``
    (the best layer's seed-0 test predictions)."""
    controls = mismatched is not None
    metrics: dict[str, Any] = {"chance": view.chance, "linear": []}
    metrics["zeroshot"], per_scorer = zeroshot(view, scored, n_boot=n_boot)
    arrays: dict[str, Any] = {"zeroshot": per_scorer}
    fi = view.items["fi"].to_numpy()
    best = None
    for layer, array in sorted(feats.items()):
        summary, predictions = linear(array[fi], view, n_boot=n_boot, control=controls)
        if controls:
            mfi = (
                view.items["mfi"].fill_null(-1).to_numpy() if "mfi" in view.items.columns else None
            )
            summary["mismatched"] = _mismatched(mismatched[layer], mfi, view, n_boot)
        metrics["linear"].append({"layer": layer, **summary})
        if best is None or summary["val_acc"] > best[0] or not np.isfinite(best[0]):
            best = (summary["val_acc"], layer, predictions)
    if best is not None:
        metrics["best_layer"] = best[1]
        arrays["linear"] = best[2]
    if image is not None:
        metrics["image_only"], _ = linear(
            image[view.items["ki"].to_numpy()], view, n_boot=n_boot, control=False
        )
    if tower is not None:
        metrics["text_tower"], _ = text_only(tower, view, n_boot=n_boot)
    return metrics, arrays


def _mismatched(array: np.ndarray, mfi: np.ndarray | None, view: TaskView, n_boot: int) -> dict:
    """The mismatched-image linear probe: train and test on items whose image is another one
    of the same task and split (items without another image are left out)."""
    if mfi is None or not (mfi >= 0).any():
        return {"acc": float("nan"), "mean": float("nan"), "std": float("nan"), "n": 0}
    keep = np.flatnonzero(mfi >= 0)
    sub = dataclasses.replace(
        view,
        items=view.items[keep],
        y=view.y[keep],
        groups=view.groups[keep],
        splits=[
            {s: np.flatnonzero(np.isin(keep, i)) for s, i in idx.items()} for idx in view.splits
        ],
    )
    summary, _ = linear(array[mfi[keep]], sub, n_boot=n_boot, control=False)
    return summary


def attach_scores(items: pl.DataFrame, scores: pl.DataFrame) -> pl.DataFrame:
    """Each item's scores of (image, caption), (image, foil) and the mismatched image's."""
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
