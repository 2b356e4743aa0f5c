"""One writer per FiftyOne dataset: a second browse of the same name stops at once, two at
the same moment never duplicate samples or views, a failed run leaves the previous dataset
whole, and a port taken by another program is one line at once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from detforge.inspection.build import _lock_file, build_browse_dataset
from detforge.lock import writer_lock


def _browse(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "detforge.cli", "browse", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "300", **kwargs},
    )


@pytest.fixture
def lock_home(tmp_path, monkeypatch):
    """Browse locks in a folder of this test (the user's cache folder otherwise)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_second_browse_of_the_same_name_stops_at_once(fo, planted, lock_home):
    with writer_lock(_lock_file("planted-held"), "browse", what="FiftyOne dataset 'planted-held'"):
        started = time.monotonic()
        run = _browse(str(planted["out"]), "--no-launch", "--name", "planted-held")
        _, stderr = run.communicate(timeout=120)
    assert run.returncode == 1
    assert time.monotonic() - started < 30
    [line] = stderr.strip().splitlines()
    holder = f"`detforge browse` (pid {os.getpid()} on {socket.gethostname()}, since "
    assert line.startswith(f"error: FiftyOne dataset 'planted-held' is being written by {holder}")
    assert not fo.dataset_exists("planted-held")


def test_two_browses_at_once_leave_one_whole_dataset(fo, planted, lock_home):
    runs = [_browse(str(planted["out"]), "--no-launch", "--name", "planted-race") for _ in range(2)]
    results = [(run.wait(timeout=300), run.stderr.read()) for run in runs]
    for code, stderr in results:
        assert code == 0 or "is being written by `detforge browse`" in stderr, stderr
    assert any(code == 0 for code, _ in results)
    names = [n for n in fo.list_datasets() if n.split(".")[0] == "planted-race"]
    assert names == ["planted-race"]
    ds = fo.load_dataset("planted-race")
    assert len(ds) == 8 and len(set(ds.values("image_id"))) == 8
    views = ds.list_saved_views()
    assert len(views) == len(set(views)) > 0


def test_a_failed_run_leaves_the_previous_dataset_whole(fo, planted, monkeypatch, lock_home):
    first = build_browse_dataset(planted["out"], name="planted-keep")
    views = fo.load_dataset("planted-keep").list_saved_views()

    def broken(*args, **kwargs):
        raise RuntimeError("killed while saving views")

    monkeypatch.setattr("detforge.inspection.build.save_views", broken)
    with pytest.raises(RuntimeError, match="killed while saving views"):
        build_browse_dataset(planted["out"], name="planted-keep")
    kept = fo.load_dataset("planted-keep")
    assert len(kept) == first.samples and kept.list_saved_views() == views
    assert [n for n in fo.list_datasets() if n.split(".")[0] == "planted-keep"] == ["planted-keep"]


def test_a_port_taken_by_another_program_is_one_line_at_once(planted):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        run = _browse(str(planted["out"]), "--port", str(port))
        _, stderr = run.communicate(timeout=120)
    assert run.returncode == 1
    assert time.monotonic() - started < 20
    assert stderr.strip().splitlines() == [
        f"error: port {port} is in use by another program (Address already in use): pass "
        "--port with a free port"
    ]
