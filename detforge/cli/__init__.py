"""The ``detforge`` command line: a thin Typer layer over the library.

Each module here registers one command (or command group) on :data:`app`;
heavy libraries are imported inside the commands so ``--help`` stays fast.
"""

from __future__ import annotations

import sys

from detforge.allocator import release_pages_promptly
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
from detforge.cli.app import app, err_console, options
from detforge.errors import DetforgeError
from detforge.oserrors import describe


def main() -> None:
    """Entry point: run the app. A DetforgeError or an operating-system failure (disk full,
    permission denied, ...) becomes one line on stderr and exit status 1; ``--debug`` shows
    the traceback instead."""
    release_pages_promptly()  # before any command imports polars
    try:
        app()
    except Exception as error:
        line = str(error) if isinstance(error, DetforgeError) else describe(error)
        if line is None or options["debug"]:
            raise
        err_console.print(f"error: {line}", markup=False, highlight=False)
        sys.exit(1)
