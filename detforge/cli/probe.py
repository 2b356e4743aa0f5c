"""`detforge probe`: multimodal probe suite on vision-language models."""

from __future__ import annotations

import typer

from detforge.cli.app import app, not_built

probe_app = typer.Typer(
    help="Generate probe sets from a dataset and run them on a VLM.", no_args_is_help=True
)
app.add_typer(probe_app, name="probe")


@probe_app.command("generate")
def generate() -> None:
    """Not built yet."""
    not_built("probe generate", 7)


@probe_app.command("run")
def run() -> None:
    """Not built yet."""
    not_built("probe run", 7)
