"""SIGKILL a build at several points; the next run resumes and ends byte-identical, and a
killed build never leaves a visible file that differs from the finished one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from detforge.builders.pipeline import PAUSE_ENV
from detforge.outputs import MANIFEST
from tests.builders.conftest import REPO, tiny_build_args
from tests.builders.test_build_pipeline import output_hashes


def _start(tiny_root: Path, out: Path, pause: str | None) -> subprocess.Popen:
    env = {**os.environ, "COLUMNS": "400"}
    env.pop(PAUSE_ENV, None)
    if pause:
        env[PAUSE_ENV] = pause
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from detforge.cli import main; main()",
            *tiny_build_args(tiny_root, out),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stderr(process: subprocess.Popen) -> str:
    out = Path(process.args[process.args.index("--out") + 1])
    return (out.parent / "stderr.txt").read_text()


def _kill_when(process: subprocess.Popen, ready, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ready() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if process.poll() is not None:
        raise AssertionError(f"the build ended before it could be killed: {_stderr(process)}")
    process.send_signal(signal.SIGKILL)
    process.wait()


def _assert_no_partial(out: Path, reference: dict[str, str]) -> None:
    """Every visible file left by a killed run is exactly the finished build's file."""
    for rel, digest in output_hashes(out).items():
        assert reference.get(rel) == digest, f"{rel} looks complete but is not the final file"


def test_sigkill_at_stage_boundaries_and_mid_stage(tiny_root: Path, tiny_build: Path, tmp_path):
    reference = output_hashes(tiny_build)
    out = tmp_path / "out"
    stages = out / ".stages"
    # 1. killed while the dedup stage waits to start: read, map and split are stored
    run = _start(tiny_root, out, "dedup:60")
    _kill_when(run, lambda: len(list(stages.glob("split-*"))) == 1)
    assert sorted(p.name.split("-")[0] for p in stages.iterdir() if not p.name.startswith(".")) == [
        "map",
        "read",
        "split",
    ]
    _assert_no_partial(out, reference)
    # 2. resumes, then killed between the COCO and the Hub export
    run = _start(tiny_root, out, "export-hub:60")
    _kill_when(run, lambda: (out / "coco" / MANIFEST).is_file())
    assert (out / "coco" / "train.json").is_file() and not (out / "hub").exists()
    _assert_no_partial(out, reference)
    # 3. killed in the middle of the Hub export (its temporary folder exists, hub/ does not)
    run = _start(tiny_root, out, "export-hub val:60")
    _kill_when(run, lambda: any(out.glob(".*hub.*.tmp/data/train-*.parquet")))
    assert not (out / "hub").exists()
    _assert_no_partial(out, reference)
    # 4. the next run finishes; its outputs equal the uninterrupted build's, leftovers are gone
    run = _start(tiny_root, out, None)
    assert run.wait(timeout=120) == 0, _stderr(run)
    assert output_hashes(out) == reference
    assert not [p for p in out.glob(".*.tmp")]
