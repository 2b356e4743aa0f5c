"""The ``detforge`` command line: a thin Typer layer over the library.

Each module here registers one command (or command group) on :data:`app`;
heavy libraries are imported inside the commands so ``--help`` stays fast.
"""

from __future__ import annotations

import sys

from detforge.cli import (  # noqa: F401  (each module registers its commands)
    benchmark,
    browse,
    build,
    dedup,
    evaluate,
    probe,
    sources,
    taxonomy,
    upload,
)
from detforge.cli.app import app, err_console
from detforge.errors import DetforgeError


def main() -> None:
    """Entry point: run the app; a DetforgeError becomes one line on stderr and exit 1."""
    try:
        app()
    except DetforgeError as error:
        err_console.print(f"error: {error}", markup=False, highlight=False)
        sys.exit(1)
