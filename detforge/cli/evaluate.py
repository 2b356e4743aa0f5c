"""`detforge evaluate`."""

from __future__ import annotations

from detforge.cli.app import app, not_built


@app.command("evaluate")
def evaluate() -> None:
    """Not built yet."""
    not_built("evaluate", 6)
