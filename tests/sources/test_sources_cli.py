"""`detforge sample` and `detforge read`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from typer.testing import CliRunner

from detforge.cli import app
from detforge.dataset import DetDataset

runner = CliRunner()


def test_sample_then_read(tmp_path):
    out = tmp_path / "sample"
    result = runner.invoke(app, ["sample", "--out", str(out), "--seed", "2"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "planted.json").read_text())["seed"] == 2
    result = runner.invoke(app, ["read", str(out)], terminal_width=200)
    assert result.exit_code == 0, result.output
    for source in ("objects365", "openimages", "lvis", "coco"):
        assert source in result.output
    lines = [
        line for line in result.output.splitlines() if "objects365" in line and "train" in line
    ]
    assert [cell.strip() for cell in lines[0].split("│")[1:-1]] == [
        "objects365",
        "train",
        "14",
        "37",
        "15",
        "0",
        "1",
    ]
    only = runner.invoke(app, ["read", str(out), "--source", "lvis"], terminal_width=200)
    assert only.exit_code == 0 and "lvis" in only.output and "openimages" not in only.output


def test_read_exits_1_on_violations(sample_root, monkeypatch):
    monkeypatch.setattr(DetDataset, "validate", lambda self: ["objects: something broken"])
    result = runner.invoke(app, ["read", str(sample_root), "--source", "coco"])
    assert result.exit_code == 1
    assert "something broken" in result.output


def test_read_nothing_found(tmp_path):
    result = runner.invoke(app, ["read", str(tmp_path)])
    assert result.exit_code == 1
    assert "no source found" in result.output


def test_bad_input_is_one_line_and_exit_1(tmp_path, sample_root):
    root = tmp_path / "root"
    (root / "coco" / "annotations").mkdir(parents=True)
    (root / "coco" / "annotations" / "instances_val2017.json").write_text('{"images": [')
    command = [sys.executable, "-c", "from detforge.cli import main; main()", "read", str(root)]
    # a wide terminal: rich wraps at 80 columns when stderr is not a terminal
    env = {**os.environ, "COLUMNS": "400"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "malformed JSON" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_help_texts():
    for command in ("sample", "read"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0
    assert "--seed" in runner.invoke(app, ["sample", "--help"]).output
    assert "--no-file-check" in runner.invoke(app, ["read", "--help"]).output
