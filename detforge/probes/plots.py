"""The PNG plots of a probe report: accuracy per layer per task, zero-shot bars."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from detforge.atomic import atomic_path


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")


def plots(results: dict[str, Any], out: Path) -> dict[str, str]:
    """``layers_<task>.png`` per task and ``zeroshot.png``; returns their names by task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = {task: _layers(plt, results, task, out) for task in results["tasks"]}
    names["zeroshot"] = _zeroshot(plt, results, out)
    return names


def _layers(plt, results: dict[str, Any], task: str, out: Path) -> str:
    """Linear accuracy per layer (seed mean, seed-0 CI band; random init dashed), the control
    task dotted, image-only and text-tower lines, the blind encoder and chance."""
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for entry in results["models"]:
        rows = entry["tasks"][task]["linear"]
        if not rows:
            continue
        xs = [r["layer"] for r in rows]
        name = Path(entry["model"]).name
        style = "-" if entry["init"] == "pretrained" else "--"
        line = ax.plot(
            xs, [r["mean"] for r in rows], style, marker="o", label=f"{name} ({entry['init']})"
        )[0]
        colour = line.get_color()
        ax.fill_between(
            xs, [r["lo"] for r in rows], [r["hi"] for r in rows], alpha=0.15, color=colour
        )
        if entry["init"] != "pretrained":
            continue
        control = [(r.get("control") or {}).get("mean") for r in rows]
        ax.plot(xs, control, ":", color=colour, label=f"{name} control task")
        m = entry["tasks"][task]
        if m.get("image_only"):
            ax.axhline(
                m["image_only"]["mean"], ls=(0, (1, 3)), color=colour, lw=1, label=f"{name} image"
            )
        if m.get("text_tower"):
            ax.axhline(
                m["text_tower"]["linear"]["mean"], ls="-.", color=colour, lw=1, label=f"{name} text"
            )
    ax.axhline(results["blind"][task]["linear"]["mean"], color="grey", lw=1.5, label="blind")
    ax.axhline(results["tasks"][task]["chance"], color="black", lw=0.8, ls=":", label="chance")
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
    _save(fig, out / name)
    plt.close(fig)
    return name


def _zeroshot(plt, results: dict[str, Any], out: Path) -> str:
    """Zero-shot accuracy per task and model (default scorer), mismatched and blind, with CIs."""
    bars = []
    for task in results["tasks"]:
        for entry in results["models"]:
            m = entry["tasks"][task]["zeroshot"]
            if not m:
                continue
            zs = m[next(iter(m))]
            tag = Path(entry["model"]).name + ("" if entry["init"] == "pretrained" else " (random)")
            bars.append((task, tag, zs))
            if entry["init"] == "pretrained":
                bars.append((task, f"{tag} mismatched", zs["mismatched"]))
        bars.append((task, "blind (MiniLM)", results["blind"][task]["zeroshot"]))
    series = list(dict.fromkeys(b[1] for b in bars))
    tasks = list(results["tasks"])
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(tasks)), 3.5))
    width = 0.8 / max(len(series), 1)
    for j, label in enumerate(series):
        pts = [(tasks.index(t), m) for t, n, m in bars if n == label and m.get("acc") is not None]
        ax.bar(
            [i + j * width for i, _ in pts],
            [m["acc"] for _, m in pts],
            width,
            yerr=[[m["acc"] - m["lo"] for _, m in pts], [m["hi"] - m["acc"] for _, m in pts]],
            capsize=2,
            label=label,
        )
    ax.axhline(0.5, color="black", lw=0.8, ls=":")
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(tasks))], tasks)
    ax.set(ylabel="zero-shot pairwise accuracy", ylim=(0, 1.02), title="zero-shot (95 % CI)")
    ax.legend(fontsize=6)
    fig.tight_layout()
    _save(fig, out / "zeroshot.png")
    plt.close(fig)
    return "zeroshot.png"
