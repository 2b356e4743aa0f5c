"""`detforge upload`."""

from __future__ import annotations

from detforge.cli.app import app, not_built


@app.command("upload")
def upload() -> None:
    """Not built yet."""
    not_built("upload", 5)
