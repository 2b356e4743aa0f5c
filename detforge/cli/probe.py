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
    tasks: str = typer.Option(
        None,
        help="Comma list of tasks (default: all: existence, counting, left_right, above_below, "
        "size, foil).",
    ),
    max_images: int = typer.Option(5000, help="Images sampled from the dataset (0 = all)."),
    max_per_label: int = typer.Option(
        200, help="Items per label within one balance key (class or class pair, source, split)."
    ),
    max_items: int = typer.Option(
        5000, help="Items per task, as whole balanced keys (0 = all): ~1000 test items."
    ),
    margin: float = typer.Option(0.1, help="Spatial: minimum centre distance (normalised)."),
    size_ratio: float = typer.Option(1.5, help="Size: minimum box area ratio."),
) -> None:
    """Generate probe items from a built dataset, and score the rules that ignore the image.

    Prints the items per task and split and what text-only and source-only rules score on
    the set (stored in probeset.json and the card); a task a rule answers better than chance
    by more than 0.1 is reported loudly.
    """
    from rich.table import Table

    from detforge.probes import shortcuts
    from detforge.probes.generate import generate as make
    from detforge.probes.probeset import read_dataset

    dataset = read_dataset(data)
    probes = make(
        dataset,
        seed=seed,
        tasks=_tasks(tasks),
        max_images=max_images or None,
        max_per_label=max_per_label,
        max_items=max_items or None,
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
    rules = Table(title="rules that never look at the image (pair chance 0.5)")
    for column in ("task", "rule", "on", "n", "score", "chance"):
        rules.add_column(column)
    for task, entry in probes.meta["shortcuts"].items():
        for row in entry["rules"]:
            score = "-" if row["score"] is None else f"{row['score']:.3f}"
            style = "bold red" if row.get("flag") else None
            chance = "-" if row["chance"] is None else f"{row['chance']:.3f}"
            cells = (task, row["rule"], row["on"], str(row["n"]), score, chance)
            rules.add_row(*cells, style=style)
    console.print(rules)
    for line in shortcuts.warnings(probes.meta["shortcuts"]):
        console.print(f"[bold red]WARNING[/] {line}")
    empty = [t for t in probes.meta["tasks"] if t not in counts["task"].to_list()]
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
    pooling: str = typer.Option(
        "auto",
        help="auto (the architecture's own: CLS token, SigLIP's attention head, a decoder's "
        "last token), cls, head, last or mean.",
    ),
    seed: int = typer.Option(0, help="Seed of the mismatched pairs, control labels, bootstrap."),
    probe_seeds: int = typer.Option(
        3, help="Linear-probe seeds (train/val redrawn per seed; mean ± std reported)."
    ),
    tasks: str = typer.Option(None, help="Comma list of tasks (default: every non-empty task)."),
    cache_dir: Path = typer.Option(None, help="Feature cache (default RUN/cache)."),
    data: Path = typer.Option(None, help="Dataset the probes must share a taxonomy with."),
    bootstrap: int = typer.Option(1000, help="Bootstrap resamples for the CIs."),
) -> None:
    """Zero-shot and linear probes with controls; writes results.json, report.md, predictions.

    Several --model options add a paired comparison of each with the first (e.g. a
    pre-trained and a fine-tuned checkpoint).
    """
    from rich.table import Table

    from detforge.probes.report import best_row
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
        probe_seeds=probe_seeds,
        tasks=_tasks(tasks),
        cache_dir=cache_dir,
        data=data,
        n_boot=bootstrap,
    )
    table = Table(title=f"probe run {out}")
    columns = ("task", "model", "init", "zero-shot", "linear (best layer)", "selectivity")
    for column in (*columns, "chance", "blind"):
        table.add_column(column)
    for entry in results["models"]:
        for task, m in entry["tasks"].items():
            zs = next(iter(m["zeroshot"].values()), None)
            best = best_row(m)
            selectivity = best.get("selectivity") if best else None
            table.add_row(
                task,
                entry["model"],
                entry["init"],
                f"{zs['acc']:.3f}" if zs else "-",
                f"{best['mean']:.3f} ± {best['std']:.3f} (L{best['layer']})" if best else "-",
                f"{selectivity:+.3f}" if selectivity is not None else "-",
                f"{results['tasks'][task]['chance']:.3f}",
                f"{results['blind'][task]['zeroshot']['acc']:.3f}",
            )
    console.print(table)
    for reason in results.get("skipped", []):
        console.print(f"skipped: {reason}")
    for warning in results.get("warnings", []):
        console.print(f"[bold yellow]warning[/]: {warning}", highlight=False)
    console.print(f"report: {out / 'report.md'}")


@probe_app.command("tiny-model")
def tiny_model(
    out: Path = typer.Option(..., "--out", help="Model directory to write (replaced whole)."),
    kind: str = typer.Option(
        "clip", help="clip, siglip (dual encoders), blip (ITM), vilt or llava (generative)."
    ),
    seed: int = typer.Option(
        1,
        help="Seed of the random weights (1: not the seed-0 draw `probe run --seed 0` makes "
        "for its random-init control, which would then equal the model).",
    ),
) -> None:
    """Write a tiny vision-language model with random weights, built offline from a config.

    It loads back like any local model (`detforge probe run --model DIR`): a way to try the
    probe suite, or a pipeline, with no download. Its weights are random, and its config
    says so: `probe run` then warns that its numbers show the mechanics, not a model.
    """
    from detforge.outputs import replace_folder
    from detforge.probes.synthetic import TINY_KINDS
    from detforge.probes.synthetic import tiny_model as write_tiny_model

    if kind not in TINY_KINDS:
        raise typer.BadParameter(
            f"{kind!r}: choose one of {', '.join(TINY_KINDS)}", param_hint="--kind"
        )
    hold_output(out, "probe tiny-model", beside=True)  # one writer; the folder is replaced whole
    from transformers.utils import logging as transformers_logging

    # its notes on a missing torchvision and its shard-writing bar say nothing to this user
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    with replace_folder(out, key=f"tiny-model:{kind}:seed{seed}", what="tiny model") as tmp:
        write_tiny_model(kind, tmp, seed=seed, chat_template=kind == "llava")
    console.print(
        f"wrote a tiny {kind} model with RANDOM weights (seed {seed}) to {out}: "
        f"`detforge probe run --model {out}` loads it; its numbers show how the suite runs, "
        "not what a trained model knows",
        highlight=False,
    )
