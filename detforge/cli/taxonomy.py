"""`detforge taxonomy`: the unified label space."""

from __future__ import annotations

from pathlib import Path

import typer

from detforge.cli.app import app, console, err_console

taxonomy_app = typer.Typer(
    help="Show, validate, suggest and diff unified taxonomies.", no_args_is_help=True
)
app.add_typer(taxonomy_app, name="taxonomy")


def _join(values) -> str:
    return ", ".join(str(v) for v in values or [])


def _cell(value) -> str:
    """A table cell showing ``value`` literally (names may hold rich markup characters)."""
    from rich.markup import escape

    return "" if value is None else escape(str(value))


@taxonomy_app.command("show")
def show(
    name: str = typer.Argument(help="A shipped taxonomy (e.g. bigdet-v1) or a directory."),
    class_: str | None = typer.Option(None, "--class", help="Show one class (name or id)."),
) -> None:
    """The classes (id, name, parents, source classes feeding each), or one class in detail."""
    import polars as pl
    from rich.markup import escape
    from rich.table import Table

    from detforge.taxonomy import fingerprint, load

    tax = load(name)
    console.print(f"fingerprint {fingerprint(tax)}", soft_wrap=True)
    names = dict(zip(tax.classes["id"].to_list(), tax.classes["name"].to_list(), strict=True))
    if class_ is None:
        fed = tax.mapping.group_by("label").agg(pl.len().alias("n"))
        counts = dict(fed.iter_rows())
        table = Table(title=f"{tax.name}: {len(tax)} classes, {tax.mapping.height} mapping rows")
        for column in ("id", "name", "parents", "part of", "source classes"):
            table.add_column(column)
        for cid, cname, parents, part_of in tax.classes.select(
            "id", "name", "parents", "part_of"
        ).iter_rows():
            table.add_row(
                str(cid),
                _cell(cname),
                _cell(_join(names[p] for p in parents)),
                _cell(_join(names[p] for p in part_of)),
                str(counts.get(cid, 0)),
            )
        console.print(table)
        return
    unified = tax.get(class_)
    console.print(f"[bold]{unified.id} {escape(unified.name)}[/bold]  ({escape(tax.name)})")
    for label, value in (
        ("synonyms", _join(unified.synonyms)),
        ("synset", unified.synset or ""),
        ("definition", unified.definition or ""),
        ("is a", _join(names[p] for p in unified.parents)),
        ("part of", _join(names[p] for p in unified.part_of)),
        ("frequency", unified.frequency or ""),
    ):
        console.print(f"  {label}: {value}", markup=False, highlight=False)
    table = Table(title="source classes feeding it")
    for column in ("source", "source_label", "source_name", "relation", "provenance", "note"):
        table.add_column(column)
    for row in (
        tax.feeding(unified.id)
        .select("source", "source_label", "source_name", "relation", "provenance", "note")
        .iter_rows()
    ):
        table.add_row(*(_cell(repr(v) if i == 2 else v) for i, v in enumerate(row)))
    console.print(table)


