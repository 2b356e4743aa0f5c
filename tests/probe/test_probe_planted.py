"""The probing machinery with planted encoders: what it measures is what was planted.

Three encoders go through `run_probes` in one run (as three --model): one whose features
and scores know each item's true answer (a real signal), one that only sees the text, one
that only sees the image's source. The text-only and source-only encoders must score chance
on every task, the real signal high with high selectivity. A fourth, which only identifies
the image (a memoriser), must win the control task only.
"""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl
import pytest

from detforge.probes.adapters import ModelInfo, Output
from detforge.probes.controls import control_labels, control_split, mismatched_keys, resplit
from detforge.probes.linear import fit_pairwise
from detforge.probes.metrics import linear, task_view
from detforge.probes.probeset import ProbeSet
from detforge.probes.runner import run_probes
from detforge.probes.stats import bootstrap_ci
from detforge.probes.tasks import names, registry

MODELS = ("real", "text", "source")


def _seeded(*parts: object) -> np.random.Generator:
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))


class Planted:
    """An adapter whose features and scores come from ``embed(key, text)`` (one vector per
    pair), ``score(key, text)``, ``image(key)`` and ``text(text)``."""

    scorers = ("planted",)

    def __init__(self, kind, embed, score, image, text, n_layers=2):
        self.kind, self.n_layers = kind, n_layers
        self._embed, self._score, self._image, self._text = embed, score, image, text
        self.calls = 0

    def forward(self, keys, images, texts, layers, features):
        self.calls += 1
        pairs = list(zip(keys, texts, strict=True))
        out = Output({"planted": np.array([self._score(k, t) for k, t in pairs])}, {})
        for layer in layers if features else ():
            out.features[layer] = np.stack([self._embed(k, t, layer) for k, t in pairs])
        return out

    def image_features(self, images):
        return np.stack([self._image(k) for k in images])

    def text_features(self, texts):
        return np.stack([self._text(t) for t in texts])


def _encoders(probes: ProbeSet) -> dict[str, Planted]:
    items = probes.items.with_columns(
        key=pl.format("{}:{}", "image_id", pl.col("flip").cast(pl.Int8))
    )
    # one (image, text) pair can be an item of several tasks ("the dog and the cat" asks both
    # left/right and size): the real signal holds every task's answer, one block per task
    tasks = names()
    widths = [len(registry()[t].labels) for t in tasks]
    offsets = dict(zip(tasks, np.cumsum([0, *widths[:-1]]), strict=True))
    truth: dict[tuple[str, str], np.ndarray] = {}
    for k, t, task, y in zip(
        items["key"], items["text"], items["task"], items["label"], strict=True
    ):
        truth.setdefault((k, t), np.zeros(sum(widths)))[offsets[task] + y] = 1.0
    true = set(zip(items["key"], items["caption"], strict=True))
    sources = sorted(set(items["source"]))
    source_of = {str(i): s for i, s in zip(items["image_id"], items["source"], strict=True)}

    def source_vec(key):
        return np.eye(len(sources))[sources.index(source_of[key.split(":")[0]])]

    def real(key, text, layer):
        noise = _seeded(key, text, layer).normal(size=sum(widths))
        if layer == 0 and (key, text) in truth:  # layer 0 knows the answer, layer 1 is noise
            return truth[(key, text)] + 0.1 * noise
        return noise

    def text_vec(text):
        return _seeded("text", text).normal(size=8)

    return {
        "real": Planted(
            "real",
            real,
            lambda k, t: float((k, t) in true),
            lambda k: _seeded("image", k).normal(size=4),
            text_vec,
        ),
        "text": Planted(
            "text",
            lambda k, t, layer: text_vec(t),
            lambda k, t: float(text_vec(t)[0]),
            lambda k: np.zeros(4),
            text_vec,
        ),
        "source": Planted(
            "source",
            lambda k, t, layer: source_vec(k),
            lambda k, t: float(_seeded(source_of[k.split(":")[0]], t).normal()),
            source_vec,
            lambda t: np.zeros(4),
        ),
    }


class Noise:
    """The random-init twin of every planted encoder: noise features, noise scores."""

    kind, scorers, n_layers = "noise", ("noise",), 2

    def forward(self, keys, images, texts, layers, features):
        rng = [_seeded(k, t) for k, t in zip(keys, texts, strict=True)]
        out = Output({"noise": np.array([r.normal() for r in rng])}, {})
        for layer in layers if features else ():
            out.features[layer] = np.stack([r.normal(size=4) for r in rng])
        return out


