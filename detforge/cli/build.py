"""`detforge build-dataset`."""

from __future__ import annotations

from pathlib import Path

import typer

from detforge.cli.app import app, console, note


def _pairs(values: list[str] | None, option: str) -> dict[str, Path]:
    """``NAME=PATH`` options as a mapping (a clear error for anything else)."""
    from detforge.errors import DetforgeError

    pairs: dict[str, Path] = {}
    for value in values or []:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise DetforgeError(f"{option} {value!r}: expected NAME=PATH")
        pairs[name] = Path(path)
    return pairs


@app.command("build-dataset")
def build_dataset(
    recipe: str = typer.Argument("bigdet", help="A shipped recipe name (bigdet)."),
    recipe_file: Path | None = typer.Option(
        None, "--recipe", help="A recipe YAML file (instead of a shipped name)."
    ),
    root: Path | None = typer.Option(
        None, "--root", help="Folder holding the sources; without it, build the built-in sample."
    ),
    source: list[str] | None = typer.Option(
        None, "--source", help="NAME=PATH: one source's folder (overrides the recipe)."
    ),
    set_: list[str] | None = typer.Option(
        None, "--set", help="KEY=VALUE recipe override, e.g. dedup.phash_distance=4."
    ),
    holdout: list[str] | None = typer.Option(
        None, "--holdout", help="NAME=PATH: a COCO-format eval set to keep out of training."
    ),
    out: Path = typer.Option(..., "--out", help="Output folder (resumes a previous build)."),
    engine: str | None = typer.Option(
        None, "--engine", help="process | ray (image hashing and the near-duplicate search)."
    ),
    ray_address: str | None = typer.Option(
        None,
        "--ray-address",
        help="With --engine ray: the running cluster to use (else RAY_ADDRESS; else a local one).",
    ),
    workers: int | None = typer.Option(None, "--workers", help="Worker processes."),
) -> None:
    """Merge the recipe's sources into one dataset under one taxonomy.

    Stages: read, map, split, dedup, decontaminate, report, export (COCO JSON, Hub parquet, tables).

    Each stage is cached under OUT/.stages: a rerun resumes, and a changed setting re-runs only what depends on it. With no --root, the built-in sample is built.

    A build owns OUT: it holds OUT/.detforge.lock while it runs (a second build into OUT stops at once), refuses an OUT that is, contains or lies inside a source or holdout, and replaces only folders it wrote (each export folder's .detforge-manifest.json lists them); anything else in OUT is left alone.
    """
    from rich.table import Table

    from detforge.builders.pipeline import build
    from detforge.builders.recipe import load_recipe

    if ray_address:  # read by the Ray engine (detforge.builders.dedup.engines.ray_session)
        import os

        os.environ["RAY_ADDRESS"] = ray_address
    overrides = list(set_ or [])
    if engine:
        overrides.append(f"engine={engine}")
    spec = load_recipe(recipe_file or recipe, overrides)
    result = build(
        spec,
        out,
        root=root,
        source_roots=_pairs(source, "--source"),
        holdouts=_pairs(holdout, "--holdout"),
        workers=workers,
        progress=lambda stage: console.print(f"[bold]{stage}[/bold]"),
        note=note,
    )
    table = Table(title=f"{spec.name} → {result.out}")
    for column in ("stage", "images", "boxes", "cache"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    cached = {stage: hit for stage, _, hit in result.stages}
    for stage, images, boxes in result.counts.iter_rows():
        table.add_row(stage, f"{images:,}", f"{boxes:,}", "reused" if cached[stage] else "built")
    for stage, _, hit in result.stages:
        if stage not in cached or stage.startswith(("export", "report")):
            table.add_row(stage, "", "", "reused" if hit else "written")
    console.print(table)
    console.print(summary_line(result.reports))
    console.print(f"report: {result.out / 'report' / 'report.md'}")


def summary_line(reports: dict) -> str:
    """Dropped classes, duplicate groups and contamination, in one line."""
    import polars as pl

    drops = reports.get("drops", pl.DataFrame())
    dups = reports.get("dup_groups", pl.DataFrame())
    removed = reports.get("contamination", pl.DataFrame())
    lost = int(drops["boxes"].sum() or 0) if "boxes" in drops.columns else 0
    groups = dups["dup_group"].drop_nulls().n_unique() if "dup_group" in dups.columns else 0
    return (
        f"boxes lost to dropped classes: {lost:,}; duplicate groups: {groups:,}; "
        f"contaminated training images removed: {removed.height:,}"
    )
