"""The probing machinery with planted encoders: what it measures is what was planted."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import polars as pl
import pytest

from detforge.probes.adapters import Output
from detforge.probes.controls import control_labels, mismatched_keys
from detforge.probes.linear import fit_pairwise
from detforge.probes.probeset import ProbeSet
from detforge.probes.runner import run_probes
from detforge.probes.stats import bootstrap_ci, pairwise_correct
from detforge.probes.synthetic import CLASSES


def _seeded(*parts: str) -> np.random.Generator:
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))


class Planted:
    """Layer 0 encodes the true count of the first class named in the text (one-hot);
    layer 1 is noise. Zero-shot: 1 for the item's own caption on its own image, else 0."""

    kind, scorers, n_layers = "planted", ("lookup",), 2

    def __init__(self, counts: dict[tuple[int, int], int], captions: set[tuple[str, str]]):
        self.counts, self.captions, self.calls = counts, captions, 0
        self.pattern = re.compile(r"\b(" + "|".join(CLASSES) + r")(?:e?s)?\b")

    def forward(self, keys, images, texts, layers, pooling, features):
        self.calls += 1
        scores = np.array(
            [float((k, t) in self.captions) for k, t in zip(keys, texts, strict=True)]
        )
        out = Output({"lookup": scores}, {})
        if features:
            rows = []
            for k, t in zip(keys, texts, strict=True):
                image_id = int(k.split(":")[0])
                cls = CLASSES.index(self.pattern.search(t).group(1))
                rows.append(np.eye(5)[min(self.counts.get((image_id, cls), 0), 4)])
            out.features[0] = np.array(rows)
            out.features[1] = np.stack(
                [_seeded(k, t).normal(size=5) for k, t in zip(keys, texts, strict=True)]
            )
        return out

    def text_features(self, texts):
        return np.stack([_seeded("text", t).normal(size=8) for t in texts])


class Noise:
    """Random features and random scores: chance everywhere."""

    kind, scorers, n_layers = "noise", ("noise",), 2

    def forward(self, keys, images, texts, layers, pooling, features):
        rng = [_seeded(k, t) for k, t in zip(keys, texts, strict=True)]
        out = Output({"noise": np.array([r.normal() for r in rng])}, {})
        if features:
            for layer in layers:
                out.features[layer] = np.stack([r.normal(size=6) for r in rng])
        return out

    def text_features(self, texts):
        return np.stack([_seeded("t", t).normal(size=8) for t in texts])


@pytest.fixture(scope="module")
def planted_run(shapes, probes_dir, tmp_path_factory):
    dataset, _, _ = shapes
    probes = ProbeSet.read(probes_dir)
    counts = {
        (r["image_id"], r["label"]): r["n"]
        for r in dataset.objects.group_by("image_id", "label").agg(n=pl.len()).iter_rows(named=True)
    }
    keyed = probes.items.with_columns(
        key=pl.format("{}:{}", "image_id", pl.col("flip").cast(pl.Int8))
    )
    captions = set(zip(keyed["key"], keyed["caption"], strict=True))
    planted = Planted(counts, captions)

    def blind():  # a bag of words: what a text-only model can know
        vocab = sorted({w for t in probes.items["caption"] for w in t.lower().split()})
        return lambda texts: np.array(
            [[float(w in t.lower().split()) for w in vocab] for t in texts]
        )

    out = tmp_path_factory.mktemp("planted")
    results = run_probes(
        ["planted"],
        probes_dir,
        out / "run",
        n_boot=300,
        progress=False,
        device="cpu",
        factory=lambda m, r: Noise() if r else planted,
        counter=lambda m: 2,
        blind_encoder=blind,
    )
    return results, planted, probes, out


def _entry(results, init):
    return next(e for e in results["models"] if e["init"] == init)["tasks"]


def test_count_encoder_reads_counts_only(planted_run):
    results, _, _, _ = planted_run
    tasks = _entry(results, "pretrained")
    layer0 = {t: m["linear"][0] for t, m in tasks.items()}
    assert layer0["counting"]["acc"] >= 0.9 and layer0["existence"]["acc"] >= 0.9
    # counts say nothing of size or foils: no evidence above chance (with balanced classes
    # and few items a probe that learns nothing can land below chance, e.g. 0.43 [0.37, 0.49])
    assert layer0["size"]["lo"] <= 0.5 and layer0["foil"]["lo"] <= 0.5
    assert layer0["spatial"]["acc"] <= 0.6
    assert tasks["counting"]["linear"][1]["acc"] <= 0.5  # the noise layer
    assert tasks["counting"]["best_layer"] == 0


