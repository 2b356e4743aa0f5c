"""The Typer application every command module registers on, and shared CLI helpers."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(
    name="detforge",
    help=(
        "Build large unified object-detection datasets (Objects365 + OpenImages + LVIS -> one "
        "taxonomy), publish them to the Hugging Face Hub, and measure what they are worth."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
# soft_wrap: an error line stays one line when stderr is not a terminal
err_console = Console(stderr=True, soft_wrap=True)
