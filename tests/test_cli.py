"""The command line lists every command of the design."""

from __future__ import annotations

from typer.testing import CliRunner

from detforge.cli import app

COMMANDS = [
    "build-dataset",
    "upload",
    "evaluate",
    "benchmark",
    "probe",
    "browse",
    "taxonomy",
    "sample",
]


def test_help_lists_every_command():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output
