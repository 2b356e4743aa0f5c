"""`--engine ray` on an existing cluster: a real local head started with `ray start`, the
sample built through it, outputs byte-identical to the process engine's."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.builders.conftest import REPO, run_cli
from tests.builders.test_build_pipeline import output_hashes

pytest.importorskip("ray")
#: a throwaway cluster on the loopback: no usage stats, no token (a token in ~/.ray would
#: otherwise switch the head to token auth)
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_head():
    """``ray start --head --num-cpus 2 --block`` in a short temp dir; stopped by its pid
    (SIGINT makes it shut down the processes it started), never by `ray stop`, which
    would stop every Ray on the machine."""
    temp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's socket paths are limited
    port = _free_port()
    env = {
        **os.environ,
        **RAY_ENV,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("RAY_ADDRESS", None)
    head = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ray.scripts.scripts",
            "start",
            "--head",
            "--block",
            "--num-cpus=2",
            f"--port={port}",
            "--node-ip-address=127.0.0.1",
            "--include-dashboard=false",
            "--object-store-memory=100000000",
            f"--temp-dir={temp}",
            "--disable-usage-stats",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=REPO,
    )
    started = threading.Event()
    lines: list[str] = []

    def read() -> None:
        for line in head.stdout:
            lines.append(line)
            if "Ray runtime started" in line:
                started.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        if not started.wait(120):
            pytest.fail("ray start did not come up:\n" + "".join(lines[-30:]))
        yield f"127.0.0.1:{port}"
    finally:
        head.send_signal(signal.SIGINT)
        try:
            head.wait(60)
        except subprocess.TimeoutExpired:
            head.kill()
        time.sleep(1)
        _kill_leftovers(temp)


def _kill_leftovers(temp: str) -> None:
    """Processes of this head still running (their command line names its temp dir)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if temp.encode() in cmdline:
            with contextlib.suppress(OSError):
                os.kill(int(pid), signal.SIGKILL)


def test_build_on_an_existing_ray_cluster_equals_the_process_engine(
    sample_build: Path, ray_head: str, tmp_path: Path
) -> None:
    out = tmp_path / "bigdet"
    root = sample_build / ".sample"  # the same --root: absolute roots appear in the outputs
    env = {**RAY_ENV, "RAY_ADDRESS": ""}
    done = run_cli(
        "build-dataset",
        "bigdet",
        "--root",
        str(root),
        "--out",
        str(out),
        "--engine",
        "ray",
        "--ray-address",
        ray_head,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Started a local Ray instance" not in done.stdout + done.stderr
    reference = output_hashes(sample_build)
    assert len(reference) > 20 and output_hashes(out) == reference
