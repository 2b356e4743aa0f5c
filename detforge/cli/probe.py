"""`detforge probe`: multimodal probe suite on vision-language models."""

from __future__ import annotations

from pathlib import Path

import typer

from detforge.cli.app import app, console, hold_output

probe_app = typer.Typer(
    help="Generate probe sets from a dataset and run them on a VLM.", no_args_is_help=True
)
app.add_typer(probe_app, name="probe")


def _tasks(value: str | None) -> list[str] | None:
    return [t.strip() for t in value.split(",") if t.strip()] if value else None


@probe_app.command("generate")
def generate(
    data: Path = typer.Argument(..., help="Built dataset: OUT or OUT/tables."),
    out: Path = typer.Option(..., "--out", help="Probe-set directory to write."),
    seed: int = typer.Option(0, help="Seed of every sampling choice (same seed, same set)."),
    tasks: str = typer.Option(None, help="Comma list: existence,counting,spatial,size,foil."),
    max_images: int = typer.Option(5000, help="Images sampled from the dataset (0 = all)."),
    max_per_label: int = typer.Option(200, help="Items per label within one class (pair)."),
    margin: float = typer.Option(0.1, help="Spatial: minimum centre distance (normalised)."),
    size_ratio: float = typer.Option(1.5, help="Size: minimum box area ratio."),
) -> None:
    """Generate existence, counting, spatial, size and noun-foil probes from a built dataset."""
    from rich.table import Table

    from detforge.probes.generate import TASKS
    from detforge.probes.generate import generate as make
    from detforge.probes.probeset import read_dataset

    dataset = read_dataset(data)
    probes = make(
        dataset,
        seed=seed,
        tasks=_tasks(tasks) or TASKS,
        max_images=max_images or None,
        max_per_label=max_per_label,
        margin=margin,
        size_ratio=size_ratio,
        source_path=data,
    )
    probes.write(out)
    counts = probes.counts()
    table = Table(title=f"probe set {out} (content {probes.content_hash[:12]})")
    for column in counts.columns:
        table.add_column(column)
    for row in counts.iter_rows():
        table.add_row(*(str(v) for v in row))
    console.print(table)
    empty = [t for t in (_tasks(tasks) or TASKS) if t not in counts["task"].to_list()]
    if empty:
        console.print(f"no items for: {', '.join(empty)} (see docs/probe.md for what each needs)")


@probe_app.command("run")
def run(
    model: list[str] = typer.Option(..., "--model", help="Hub id or local dir; repeat to compare."),
    probes: Path = typer.Option(..., "--probes", help="Probe-set directory."),
    out: Path = typer.Option(..., "--out", help="Run directory to write."),
    device: str = typer.Option("auto", help="auto (cuda if available, else cpu), cpu, cuda:N."),
    batch_size: int = typer.Option(32, help="(image, text) pairs per forward pass."),
    layers: str = typer.Option("all", help="all, or a comma list of layer indices (e.g. 0,3,-1)."),
    pooling: str = typer.Option("cls", help="cls (first / last text token) or mean."),
    seed: int = typer.Option(0),
    tasks: str = typer.Option(None, help="Comma list of tasks (default: every non-empty task)."),
    cache_dir: Path = typer.Option(None, help="Feature cache (default RUN/cache)."),
    data: Path = typer.Option(None, help="Dataset the probes must share a taxonomy with."),
    bootstrap: int = typer.Option(1000, help="Bootstrap resamples for the CIs."),
) -> None:
    """Zero-shot and linear probes with controls; writes results.json, report.md, predictions."""
    from rich.table import Table

    from detforge.probes.runner import run_probes

    hold_output(out, "probe run")  # one writer per run folder
    results = run_probes(
        model,
        probes,
        out,
        device=device,
        batch_size=batch_size,
        layers=layers,
        pooling=pooling,
        seed=seed,
        tasks=_tasks(tasks),
        cache_dir=cache_dir,
        data=data,
        n_boot=bootstrap,
    )
    table = Table(title=f"probe run {out}")
    for column in ("task", "model", "init", "zero-shot", "linear (best layer)", "blind"):
        table.add_column(column)
    for entry in results["models"]:
        for task, m in entry["tasks"].items():
            zs = m["zeroshot"][next(iter(m["zeroshot"]))]
            best = next((r for r in m["linear"] if r["layer"] == m.get("best_layer")), None)
            table.add_row(
                task,
                entry["model"],
                entry["init"],
                f"{zs['acc']:.3f}",
                f"{best['acc']:.3f} (L{best['layer']})" if best else "-",
                f"{results['blind'][task]['zeroshot']['acc']:.3f}",
            )
    console.print(table)
    for reason in results.get("skipped", []):
        console.print(f"skipped: {reason}")
    console.print(f"report: {out / 'report.md'}")
