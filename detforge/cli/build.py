"""`detforge build-dataset`."""

from __future__ import annotations

from detforge.cli.app import app, not_built


@app.command("build-dataset")
def build_dataset() -> None:
    """Not built yet."""
    not_built("build-dataset", 4)
