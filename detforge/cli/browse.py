"""`detforge browse`."""

from __future__ import annotations

from detforge.cli.app import app, not_built


@app.command("browse")
def browse() -> None:
    """Not built yet."""
    not_built("browse", 8)
