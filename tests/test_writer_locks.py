"""One writer per output (detforge.lock): a second writer stops at once naming the holder,
a dead holder's lock is taken over with a note, and `evaluate --out` / `probe run --out`
hold it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from detforge.lock import LOCK_NAME, LockHeld, output_lock

REPO = Path(__file__).resolve().parents[1]
HOLD = """
import sys, time
from detforge.lock import output_lock
with output_lock(sys.argv[1], sys.argv[2], beside=len(sys.argv) > 3):
    print("held", flush=True)
    time.sleep(120)
"""


def _holder(
    folder: Path, command: str = "build-dataset", *, beside: bool = False
) -> subprocess.Popen:
    """Another process holding ``folder``'s lock (it says "held" once it does)."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder), command, *(["beside"] if beside else [])],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "held"
    return process


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "detforge.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
        timeout=300,
    )


def test_a_second_writer_stops_at_once_naming_the_holder(tmp_path):
    holder = _holder(tmp_path / "out")
    try:
        with pytest.raises(LockHeld) as raised, output_lock(tmp_path / "out", "evaluate"):
            pass
    finally:
        holder.kill()
        holder.wait()
    assert str(raised.value).startswith(
        f"{tmp_path / 'out'} is being written by `detforge build-dataset` (pid {holder.pid} on "
        f"{socket.gethostname()}, since "
    )


def test_a_dead_holders_lock_is_taken_over_with_a_note(tmp_path):
    holder = _holder(tmp_path / "out")
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (tmp_path / "out" / LOCK_NAME).read_text()  # the dead holder's name is still there
    notes = []
    with output_lock(tmp_path / "out", "build-dataset", note=notes.append):
        assert str(os.getpid()) in (tmp_path / "out" / LOCK_NAME).read_text()
    assert len(notes) == 1 and f"(pid {holder.pid} on {socket.gethostname()}" in notes[0]
    assert notes[0].endswith("ended without releasing its lock; taking it over")
    assert not (tmp_path / "out" / LOCK_NAME).exists()
    # a lock released normally leaves nothing to take over
    with output_lock(tmp_path / "out", "build-dataset", note=notes.append):
        pass
    assert len(notes) == 1


def test_nested_locks_of_one_process_and_no_empty_folder_left(tmp_path):
    out = tmp_path / "a" / "b"
    with output_lock(out, "build-dataset"), output_lock(out, "build-dataset"):
        assert (out / LOCK_NAME).is_file()
    assert not (tmp_path / "a").exists(), "the lock's own empty folders are removed"
    with output_lock(out, "build-dataset"):
        (out / "written.txt").write_text("x")
    assert (out / "written.txt").is_file() and not (out / LOCK_NAME).exists()


def test_evaluate_out_has_one_writer(tmp_path):
    holder = _holder(tmp_path / "eval", "evaluate", beside=True)
    try:
        started = time.monotonic()
        done = _cli(
            "evaluate", str(tmp_path / "build"), "-p", "x.json", "--out", str(tmp_path / "eval")
        )
        elapsed = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 1 and elapsed < 30
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(
        f"error: {tmp_path / 'eval'} is being written by `detforge evaluate` (pid {holder.pid}"
    )


def test_probe_run_out_has_one_writer(tmp_path):
    holder = _holder(tmp_path / "run", "probe run")
    try:
        done = _cli(
            "probe",
            "run",
            "--model",
            "m",
            "--probes",
            str(tmp_path / "p"),
            "--out",
            str(tmp_path / "run"),
        )
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(
        f"error: {tmp_path / 'run'} is being written by `detforge probe run` (pid {holder.pid}"
    )


FORK_THEN_DIE = """
import os, signal, sys, time
from detforge.lock import output_lock
with output_lock(sys.argv[1], "build-dataset"):
    ready, started = os.pipe()
    if os.fork() == 0:  # a worker, still running when its parent is killed
        os.write(started, b"1")  # fork's after-child hooks have run by now
        time.sleep(10)
        os._exit(0)
    os.read(ready, 1)
    print("forked", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_worker_outliving_its_killed_parent_does_not_keep_the_lock(tmp_path):
    out = tmp_path / "out"
    parent = subprocess.Popen(
        [sys.executable, "-c", FORK_THEN_DIE, str(out)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout.readline().strip() == "forked"
    parent.wait()
    notes = []
    with output_lock(out, "build-dataset", note=notes.append):  # the worker still sleeps
        pass
    assert len(notes) == 1 and f"(pid {parent.pid} on" in notes[0]
