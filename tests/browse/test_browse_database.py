"""FiftyOne's database: a mongod that cannot start or a server that does not answer is one
clear line, in the library and through the CLI; the CLI builds and says how to open."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from detforge.inspection.database import DatabaseError, check_uri, free_port, start_mongod


def test_mongod_that_cannot_start(mongod, tmp_path):
    # the data directory is locked by the running test database
    with pytest.raises(DatabaseError, match=r"mongod \(port \d+, data .*\) exited with code"):
        start_mongod(mongod.dbpath)
    with pytest.raises(DatabaseError, match="already in use"):
        start_mongod(tmp_path / "db", port=int(mongod.uri.rsplit(":", 1)[1]))
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(DatabaseError, match="cannot create the database directory"):
        start_mongod(blocker / "db")


def test_unreachable_database_uri():
    port = free_port()
    with pytest.raises(DatabaseError, match=rf"127\.0\.0\.1:{port} .*does not answer"):
        check_uri(f"mongodb://127.0.0.1:{port}", timeout=0.5)


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "detforge.cli", "browse", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
    )


def test_cli_database_that_does_not_answer(planted, tmp_path):
    port = free_port()
    env = {"FIFTYONE_DATABASE_URI": f"mongodb://127.0.0.1:{port}", "COLUMNS": "300"}
    run = _cli([str(planted["out"]), "--no-launch"], env)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines()[-1] == (
        f"error: FiftyOne's database at 127.0.0.1:{port} (FIFTYONE_DATABASE_URI) does not "
        "answer: [Errno 111] Connection refused"
    )


def test_cli_fiftyone_own_database_that_cannot_start(planted, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    env = {
        "FIFTYONE_DATABASE_URI": "",
        "FIFTYONE_DATABASE_DIR": str(blocker / "db"),
        "FIFTYONE_CONFIG_DIR": str(tmp_path / "cfg"),
        "COLUMNS": "300",
    }
    run = _cli([str(planted["out"]), "--no-launch"], env)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines()[-1] == (
        f"error: FiftyOne's database could not start: Database directory `{blocker / 'db'}` "
        "cannot be written to"
    )


def test_cli_no_launch_builds_and_says_how_to_open(fo, planted):
    from typer.testing import CliRunner

    from detforge.cli import app

    args = [str(planted["out"]), "--split", "val", "--predictions", str(planted["predictions"])]
    run = CliRunner().invoke(
        app,
        ["browse", *args, "--name", "cli-built", "--no-launch", "--port", "5999"],
        env={"COLUMNS": "200"},
    )
    assert run.exit_code == 0, run.output
    assert "FiftyOne dataset cli-built" in run.output
    assert "high-confidence-false-positives" in run.output
    assert "fiftyone app launch cli-built --port 5999" in run.output
    ds = fo.load_dataset("cli-built")
    # the val split plus the build's removed copies (the duplicate's and the contaminated one)
    assert sorted(ds.distinct("split")) == ["train", "val"]
    assert len(ds.match({"removed": None})) == 5
