"""`detforge browse`: a built dataset, its detection errors and probe failures in FiftyOne."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from detforge.cli.app import app, console, err_console, note


@app.command("browse")
def browse(
    out: Path = typer.Argument(..., help="A build output (OUT/tables) or a tables folder."),
    split: str | None = typer.Option(None, "--split", help="Only this split (default: all)."),
    predictions: Path | None = typer.Option(
        None,
        "--predictions",
        help="Detections: COCO results JSON (category_id as in the COCO export) or parquet.",
    ),
    eval_dir: Path | None = typer.Option(
        None,
        "--eval",
        help="A `detforge evaluate` folder (eval.json + matches.parquet): adds federated "
        "TP/FP/FN/ignored flags. Its predictions file is found beside it unless given.",
    ),
    probe_run: Path | None = typer.Option(
        None, "--probe-run", help="A `detforge probe` run folder (predictions.parquet)."
    ),
    port: int = typer.Option(5151, "--port", help="App port."),
    remote: bool = typer.Option(False, "--remote", help="Serve the App without a browser."),
    no_launch: bool = typer.Option(
        False, "--no-launch", help="Build the FiftyOne dataset, print how to open it, exit."
    ),
    name: str | None = typer.Option(
        None, "--name", help="FiftyOne dataset name (default detforge-<folder>[-<split>])."
    ),
    fp_score: float = typer.Option(
        0.5, "--fp-score", help="Confidence from which a false positive counts as high."
    ),
) -> None:
    """Build (or replace) a FiftyOne dataset with saved views and open the App.

    Views: high-confidence false positives, rare-class misses, cross-source label
    conflicts, near-duplicate groups, images removed by decontamination, probe
    failures per task. FiftyOne's database: FIFTYONE_DATABASE_URI, else its own mongod.

    One writer per dataset name: a second browse of the same name stops at once. The dataset is built under a temporary name and renamed when whole.
    """
    from detforge.inspection.app import check_port, how_to_open, launch
    from detforge.inspection.build import build_browse_dataset

    if not no_launch:
        check_port(port)  # now, not after the dataset is built
    result = build_browse_dataset(
        out,
        split=split,
        predictions=predictions,
        eval_dir=eval_dir,
        probe_run=probe_run,
        name=name,
        high_confidence=fp_score,
        step=lambda message: err_console.print(f"[dim]{message}…[/]"),
        note=note,
    )
    table = Table(title=f"FiftyOne dataset {result.name}: {result.samples} samples")
    table.add_column("saved view")
    table.add_column("samples", justify="right")
    for view, count in result.views.items():
        table.add_row(view, str(count))
    console.print(table)
    for remark in result.notes:
        console.print(f"note: {remark}")
    if no_launch:
        console.print("Open it with one of:")
        for line in how_to_open(result.name, port):
            console.print(f"  {line}", markup=False, highlight=False)
        return
    console.print(f"App on port {port} (Ctrl-C to stop)")
    launch(result.name, port=port, remote=remote)