@pytest.fixture(scope="module")
def planted_run(planted_probes, tmp_path_factory):
    probes = ProbeSet.read(planted_probes)
    encoders = _encoders(probes)

    def blind():  # a bag of words: what a text-only model can know
        vocab = sorted({w for t in probes.items["caption"] for w in t.lower().split()})
        return lambda texts: np.array(
            [[float(w in t.lower().split()) for w in vocab] for t in texts]
        )

    out = tmp_path_factory.mktemp("planted") / "run"
    results = run_probes(
        list(MODELS),
        planted_probes,
        out,
        n_boot=200,
        progress=False,
        device="cpu",
        factory=lambda m, r: Noise() if r else encoders[m],
        describe=lambda m: ModelInfo("planted", 2, ("cls",)),
        blind_encoder=blind,
        image_loader=lambda key: key,  # planted encoders read the key, not pixels
    )
    return results, encoders, probes, out


def _tasks(results, model, init="pretrained"):
    return next(e for e in results["models"] if e["model"] == model and e["init"] == init)["tasks"]


def _best(m):
    return next(r for r in m["linear"] if r["layer"] == m["best_layer"])


def test_every_task_is_planted(planted_run):
    results, _, probes, _ = planted_run
    assert set(results["tasks"]) == set(names()) == set(probes.items["task"])


@pytest.mark.parametrize("model", ["text", "source"])
def test_text_only_and_source_only_encoders_score_chance_everywhere(planted_run, model):
    results, _, _, _ = planted_run
    for task, m in _tasks(results, model).items():
        chance = results["tasks"][task]["chance"]
        for row in m["linear"]:  # every layer, every seed, its CI
            assert row["mean"] <= chance + 0.05, (task, row)
            assert row["lo"] <= chance + 1e-9, (task, row)
        zs = m["zeroshot"]["planted"]
        assert abs(zs["acc"] - 0.5) <= 0.05, (task, zs)
        assert m["image_only"]["mean"] <= chance + 0.05, task
        assert m["text_tower"]["linear"]["mean"] <= chance + 0.05, task


def test_real_signal_scores_high_with_high_selectivity(planted_run):
    results, encoders, _, _ = planted_run
    for task, m in _tasks(results, "real").items():
        chance = results["tasks"][task]["chance"]
        layer0, layer1 = m["linear"]
        assert m["best_layer"] == 0, task
        assert layer0["mean"] >= 0.9 and layer0["lo"] >= 0.85, (task, layer0)
        assert layer0["selectivity"] >= 0.3, (task, layer0)  # the control cannot be memorised
        assert layer0["control"]["mean"] <= layer0["control"]["chance"] + 0.15, (task, layer0)
        # the mismatched-image probe sees another image's pair: nothing above chance to read
        assert layer0["mismatched"]["lo"] <= chance, (task, layer0["mismatched"])
        zs = m["zeroshot"]["planted"]
        assert zs["acc"] == 1.0 and zs["mismatched"]["acc"] < 0.8, (task, zs)
        assert len(layer0["seeds"]) == 3 and layer0["std"] <= 0.05
    noise = [m["linear"][1] for m in _tasks(results, "real").values()]  # layer 1 is noise
    chances = [results["tasks"][t]["chance"] for t in _tasks(results, "real")]
    _assert_pooled_chance([r["acc"] for r in noise], [r["n"] for r in noise], chances)
    wino = _tasks(results, "real")["left_right"]["zeroshot"]["planted"]["winoground"]
    assert (
        wino["text"]["acc"] == 1.0 and wino["image"]["acc"] == 1.0 and wino["group"]["acc"] == 1.0
    )
    assert encoders["real"].calls > 0


def test_memoriser_wins_the_control_task_only(planted_probes):
    """Features that identify the image and nothing else: chance on the task (test images are
    never trained on), near 1 on the control task (memorising images is all it needs)."""
    probes = ProbeSet.read(planted_probes)
    items = probes.items.filter(pl.col("task") == "existence")
    texts = sorted(set(items["text"]) | set(items["caption"]) | set(items["foil"]))
    view = task_view(items, "existence", {t: i for i, t in enumerate(texts)}, [0, 1, 2])
    codes = {g: i for i, g in enumerate(sorted(set(view.groups)))}
    identity = np.eye(len(codes))[[codes[g] for g in view.groups]]
    summary, _ = linear(identity, view, n_boot=100, control=True)
    assert summary["mean"] <= view.chance + 0.1, summary
    assert summary["control"]["mean"] >= 0.9 and summary["selectivity"] <= -0.3, summary
    real = np.eye(2)[view.y] + 0.1 * np.random.default_rng(0).normal(size=(len(view.y), 2))
    signal, _ = linear(real, view, n_boot=100, control=True)
    assert signal["mean"] >= 0.95 and signal["selectivity"] >= 0.3, signal


def test_random_twins_are_at_chance(planted_run):
    """Pooled over models, tasks and layers, the noise twins score chance (within 3.3 standard
    errors)."""
    results, _, _, _ = planted_run
    accs, ns, chances = [], [], []
    for model in MODELS:
        for task, m in _tasks(results, model, "random").items():
            for row in m["linear"]:
                accs.append(row["acc"])
                ns.append(row["n"])
                chances.append(results["tasks"][task]["chance"])
    _assert_pooled_chance(accs, ns, chances)