@taxonomy_app.command("validate")
def validate(
    name: str = typer.Argument(help="A shipped taxonomy or a directory."),
    sources: list[str] = typer.Option(
        [],
        "--sources",
        help="Category file, source folder or data root (objects365/ openimages/ lvis/ coco/); "
        "FORMAT=PATH to name the format. Repeatable.",
    ),
    subset: bool = typer.Option(
        False, "--subset", help="The category files list only some classes (e.g. the sample)."
    ),
    boxes: bool = typer.Option(
        False, "--boxes", help="Also read the boxes of folders given to --sources: kept/dropped."
    ),
) -> None:
    """Check a taxonomy (and its coverage of the given sources); exit 1 on any violation."""
    import polars as pl
    from rich.table import Table

    from detforge.taxonomy import load
    from detforge.taxonomy import validate as run_validate
    from detforge.taxonomy.sourcefiles import read as read_sources
    from detforge.taxonomy.sourcefiles import read_objects

    tax = load(name)
    mapped = set(tax.sources)
    categories = (
        pl.concat([read_sources(spec, only=mapped or None) for spec in sources])
        if sources
        else None
    )
    objects = (
        pl.concat([read_objects(spec, only=mapped or None) for spec in sources])
        if boxes and sources
        else None
    )
    report = run_validate(tax, categories, objects, subset=subset)
    table = Table(title=f"{tax.name}: coverage per source")
    columns = ["source", "classes", "mapped", "merged", "dropped", "missing", "unified_classes"]
    for column in columns:
        table.add_column(
            column.replace("unified_classes", "unified"),
            justify="left" if column == "source" else "right",
            no_wrap=True,
        )
    for row in report.coverage.select(columns).iter_rows():
        table.add_row(*(str(v) for v in row))
    console.print(table)
    console.print("mapped = exact + synonym, merged = merge + parent (many-to-one)")
    if objects is not None:
        for source, kept, dropped in report.coverage.select(
            "source", "boxes_kept", "boxes_dropped"
        ).iter_rows():
            console.print(f"{source}: boxes kept {kept}, dropped {dropped}")
    if report.problems:
        for problem in report.problems:
            err_console.print(f"violation: {problem}", markup=False, highlight=False)
        err_console.print(f"{len(report.problems)} violation(s)")
        raise typer.Exit(1)
    checked = f" against {categories.height} source classes" if categories is not None else ""
    console.print(f"{tax.name}: no violations{checked}.")


@taxonomy_app.command("suggest")
def suggest(
    source: str = typer.Option(
        ..., "--source", help="The new source's category file (or FORMAT=PATH)."
    ),
    taxonomy: str = typer.Option(..., "--taxonomy", help="A shipped taxonomy or a directory."),
    k: int = typer.Option(3, "-k", min=1, help="Candidates per source class."),
    out: Path | None = typer.Option(None, "--out", help="Write the candidates to this CSV."),
    embeddings: bool = typer.Option(
        True, "--embeddings/--no-embeddings", help="Use sentence embeddings."
    ),
) -> None:
    """Candidate mappings for a source's classes (names, synonyms, synsets, embeddings)."""
    from rich.table import Table

    from detforge.atomic import write_text
    from detforge.taxonomy import load
    from detforge.taxonomy import suggest as run_suggest
    from detforge.taxonomy.sourcefiles import read as read_sources

    tax = load(taxonomy)
    suggestions = run_suggest(read_sources(source), tax, k, embeddings=embeddings)
    if out is not None:
        write_text(
            out, suggestions.rename({"label_name": "label", "label": "label_id"}).write_csv()
        )
        console.print(f"{suggestions.height} candidates written to {out}")
        return
    table = Table(title=f"candidates in {tax.name}")
    for column in ("source_label", "source_name", "rank", "label_name", "score", "provenance"):
        table.add_column(column)
    for sl, sn, rank, label, score, prov in suggestions.select(
        "source_label", "source_name", "rank", "label_name", "score", "provenance"
    ).iter_rows():
        table.add_row(_cell(sl), _cell(repr(sn)), str(rank), _cell(label), f"{score:.3f}", prov)
    console.print(table)


@taxonomy_app.command("diff")
def diff(
    a: str = typer.Argument(help="The old taxonomy (name or directory)."),
    b: str = typer.Argument(help="The new taxonomy (name or directory)."),
    out: Path | None = typer.Option(None, "--out", help="Write the Markdown here."),
) -> None:
    """What changed from A to B (classes added/removed/renamed, source classes re-mapped)."""
    from detforge.atomic import write_text
    from detforge.taxonomy import diff as run_diff
    from detforge.taxonomy import load

    text = run_diff(load(a), load(b)).to_markdown()
    if out is not None:
        write_text(out, text)
    console.print(text, markup=False, highlight=False)
