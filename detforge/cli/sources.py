"""`detforge sample` and `detforge read`: the built-in sample and the source readers."""

from __future__ import annotations

from detforge.cli.app import app, not_built


@app.command("sample")
def sample() -> None:
    """Not built yet."""
    not_built("sample", 2)
