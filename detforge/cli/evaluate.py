"""`detforge evaluate`: detection AP (COCO, LVIS, federated) on a built dataset's split."""

from __future__ import annotations

from pathlib import Path

import typer

from detforge.cli.app import app, console, hold_output


def _tables_dir(out: Path) -> Path:
    """A build's ``OUT/tables`` directory, or ``out`` itself when it is a tables directory."""
    return out if (out / "dataset.json").is_file() else out / "tables"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


@app.command("evaluate")
def evaluate(
    out: Path = typer.Argument(..., help="Built dataset directory (OUT, or OUT/tables)."),
    predictions: Path = typer.Option(
        ...,
        "--predictions",
        "-p",
        help="COCO results JSON, or parquet (image_id, label, score, bbox | bbox_xywh).",
    ),
    split: str = typer.Option("val", help="Split to evaluate on."),
    protocol: str = typer.Option(
        "coco,lvis,federated", help="Comma-separated protocols: coco, lvis, federated."
    ),
    taxonomy: str | None = typer.Option(
        None, help="Map source labels through this taxonomy (with --source-ids)."
    ),
    source_ids: str | None = typer.Option(
        None, help="The source whose labels the predictions use (e.g. coco); needs --taxonomy."
    ),
    out_dir: Path | None = typer.Option(
        None, "--out", help="Where eval.json/eval.md/matches.parquet go [OUT/eval/<split>]."
    ),
    category_ids: str = typer.Option(
        "coco",
        "--category-ids",
        help="How a results JSON numbers category_id: coco = the build's COCO export "
        "(unified id + 1, what a detector trained on OUT/coco writes); unified = the unified "
        "id (the Hub layout's ClassLabel).",
    ),
    matches: bool = typer.Option(
        True, "--matches/--no-matches", help="Write per-detection TP/FP rows (matches.parquet)."
    ),
) -> None:
    """Score predictions on a split: COCO, LVIS-style and federated AP, per source and class."""
    from rich import box
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from detforge.dataset import DetDataset
    from detforge.errors import DetforgeError
    from detforge.evaluators import PROTOCOLS, source_mapping, write
    from detforge.evaluators import evaluate as run_evaluation
    from detforge.evaluators.results import HEADLINE

    if (taxonomy is None) != (source_ids is None):
        raise DetforgeError("--taxonomy and --source-ids go together")
    hold_output(out_dir or out / "eval" / split, "evaluate")  # one writer per output folder
    dataset = DetDataset.read(_tables_dir(out))
    mapping = (
        source_mapping(taxonomy, source_ids, dataset.categories)
        if taxonomy and source_ids
        else None
    )
    protocols = [p.strip() for p in protocol.split(",") if p.strip()]
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("reading predictions", total=None)
        result = run_evaluation(
            dataset,
            predictions,
            split=split,
            protocols=protocols,
            mapping=mapping,
            category_ids=category_ids,
            matches=matches,
            step=lambda text: progress.update(task, description=text),
        )
    files = write(result, out_dir or out / "eval" / split)

    # the headline numbers; eval.md / eval.json hold every one
    keys = [k for k in HEADLINE if any(k in p["overall"] for p in result.protocols.values())]
    table = Table(
        title=f"split {split}: {result.counts['detections']} detections, "
        f"{result.counts['images']} images, {result.counts['boxes']} boxes (AP/AR in %)",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("protocol", no_wrap=True)
    for column in (*keys, "AR"):
        table.add_column(column, justify="right", no_wrap=True, min_width=4)
    for name, p in result.protocols.items():
        rows = [(name, p["overall"]), *((f"  {s}", m) for s, m in sorted(p["per_source"].items()))]
        ar = f"AR{PROTOCOLS[name].max_dets[-1]}"
        for index, (who, metrics) in enumerate(rows):
            cells = [_percent(metrics.get(k)) for k in (*keys, ar)]
            table.add_row(who, *cells, end_section=index == len(rows) - 1)
    console.print(table)
    for name, p in result.protocols.items():
        ar = f"AR@{PROTOCOLS[name].max_dets[-1]}"
        console.print(f"[bold]{name}[/] (AR = {ar}): {p['description']}", highlight=False)
    console.print(f"wrote {', '.join(str(f) for f in files.values())}", highlight=False)