def _assert_pooled_chance(accs, ns, chances):
    """Accuracies pooled over probes lie within 3.3 standard errors of their pooled chance
    (single small-sample intervals miss chance by luck about once in twenty)."""
    n = sum(ns)
    pooled = sum(a * k for a, k in zip(accs, ns, strict=True)) / n
    chance = sum(c * k for c, k in zip(chances, ns, strict=True)) / n
    assert abs(pooled - chance) <= 3.3 * (0.25 / n) ** 0.5, (pooled, chance, n)


def test_comparison_is_paired(planted_run):
    results, _, _, _ = planted_run
    rows = {(r["task"], r["model"]): r for r in results["comparison"]}
    assert {r["base"] for r in rows.values()} == {"real"}
    for task in results["tasks"]:
        text = rows[(task, "text")]
        assert text["zeroshot"]["diff"] < -0.3 and text["zeroshot"]["hi"] <= 0, (task, text)
        assert text["linear"]["diff"] < -0.3 and text["linear"]["hi"] <= 0, (task, text)


def test_outputs_written(planted_run):
    results, _, probes, out = planted_run
    assert results["version"] == 2 and results["probeset"]["content_hash"] == probes.content_hash
    report = (out / "report.md").read_text()
    for task in results["tasks"]:
        assert f"## {task}" in report and (out / f"layers_{task}.png").stat().st_size > 1000
    assert "Winoground" in report and "## Paired comparison" in report
    assert (out / "zeroshot.png").is_file()
    preds = pl.read_parquet(out / "predictions.parquet")
    assert preds.height == probes.items.height * len(MODELS)
    real = preds.filter(pl.col("model") == "real")
    assert real["correct"].all() and real["scorer"].unique().to_list() == ["planted"]
    test = real.filter(pl.col("split") == "test")
    assert test["linear_correct"].mean() >= 0.95 and test["blind_score"].null_count() == 0


def test_rerun_uses_the_cache(planted_run, planted_probes):
    _, encoders, _, out = planted_run
    calls = encoders["real"].calls

    def refuse(*_):
        raise AssertionError("a cached rerun must not run the model")

    again = run_probes(
        ["real"],
        planted_probes,
        out,
        n_boot=100,
        progress=False,
        device="cpu",
        factory=refuse,
        describe=lambda m: ModelInfo("planted", 2, ("cls",)),
        blind_encoder=refuse,
        image_loader=lambda key: key,
    )
    assert encoders["real"].calls == calls
    assert _best(_tasks(again, "real")["counting"])["mean"] >= 0.95


def test_control_task_and_splits_as_defined(planted_probes):
    items = ProbeSet.read(planted_probes).items
    items = items.with_columns(key=pl.format("{}:{}", "image_id", pl.col("flip").cast(pl.Int8)))
    mm = items.with_columns(mismatched=mismatched_keys(items, seed=0))
    own = mm.with_columns(other=pl.col("mismatched").str.split(":").list.get(0).cast(pl.Int64))
    groups = own.join(
        items.select(other="image_id", other_group="image_group").unique(), on="other"
    )
    assert groups.height == items.height
    assert (groups["other_group"] != groups["image_group"]).all()  # never itself nor its mirror
    assert (groups.select(pl.col("split")).to_series() == groups["split"]).all()
    groups_arr = items["image_group"].to_numpy()
    labels = control_labels(groups_arr, items["label"].to_numpy(), seed=1)
    per_group = (
        pl.DataFrame({"g": groups_arr, "c": labels}).group_by("g").agg(pl.col("c").n_unique())
    )
    assert (per_group["c"] == 1).all()  # one random label per image
    held = control_split(groups_arr, items["item_id"].to_numpy(), seed=1)
    sizes = (
        pl.DataFrame({"g": groups_arr, "h": held}).group_by("g").agg(pl.len(), pl.col("h").sum())
    )
    assert (sizes["h"] == (sizes["len"] >= 2).cast(pl.UInt32)).all()  # one test item per image
    split = items["split"].to_numpy()
    for index in range(3):
        parts = resplit(split, groups_arr, seed=0, index=index)
        assert np.array_equal(parts["test"], np.flatnonzero(split == "test"))
        train_groups, val_groups = set(groups_arr[parts["train"]]), set(groups_arr[parts["val"]])
        assert not train_groups & val_groups and parts["val"].size > 0
    assert not np.array_equal(
        resplit(split, groups_arr, 0, 1)["val"], resplit(split, groups_arr, 0, 2)["val"]
    )


def test_pairwise_blind_probe_learns_a_text_signal():
    rng = np.random.default_rng(0)
    signal = {s: rng.normal(size=(40, 4)) for s in ("train", "val", "test")}
    caption = {s: v + np.array([2.0, 0, 0, 0]) for s, v in signal.items()}
    foil = {s: rng.normal(size=(40, 4)) for s in signal}
    assert (fit_pairwise(caption, foil) > 0).mean() >= 0.85
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
