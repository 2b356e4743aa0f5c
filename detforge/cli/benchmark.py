"""`detforge benchmark`: the detector pre-training benchmark."""

from __future__ import annotations

import typer

from detforge.cli.app import app, not_built

benchmark_app = typer.Typer(
    help="Detector pre-training benchmark (mmdet/mmengine).", no_args_is_help=True
)
app.add_typer(benchmark_app, name="benchmark")


@benchmark_app.command("pretrain")
def pretrain() -> None:
    """Not built yet."""
    not_built("benchmark pretrain", 6)


@benchmark_app.command("summarize")
def summarize() -> None:
    """Not built yet."""
    not_built("benchmark summarize", 6)