def test_random_encoder_is_at_chance(planted_run):
    """Pooled over every task and layer, the noise encoder scores chance: within 3.3
    standard errors of 0.5 (single 95% intervals over a dozen items each miss 0.5 by luck
    about once in twenty, so they are not asserted one by one)."""
    results, _, _, _ = planted_run
    rows = []
    for task, m in _entry(results, "random").items():
        rows.append(m["zeroshot"]["noise"])
        if task in ("existence", "size", "foil"):
            rows.extend(m["linear"])
    n = sum(row["n"] for row in rows)
    pooled = sum(row["acc"] * row["n"] for row in rows) / n
    assert abs(pooled - 0.5) <= 3.3 * (0.25 / n) ** 0.5, (pooled, n)


def test_selectivity_and_controls_as_defined(planted_run):
    results, planted, probes, _ = planted_run
    items = probes.items.with_columns(
        key=pl.format("{}:{}", "image_id", pl.col("flip").cast(pl.Int8))
    )
    items = items.with_columns(mismatched=mismatched_keys(items, seed=0))
    assert (items["mismatched"] != items["key"]).all()
    for task, m in _entry(results, "pretrained").items():
        for row in m["linear"]:
            assert row["selectivity"] == pytest.approx(row["acc"] - row["control_acc"])
        zs = m["zeroshot"]["lookup"]
        assert zs["acc"] == 1.0  # the caption is known on its own image
        test = items.filter((pl.col("task") == task) & (pl.col("split") == "test"))
        expected = pairwise_correct(
            [
                float((k, c) in planted.captions)
                for k, c in zip(test["mismatched"], test["caption"], strict=True)
            ],
            [
                float((k, f) in planted.captions)
                for k, f in zip(test["mismatched"], test["foil"], strict=True)
            ],
        ).mean()
        assert zs["mismatched"]["acc"] == pytest.approx(expected)
        assert zs["mismatched"]["acc"] < 0.8
    for task in ("existence", "counting", "spatial", "size"):
        # captions and foils are the same sentences in other roles: text alone cannot answer
        assert results["blind"][task]["zeroshot"]["acc"] <= 0.65, task
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    types = ["a", "b", "a", "c", "b", "a", "c", "d"]
    control = control_labels(types, labels, seed=1)
    for t in set(types):
        assert len({c for c, u in zip(control, types, strict=True) if u == t}) == 1
    assert set(control) <= set(labels)


def test_outputs_written(planted_run):
    results, _, probes, out = planted_run
    run = out / "run"
    assert results["version"] == 1 and results["probeset"]["content_hash"] == probes.content_hash
    report = (run / "report.md").read_text()
    for task in ("existence", "counting", "spatial", "size", "foil"):
        assert f"## {task}" in report and (run / f"layers_{task}.png").stat().st_size > 1000
    assert (run / "zeroshot.png").is_file()
    preds = pl.read_parquet(run / "predictions.parquet")
    assert preds.height == probes.items.height
    assert {
        "item_id",
        "image_id",
        "object_ids",
        "caption",
        "foil",
        "score_caption",
        "score_foil",
        "blind_score",
        "correct",
    } <= set(preds.columns)
    assert preds["correct"].all()


def test_rerun_uses_the_cache(planted_run, probes_dir):
    _, planted, _, out = planted_run
    calls = planted.calls

    def refuse(*_):
        raise AssertionError("a cached rerun must not run the model")

    again = run_probes(
        ["planted"],
        probes_dir,
        out / "run",
        n_boot=300,
        progress=False,
        device="cpu",
        factory=refuse,
        counter=lambda m: 2,
        blind_encoder=refuse,
    )
    assert planted.calls == calls
    assert _entry(again, "pretrained")["counting"]["linear"][0]["acc"] >= 0.9


def test_pairwise_blind_probe_learns_a_text_signal():
    rng = np.random.default_rng(0)
    signal = {s: rng.normal(size=(40, 4)) for s in ("train", "val", "test")}
    caption = {s: v + np.array([2.0, 0, 0, 0]) for s, v in signal.items()}
    foil = {s: rng.normal(size=(40, 4)) for s in signal}
    margin = fit_pairwise(caption, foil)
    assert (margin > 0).mean() >= 0.85
    same = fit_pairwise(foil, {s: rng.normal(size=(40, 4)) for s in signal})
    assert 0.25 <= (same > 0).mean() <= 0.75


def test_bootstrap_groups_images():
    correct = np.array([1, 1, 1, 1, 0, 0, 0, 0], dtype=float)
    together = bootstrap_ci(correct, np.array([0, 0, 0, 0, 1, 1, 1, 1]), n_boot=500)
    apart = bootstrap_ci(correct, np.arange(8), n_boot=500)
    assert together["acc"] == apart["acc"] == 0.5
    assert together["hi"] - together["lo"] > apart["hi"] - apart["lo"]
    perfect = bootstrap_ci(np.ones(5), np.arange(5))
    assert perfect["lo"] == perfect["hi"] == 1.0
