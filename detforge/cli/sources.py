"""`detforge sample` and `detforge read`: the built-in sample and the source readers."""

from __future__ import annotations

from pathlib import Path

import typer

from detforge.cli.app import app, console, err_console


@app.command("sample")
def sample(
    out: Path = typer.Option(
        ...,
        "--out",
        help="Folder to write the sample into (created; a previous sample there is replaced).",
    ),
    seed: int = typer.Option(
        0, "--seed", help="Random seed: the same seed writes byte-identical files."
    ),
) -> None:
    """Write the built-in multi-source sample in the sources' real on-disk formats.

    Objects365 JSON + patchN/ folders, OpenImages CSVs + hierarchy JSON, LVIS v1 JSON with
    COCO image folders, a COCO val2017 instances file, and planted.json listing the planted
    cases (duplicates, a cropped copy, look-alikes, contamination, federated labels, ...).
    """
    from detforge.sources.sample import write_sample

    root = write_sample(out, seed=seed)
    files = [p for p in root.rglob("*") if p.is_file()]
    console.print(f"wrote the sample (seed {seed}) to {root}: {len(files)} files")


@app.command("read")
def read(
    root: Path = typer.Argument(
        ...,
        help="Folder laid out like the sample: ROOT/objects365, ROOT/openimages, ROOT/lvis, ROOT/coco.",
    ),
    source: list[str] = typer.Option(
        None, "--source", help="Only this source (repeatable): objects365, openimages, lvis, coco."
    ),
    no_file_check: bool = typer.Option(
        False,
        "--no-file-check",
        help="Read annotations only: do not check image files (OpenImages sizes stay unknown).",
    ),
) -> None:
    """Read every source split under ROOT, validate it and print counts per source.

    Exits 1 when a dataset violates an invariant (listed on stderr) or an input is bad.
    """
    from rich.table import Table

    from detforge.sources.discover import discover

    found = discover(root, source or None)
    if not found:
        err_console.print(f"{root}: no source found (see docs/sources.md for the layout)")
        raise typer.Exit(1)
    table = Table(title=f"sources under {root}")
    for column in ("source", "split", "images", "boxes", "classes", "image labels", "quarantined"):
        table.add_column(column, justify="left" if column in ("source", "split") else "right")
    failed = False
    for item in found:
        dataset = item.read(check_files=not no_file_check)
        problems = dataset.validate()
        for problem in problems:
            err_console.print(f"{item.source}/{item.split}: {problem}", markup=False)
        failed |= bool(problems)
        table.add_row(
            item.source,
            item.split,
            str(dataset.images.height),
            str(dataset.objects.height),
            str(dataset.source_categories.height),
            str(dataset.image_labels.height),
            str(dataset.quarantine.height),
        )
    console.print(table)
    if failed:
        raise typer.Exit(1)
