"""Bootstrap confidence intervals over images (items of one image move together), paired
comparisons, Winoground scores and chance rates."""

from __future__ import annotations

import numpy as np


def bootstrap_ci(
    correct: np.ndarray,
    groups: np.ndarray,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, float]:
    """Accuracy of ``correct`` (0..1 per item) and its percentile CI, resampling ``groups``.

    Images are resampled with replacement (multinomial weights); an item's weight is its
    image's multiplicity, so correlated items of one image never count as independent.
    """
    correct = np.asarray(correct, dtype=np.float64)
    if correct.size == 0:
        return {"acc": float("nan"), "lo": float("nan"), "hi": float("nan"), "n": 0, "images": 0}
    _, index = np.unique(np.asarray(groups), return_inverse=True)
    n_groups = int(index.max()) + 1
    sums = np.bincount(index, weights=correct, minlength=n_groups)
    sizes = np.bincount(index, minlength=n_groups).astype(np.float64)
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=n_boot)
    boot = (weights @ sums) / np.maximum(weights @ sizes, 1e-12)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(boot, [tail, 100 - tail])
    return {
        "acc": float(correct.mean()),
        "lo": float(lo),
        "hi": float(hi),
        "n": int(correct.size),
        "images": n_groups,
    }


def pairwise_correct(caption: np.ndarray, foil: np.ndarray) -> np.ndarray:
    """1 where the caption outscores its foil, 0.5 on a tie, else 0."""
    caption, foil = np.asarray(caption, np.float64), np.asarray(foil, np.float64)
    return (caption > foil).astype(np.float64) + 0.5 * (caption == foil)


def paired_bootstrap(
    a: np.ndarray,
    b: np.ndarray,
    groups: np.ndarray,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, float]:
    """Mean of ``b − a`` (per-item scores of two models on the same items) and its percentile
    CI, resampling ``groups`` once for both models (a paired bootstrap)."""
    diff = np.asarray(b, np.float64) - np.asarray(a, np.float64)
    if diff.size == 0:
        return {"diff": float("nan"), "lo": float("nan"), "hi": float("nan"), "n": 0}
    out = bootstrap_ci(diff, groups, n_boot=n_boot, seed=seed, level=level)
    return {"diff": out["acc"], "lo": out["lo"], "hi": out["hi"], "n": out["n"]}


def winoground(x00, x01, x10, x11) -> dict[str, np.ndarray]:
    """Winoground's text, image and group scores per twin pair (Thrush et al. 2022).

    ``xij`` = score of image i with caption j, caption 0 true of image 0 and caption 1 of
    image 1. Text: each image prefers its caption; image: each caption prefers its image;
    group: both. Chance: 1/4, 1/4, 1/6.
    """
    x00, x01, x10, x11 = (np.asarray(v, np.float64) for v in (x00, x01, x10, x11))
    text = (x00 > x01) & (x11 > x10)
    image = (x00 > x10) & (x11 > x01)
    return {
        "text": text.astype(float),
        "image": image.astype(float),
        "group": (text & image).astype(float),
    }


def majority_rate(labels: np.ndarray) -> float:
    """The share of the most frequent label (the accuracy of always answering it)."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return float("nan")
    return float(np.unique(labels, return_counts=True)[1].max() / labels.size)
