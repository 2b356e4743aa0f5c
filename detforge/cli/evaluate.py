"""`detforge evaluate`: detection AP (COCO, LVIS, federated) on a built dataset's split or on
a plain COCO / LVIS ground-truth file."""

from __future__ import annotations

from pathlib import Path

import typer

from detforge.cli.app import app, console, hold_output


def _tables_dir(out: Path) -> Path:
    """A build's ``OUT/tables`` directory, or ``out`` itself when it is a tables directory."""
    return out if (out / "dataset.json").is_file() else out / "tables"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _print_result(result) -> None:
    """The headline numbers; eval.md / eval.json hold every one."""
    from rich import box
    from rich.table import Table

    from detforge.evaluators import PROTOCOLS
    from detforge.evaluators.results import HEADLINE

    keys = [k for k in HEADLINE if any(k in p["overall"] for p in result.protocols.values())]
    c = result.counts
    table = Table(
        title=f"{result.ground_truth}: {c['detections']} detections, {c['images']} images, "
        f"{c['boxes']} boxes (AP/AR in %)",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("protocol", no_wrap=True)
    for column in (*keys, "AR"):
        table.add_column(column, justify="right", no_wrap=True, min_width=4)
    for name, p in result.protocols.items():
        rows = [(name, p["overall"])]
        if len(p["per_source"]) > 1:
            rows += [(f"  {s}", m) for s, m in sorted(p["per_source"].items())]
        ar = f"AR{PROTOCOLS[name].max_dets[-1]}"
        for index, (who, metrics) in enumerate(rows):
            cells = [_percent(metrics.get(k)) for k in (*keys, ar)]
            table.add_row(who, *cells, end_section=index == len(rows) - 1)
    console.print(table)
    for name, p in result.protocols.items():
        ar = f"AR@{PROTOCOLS[name].max_dets[-1]}"
        console.print(f"[bold]{name}[/] (AR = {ar}): {p['description']}", highlight=False)
    for note in result.all_notes():
        console.print(f"note: {note}", highlight=False)


@app.command("evaluate")
def evaluate(
    out: Path | None = typer.Argument(
        None, help="Built dataset directory (OUT, or OUT/tables). Not with --gt."
    ),
    predictions: Path = typer.Option(
        ...,
        "--predictions",
        "-p",
        help="COCO results JSON, or parquet (image_id, label, score, bbox | bbox_xywh).",
    ),
    gt: Path | None = typer.Option(
        None,
        "--gt",
        help="A plain COCO instances or LVIS JSON to score against instead of a build: ids "
        "as in the file, no build needed.",
    ),
    gt_format: str | None = typer.Option(
        None,
        "--format",
        help="Format of --gt: coco or lvis (default: detected; LVIS when images carry "
        "neg_category_ids or categories a frequency).",
    ),
    split: str = typer.Option("val", help="Split of the build to evaluate on."),
    protocol: str | None = typer.Option(
        None,
        help="Comma-separated protocols: coco, lvis, federated (default: all three on a "
        "build; with --gt, coco for a COCO file and lvis for an LVIS file).",
    ),
    taxonomy: str | None = typer.Option(
        None, help="Map source labels through this taxonomy (with --source-ids)."
    ),
    source_ids: str | None = typer.Option(
        None, help="The source whose labels the predictions use (e.g. coco); needs --taxonomy."
    ),
    out_dir: Path | None = typer.Option(
        None,
        "--out",
        help="Folder for eval.json/eval.md/matches.parquet, replaced as a whole (default: "
        "OUT/eval/<split>; with --gt, <predictions>-eval beside the predictions).",
    ),
    category_ids: str = typer.Option(
        "auto",
        "--category-ids",
        help="How a build's results number category_id: coco = the build's COCO export "
        "(unified id + 1, what a detector trained on OUT/coco writes); unified = the unified "
        "id (the Hub layout's ClassLabel); auto = what the predictions' NAME.meta.json "
        "declares (detforge benchmark writes one), else whichever of the two the ids fit, "
        "refused when they fit several id spaces.",
    ),
    frequency: str = typer.Option(
        "lvis",
        "--frequency",
        help="APr/APc/APf bins: lvis = each class's own LVIS frequency field (LVIS's "
        "definition); train-counts = the build's merged train split image counts.",
    ),
    matches: bool = typer.Option(
        True, "--matches/--no-matches", help="Write per-detection TP/FP rows (matches.parquet)."
    ),
) -> None:
    """Score predictions: COCO, LVIS-style and federated AP, per source and class.

    On a build: `detforge evaluate OUT -p preds.json`. On a plain file (the fast path for a
    detector's validation): `detforge evaluate --gt instances_val2017.json -p dets.json`.
    """
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from detforge.dataset import DetDataset
    from detforge.errors import DetforgeError
    from detforge.evaluators import evaluate as run_evaluation
    from detforge.evaluators import evaluate_file, source_mapping, write
    from detforge.evaluators.results import check_output

    if (out is None) == (gt is None):
        raise DetforgeError("give a build directory OUT or --gt FILE.json (one of the two)")
    if (taxonomy is None) != (source_ids is None):
        raise DetforgeError("--taxonomy and --source-ids go together")
    if gt is not None and (taxonomy or category_ids != "auto" or frequency != "lvis"):
        raise DetforgeError(
            "--gt reads ids and r/c/f bins from the file itself: --taxonomy, --source-ids, "
            "--category-ids and --frequency apply to a build"
        )
    if gt is None and gt_format is not None:
        raise DetforgeError("--format describes a --gt file")
    protocols = [p.strip() for p in protocol.split(",") if p.strip()] if protocol else None
    if gt is not None:
        target = out_dir or predictions.parent / f"{predictions.stem}-eval"
    else:
        target = out_dir or out / "eval" / split
    # one writer per output folder; the lock sits beside it, as the results replace it whole
    hold_output(target, "evaluate", beside=True)
    check_output(target)  # before the work, not after it
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("reading ground truth and predictions", total=None)

        def step(text: str) -> None:
            progress.update(task, description=text)

        if gt is not None:
            result = evaluate_file(
                gt, predictions, format=gt_format, protocols=protocols, matches=matches, step=step
            )
        else:
            dataset = DetDataset.read(_tables_dir(out))
            mapping = (
                source_mapping(taxonomy, source_ids, dataset.categories)
                if taxonomy and source_ids
                else None
            )
            result = run_evaluation(
                dataset,
                predictions,
                split=split,
                protocols=protocols or ("coco", "lvis", "federated"),
                mapping=mapping,
                category_ids=category_ids,
                frequency=frequency,
                matches=matches,
                step=step,
            )
        progress.update(task, description="writing eval.json, eval.md, matches.parquet")
        files = write(result, target)
    _print_result(result)
    console.print(f"wrote {', '.join(str(f) for f in files.values())}", highlight=False)
