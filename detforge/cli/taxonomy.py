"""`detforge taxonomy`: the unified label space."""

from __future__ import annotations

import typer

from detforge.cli.app import app, not_built

taxonomy_app = typer.Typer(
    help="Show, validate, suggest and diff unified taxonomies.", no_args_is_help=True
)
app.add_typer(taxonomy_app, name="taxonomy")


@taxonomy_app.command("show")
def show() -> None:
    """Not built yet."""
    not_built("taxonomy show", 3)


@taxonomy_app.command("validate")
def validate() -> None:
    """Not built yet."""
    not_built("taxonomy validate", 3)


@taxonomy_app.command("suggest")
def suggest() -> None:
    """Not built yet."""
    not_built("taxonomy suggest", 3)


@taxonomy_app.command("diff")
def diff() -> None:
    """Not built yet."""
    not_built("taxonomy diff", 3)
