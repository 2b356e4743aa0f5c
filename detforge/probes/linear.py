"""Linear probes: logistic regression on frozen features, C chosen on the validation split."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

CS = (0.01, 0.1, 1.0, 10.0)


@functools.lru_cache(maxsize=1)
def _threads():
    """One scan of the loaded BLAS libraries (scanning per fit costs more than the fit)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _fit(x: np.ndarray, y: np.ndarray, **options):
    """One scikit-learn logistic regression, on a single BLAS thread: these problems are small,
    and multi-threaded BLAS on a busy machine is an order of magnitude slower here."""
    from sklearn.linear_model import LogisticRegression

    with _threads().limit(limits=1):
        return LogisticRegression(**options).fit(x, y)


@dataclasses.dataclass
class ProbeFit:
    """Test predictions of the probe whose C scored best on validation."""

    predictions: np.ndarray
    C: float
    val_acc: float


def fit_probe(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    x_test: np.ndarray,
    *,
    cs: tuple[float, ...] = CS,
    seed: int = 0,
) -> ProbeFit:
    """Standardise, fit one logistic regression per C on train, keep the best on val (with a
    single C, no validation is needed: ``x_val``/``y_val`` may be empty).

    The test split is only predicted, never looked at: hyper-parameters come from val.
    """
    from sklearn.preprocessing import StandardScaler

    if np.unique(y_train).size < 2:  # one label only: the probe can only answer it
        label = y_train[0] if len(y_train) else 0
        val_acc = float(np.mean(y_val == label)) if len(y_val) else float("nan")
        return ProbeFit(np.full(len(x_test), label), float("nan"), val_acc)
    scaler = StandardScaler().fit(x_train)

    def scaled(x: np.ndarray) -> np.ndarray:
        return scaler.transform(x) if len(x) else x

    xt, xv, xs = scaled(x_train), scaled(x_val), scaled(x_test)
    if not len(y_val):  # nothing to choose C on: scikit-learn's default
        cs = (1.0,)
    best: tuple[float, float, object] | None = None
    for c in cs:
        model = _fit(xt, y_train, C=c, max_iter=500, random_state=seed)
        acc = float((model.predict(xv) == y_val).mean()) if len(y_val) else float("nan")
        if best is None or acc > best[0]:
            best = (acc, c, model)
    acc, c, model = best
    predictions = model.predict(xs) if len(xs) else np.zeros(0, dtype=y_train.dtype)
    return ProbeFit(predictions, c, acc)


def fit_pairwise(
    caption: dict[str, np.ndarray],
    foil: dict[str, np.ndarray],
    *,
    cs: tuple[float, ...] = CS,
    seed: int = 0,
) -> np.ndarray:
    """A learned caption-vs-foil scorer from embeddings alone (the blind zero-shot baseline).

    Trained on train pairs (difference vectors, both orders), C chosen on val pairwise
    accuracy; returns the test margins w·(caption − foil) (> 0 = caption preferred).
    """
    diff = {s: caption[s] - foil[s] for s in caption}
    x = np.concatenate([diff["train"], -diff["train"]])
    y = np.concatenate([np.ones(len(diff["train"])), np.zeros(len(diff["train"]))])
    best: tuple[float, object] | None = None
    for c in cs:
        model = _fit(x, y, C=c, fit_intercept=False, max_iter=500, random_state=seed)
        acc = float((diff["val"] @ model.coef_[0] > 0).mean()) if len(diff["val"]) else 0.0
        if best is None or acc > best[0]:
            best = (acc, model)
    return diff["test"] @ best[1].coef_[0]
