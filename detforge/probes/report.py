"""Probe-run outputs: results.json, predictions.parquet, report.md and its PNG plots."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import polars as pl

from detforge.atomic import atomic_path, write_text


def _clean(value: Any) -> Any:
    """JSON-safe copy: NaN → null, numpy scalars → Python."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _fmt(m: dict[str, Any] | None) -> str:
    if not m or m.get("acc") is None:
        return "–"
    return f"{m['acc']:.3f} [{m['lo']:.3f}, {m['hi']:.3f}]"


def write_outputs(results: dict[str, Any], predictions: pl.DataFrame, out: Path) -> None:
    """Write every output of a run under ``out`` (each file atomically)."""
    out.mkdir(parents=True, exist_ok=True)
    results = _clean(results)
    write_text(out / "results.json", json.dumps(results, indent=2, sort_keys=True) + "\n")
    with atomic_path(out / "predictions.parquet") as tmp:
        predictions.write_parquet(tmp, statistics=False)
    plots = _plots(results, out)
    write_text(out / "report.md", _markdown(results, plots))


def _best(task_metrics: dict[str, Any]) -> dict[str, Any] | None:
    return next(
        (r for r in task_metrics["linear"] if r["layer"] == task_metrics.get("best_layer")), None
    )


def _markdown(results: dict[str, Any], plots: dict[str, str]) -> str:
    lines = [
        "# Probe report",
        "",
        f"Probe set `{results['probeset']['path']}` (content hash "
        f"`{results['probeset']['content_hash'][:12]}`), pooling `{results['settings']['pooling']}`"
        f", layers `{results['settings']['layers']}`, seed {results['settings']['seed']}. "
        "Accuracies on the test split with 95 % bootstrap CIs over images; C and the best "
        "layer are chosen on the validation split. Zero-shot = caption scored above its foil "
        "(chance 0.5); *mismatched* = the same with another image; *blind* = all-MiniLM-L6-v2 "
        "on the text alone; *text tower* = the model's own text encoder alone; *control* = "
        "Hewitt & Liang control task, selectivity = accuracy − control accuracy.",
        "",
    ]
    if "zeroshot" in plots:
        lines += [f"![zero-shot accuracy]({plots['zeroshot']})", ""]
    for task in results["tasks"]:
        blind = results["blind"][task]
        lines += [
            f"## {task}",
            "",
            "| model | init | zero-shot | mismatched | linear (best layer) | control | selectivity "
            "| text tower linear | text tower pairwise |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for entry in results["models"]:
            m = entry["tasks"][task]
            scorer = next(iter(m["zeroshot"]))
            zs = m["zeroshot"][scorer]
            best = _best(m)
            tower = m.get("text_tower", {})
            lines.append(
                f"| {entry['model']} ({scorer}) | {entry['init']} | {_fmt(zs)} | "
                f"{_fmt(zs['mismatched'])} | "
                + (
                    f"{_fmt(best)} (L{best['layer']}) | {best['control_acc']:.3f} | "
                    f"{best['selectivity']:+.3f}"
                    if best
                    else "– | – | –"
                )
                + f" | {_fmt(tower.get('linear'))} | {_fmt(tower.get('zeroshot'))} |"
            )
        lines.append(
            f"| blind: all-MiniLM-L6-v2 | – | {_fmt(blind['zeroshot'])} | – | "
            f"{_fmt(blind['linear'])} | {blind['linear']['control_acc']:.3f} | "
            f"{blind['linear']['selectivity']:+.3f} | – | – |"
        )
        lines.append("")
        if task in plots:
            lines += [f"![{task} per layer]({plots[task]})", ""]
    if results.get("comparison"):
        lines += [
            "## Comparison",
            "",
            "| task | model | zero-shot | linear | selectivity |",
            "|---|---|---|---|---|",
        ]
        for row in results["comparison"]:
            linear = "–" if row["linear"] is None else f"{row['linear']:.3f}"
            sel = "–" if row["selectivity"] is None else f"{row['selectivity']:+.3f}"
            lines.append(
                f"| {row['task']} | {row['model']} | {row['zeroshot']:.3f} | {linear} | {sel} |"
            )
        lines.append("")
    return "\n".join(lines)


def _plots(results: dict[str, Any], out: Path) -> dict[str, str]:
    """Per-task layer curves (with control and blind baselines) and zero-shot bars with CIs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    plots: dict[str, str] = {}
    for task in results["tasks"]:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for entry in results["models"]:
            rows = entry["tasks"][task]["linear"]
            if not rows:
                continue
            xs = [r["layer"] for r in rows]
            style = "-" if entry["init"] == "pretrained" else "--"
            label = f"{Path(entry['model']).name} ({entry['init']})"
            line = ax.plot(xs, [r["acc"] for r in rows], style, marker="o", label=label)[0]
            ax.fill_between(
                xs,
                [r["lo"] for r in rows],
                [r["hi"] for r in rows],
                alpha=0.15,
                color=line.get_color(),
            )
            if entry["init"] == "pretrained":
                ax.plot(
                    xs,
                    [r["control_acc"] for r in rows],
                    ":",
                    color=line.get_color(),
                    label=f"{Path(entry['model']).name} control task",
                )
                tower = entry["tasks"][task].get("text_tower")
                if tower:
                    ax.axhline(
                        tower["linear"]["acc"],
                        ls="-.",
                        color=line.get_color(),
                        lw=1,
                        label=f"{Path(entry['model']).name} text tower",
                    )
        ax.axhline(
            results["blind"][task]["linear"]["acc"], color="grey", lw=1.5, label="blind (MiniLM)"
        )
        ax.axhline(
            1 / len(results["tasks"][task]["labels"]), color="black", lw=0.8, ls=":", label="chance"
        )
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(
            title=f"{task}: linear probe accuracy per layer",
            xlabel="layer",
            ylabel="test accuracy",
            ylim=(0, 1.02),
        )
        ax.legend(fontsize=6, loc="lower right")
        fig.tight_layout()
        name = f"layers_{task}.png"
        with atomic_path(out / name) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
        plt.close(fig)
        plots[task] = name
    bars = []
    for task in results["tasks"]:
        for entry in results["models"]:
            m = entry["tasks"][task]["zeroshot"]
            zs = m[next(iter(m))]
            tag = (
                f"{Path(entry['model']).name}{'' if entry['init'] == 'pretrained' else ' (random)'}"
            )
            bars.append((task, tag, zs))
            if entry["init"] == "pretrained":
                bars.append((task, f"{tag} mismatched", zs["mismatched"]))
        bars.append((task, "blind (MiniLM)", results["blind"][task]["zeroshot"]))
    series = list(dict.fromkeys(b[1] for b in bars))
    tasks = list(results["tasks"])
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(tasks)), 3.5))
    width = 0.8 / len(series)
    for j, name in enumerate(series):
        pts = [(tasks.index(t), m) for t, n, m in bars if n == name and m.get("acc") is not None]
        ax.bar(
            [i + j * width for i, _ in pts],
            [m["acc"] for _, m in pts],
            width,
            yerr=[[m["acc"] - m["lo"] for _, m in pts], [m["hi"] - m["acc"] for _, m in pts]],
            capsize=2,
            label=name,
        )
    ax.axhline(0.5, color="black", lw=0.8, ls=":")
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(tasks))], tasks)
    ax.set(ylabel="zero-shot pairwise accuracy", ylim=(0, 1.02), title="zero-shot (95 % CI)")
    ax.legend(fontsize=6)
    fig.tight_layout()
    with atomic_path(out / "zeroshot.png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    plots["zeroshot"] = "zeroshot.png"
    return plots
