"""Probe-run outputs: results.json, predictions.parquet, report.md and its PNG plots."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import polars as pl

from detforge.atomic import atomic_path, write_text


def clean(value: Any) -> Any:
    """JSON-safe copy: NaN → null, numpy scalars and arrays → Python."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if hasattr(value, "tolist"):
        value = value.tolist()
        if isinstance(value, list):
            return clean(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_outputs(results: dict[str, Any], predictions: pl.DataFrame, out: Path) -> None:
    """Write every output of a run under ``out`` (each file atomically)."""
    from detforge.probes.plots import plots

    out.mkdir(parents=True, exist_ok=True)
    results = clean(results)
    write_text(out / "results.json", json.dumps(results, indent=2, sort_keys=True) + "\n")
    with atomic_path(out / "predictions.parquet") as tmp:
        predictions.write_parquet(tmp, statistics=False)
    write_text(out / "report.md", markdown(results, plots(results, out)))


def fmt(m: dict[str, Any] | None) -> str:
    """``0.812 [0.70, 0.90]`` (accuracy and CI) or ``–``."""
    if not m or m.get("acc") is None:
        return "–"
    return f"{m['acc']:.3f} [{m['lo']:.2f}, {m['hi']:.2f}]"


def fmt_seeds(m: dict[str, Any] | None) -> str:
    """``0.812 ± 0.021`` (mean ± std over probe seeds) or ``–``."""
    if not m or m.get("mean") is None:
        return "–"
    return f"{m['mean']:.3f} ± {m['std']:.3f}"


def _diff(m: dict[str, Any] | None) -> str:
    if not m or m.get("diff") is None:
        return "–"
    return f"{m['diff']:+.3f} [{m['lo']:+.2f}, {m['hi']:+.2f}]"


def best_row(task_metrics: dict[str, Any]) -> dict[str, Any] | None:
    """The linear-probe row of the layer chosen on validation."""
    return next(
        (r for r in task_metrics["linear"] if r["layer"] == task_metrics.get("best_layer")), None
    )


INTRO = (
    "Accuracies on the test split. Zero-shot: the caption scored above its foil (ties ½; "
    "chance 0.5), with its 95 % bootstrap CI over duplicate groups; *mismatched*: the same "
    "with another image of the task and split. Linear probes: logistic regression per layer, "
    "C and the best layer chosen on validation; *mean ± std* over the probe seeds (the "
    "train/val split redrawn; test fixed) and seed 0's CI; chance = the majority-label rate "
    "of the test split. *Control*: the control task (a random label per image; only "
    "memorising images answers it), selectivity = accuracy − control accuracy. "
    "*Mismatched linear*: the probe trained and tested on features of another image. "
    "*Image only* / *text tower*: probes on the model's image or text embedding alone; "
    "*blind*: all-MiniLM-L6-v2 on the text alone."
)


def markdown(results: dict[str, Any], plots: dict[str, str]) -> str:
    settings = results["settings"]
    lines = [
        "# Probe report",
        "",
        f"Probe set `{results['probeset']['path']}` (content hash "
        f"`{results['probeset']['content_hash'][:12]}`), layers `{settings['layers']}`, pooling "
        f"`{settings['pooling']}`, probe seeds {settings['probe_seeds']}.",
        "",
        INTRO,
        "",
        *(f"**Warning**: {warning}.\n" for warning in results.get("warnings", [])),
    ]
    if "zeroshot" in plots:
        lines += [f"![zero-shot accuracy]({plots['zeroshot']})", ""]
    for task, spec in results["tasks"].items():
        lines += _task_section(results, task, spec)
        if task in plots:
            lines += [f"![{task} per layer]({plots[task]})", ""]
    if results.get("comparison"):
        lines += [
            "## Paired comparison",
            "",
            "Each model minus the first, on the same test items (paired bootstrap CI).",
            "",
            "| task | model | vs | zero-shot Δ | linear Δ (best layer, seed 0) |",
            "|---|---|---|---|---|",
        ]
        for row in results["comparison"]:
            lines.append(
                f"| {row['task']} | {row['model']} | {row['base']} | "
                f"{_diff(row.get('zeroshot'))} | {_diff(row.get('linear'))} |"
            )
        lines.append("")
    for reason in results.get("skipped", []):
        lines.append(f"- skipped: {reason}")
    return "\n".join(lines) + "\n"


def _task_section(results: dict[str, Any], task: str, spec: dict[str, Any]) -> list[str]:
    counts = ", ".join(f"{s} {n}" for s, n in spec["items"].items())
    lines = [
        f"## {task}",
        "",
        f"Items: {counts}. Linear chance (majority label of test): {spec['chance']:.3f}.",
        "",
        "| model | init | zero-shot | mismatched | linear (best layer) | seeds | control "
        "| selectivity | mismatched linear | image only | text tower | text tower pairwise |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    wino = []
    for entry in results["models"]:
        m = entry["tasks"][task]
        scorer = next(iter(m["zeroshot"]), None)
        zs = m["zeroshot"].get(scorer, {})
        best = best_row(m) or {}
        tower = m.get("text_tower", {})
        control = best.get("control", {})
        selectivity = best.get("selectivity")
        lines.append(
            f"| {entry['model']} ({scorer or 'no zero-shot head'}) | {entry['init']} | {fmt(zs)} | "
            f"{fmt(zs.get('mismatched'))} | {fmt(best)} (L{best.get('layer', '–')}) | "
            f"{fmt_seeds(best)} | {fmt_seeds(control)} | "
            f"{'–' if selectivity is None else f'{selectivity:+.3f}'} | "
            f"{fmt_seeds(best.get('mismatched'))} | {fmt_seeds(m.get('image_only'))} | "
            f"{fmt_seeds(tower.get('linear'))} | {fmt(tower.get('zeroshot'))} |"
        )
        if zs.get("winoground"):
            w = zs["winoground"]
            wino.append(
                f"| {entry['model']} ({scorer}) | {entry['init']} | {fmt(w['text'])} | "
                f"{fmt(w['image'])} | {fmt(w['group'])} |"
            )
    blind = results["blind"][task]
    lines += [
        f"| blind: all-MiniLM-L6-v2 | – | {fmt(blind['zeroshot'])} | – | {fmt(blind['linear'])} | "
        f"{fmt_seeds(blind['linear'])} | – | – | – | – | – | – |",
        "",
    ]
    if wino:
        lines += [
            "Winoground scores on the left/right mirror twins (chance: text ¼, image ¼, group ⅙):",
            "",
            "| model | init | text | image | group |",
            "|---|---|---|---|---|",
            *wino,
            "",
        ]
    return lines
