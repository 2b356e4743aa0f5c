"""The Typer application every command module registers on, and shared CLI helpers."""

from __future__ import annotations

from pathlib import Path

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

#: ``--debug``: an error shows its traceback instead of one line; ``context``: the running
#: invocation's context, which releases what :func:`hold_output` holds when it closes
options: dict = {"debug": False, "context": None}


@app.callback()
def _global_options(
    ctx: typer.Context,
    debug: bool = typer.Option(
        False,
        "--debug",
        envvar="DETFORGE_DEBUG",
        help="On an error, show the full traceback instead of one line.",
    ),
) -> None:
    options["debug"] = debug
    options["context"] = ctx


def note(message: str) -> None:
    """A remark on stderr that is not an error (a lock taken over, a cache rebuilt)."""
    err_console.print(f"note: {message}", markup=False, highlight=False)


def hold_output(folder: Path, command: str, *, beside: bool = False) -> None:
    """Lock the output ``folder`` until the running command ends (one writer per folder): a
    second writer exits at once with one line naming this one. ``beside``: the lock file sits
    next to ``folder``, for a command that replaces the folder whole."""
    from detforge.lock import output_lock

    options["context"].with_resource(output_lock(folder, command, beside=beside, note=note))
