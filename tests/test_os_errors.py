"""Operating-system failures are one line naming the path and the cause, exit status 1, no
traceback unless --debug: disk full (a real small tmpfs where the machine allows mounting
one, and always a simulated ENOSPC raised where polars raises it), a file-size limit (a real
EFBIG from the kernel), permission denied, a path through a file."""

from __future__ import annotations

import errno
import os
import re
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from detforge.cli import main
from detforge.oserrors import describe
from tests.builders.conftest import REPO, write_tiny_root


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny-os")
    write_tiny_root(root)
    return root


def _args(tiny: Path, out: Path) -> list[str]:
    recipe = ["--recipe", str(tiny / "tiny.yaml"), "--root", str(tiny)]
    return ["build-dataset", *recipe, "--out", str(out), "--workers", "1"]


def _cli_raw(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "300"}
    return subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, env=env, timeout=300, **kwargs
    )


def _cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return _cli_raw([sys.executable, "-m", "detforge.cli", *args], **kwargs)


def _in_process(monkeypatch, capsys, *args: str) -> str:
    """Run ``detforge ARGS`` through its entry point; return its single stderr line."""
    monkeypatch.setattr(sys, "argv", ["detforge", *args])
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main()
    assert stop.value.code == 1
    [line] = capsys.readouterr().err.strip().splitlines()
    return line


def test_describe_names_path_and_cause():
    polars_full = pl.exceptions.ComputeError(
        "parquet: File out of specification: underlying IO error: No space left on device "
        "(os error 28)"
    )
    polars_full.output_path = "/o/.stages/read-1"
    assert describe(polars_full) == "/o/.stages/read-1: No space left on device (ENOSPC)"
    arrow = OSError(28, "Error writing bytes to file. Detail: [errno 28] No space left on device")
    assert describe(arrow) == "No space left on device (ENOSPC)"
    in_temporary = OSError(errno.EDQUOT, "Disk quota exceeded", "/o/..hub.x1.tmp.y2.tmp/data/a")
    in_temporary.output_path = "/o/hub"
    assert describe(in_temporary) == "/o/hub: Disk quota exceeded (EDQUOT)"
    denied = PermissionError(errno.EACCES, "Permission denied", "/data/a.json")
    assert describe(denied) == "/data/a.json: Permission denied (EACCES)"
    moved = OSError(errno.EXDEV, "Invalid cross-device link", "/a", None, "/b")
    assert describe(moved) == "/a -> /b: Invalid cross-device link (EXDEV)"
    assert describe(OSError("image file is truncated")) == "image file is truncated"
    wrapped = RuntimeError("worker failed")
    wrapped.__cause__ = denied
    assert describe(wrapped) == "/data/a.json: Permission denied (EACCES)"
    assert describe(ValueError("not an OS failure")) is None


def test_a_path_through_a_file_is_one_line_and_debug_shows_the_traceback(tiny, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    done = _cli(*_args(tiny, blocker / "out"))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: {blocker / 'out'}: Not a directory (ENOTDIR)"
    ]
    debug = _cli("--debug", *_args(tiny, blocker / "out"))
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert "NotADirectoryError" in debug.stderr


def _can_mount_tmpfs() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-r", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
        capture_output=True,
    )
    return probe.returncode == 0


@pytest.mark.skipif(
    not _can_mount_tmpfs(),
    reason="no user+mount namespace to mount a tmpfs in (the simulated ENOSPC test runs instead)",
)
def test_disk_full_on_a_small_tmpfs_is_one_line(tiny, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    command = [sys.executable, "-m", "detforge.cli", *_args(tiny, disk / "out")]
    script = f'mount -t tmpfs -o size=150k tmpfs {disk} && exec "$@"'
    done = _cli_raw(["unshare", "-r", "-m", "sh", "-c", script, "sh", *command])
    assert done.returncode == 1, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert re.fullmatch(
        rf"error: {re.escape(str(disk / 'out'))}/\S+: No space left on device \(ENOSPC\)", line
    ), line


def test_disk_full_simulated_where_polars_raises_it(tiny, tmp_path, monkeypatch, capsys):
    def full(self, file, *args, **kwargs):
        raise pl.exceptions.ComputeError(
            "parquet: File out of specification: underlying IO error: No space left on device "
            "(os error 28)"
        )

    monkeypatch.setattr(pl.DataFrame, "write_parquet", full)
    out = tmp_path / "out"
    line = _in_process(monkeypatch, capsys, *_args(tiny, out))
    assert re.fullmatch(
        rf"error: {re.escape(str(out))}/\.stages/read-[0-9a-f]+: No space left on device "
        r"\(ENOSPC\)",
        line,
    ), line
    assert not [p for p in (out / ".stages").iterdir()], "nothing half-written is left"


def test_file_size_limit_is_one_line(tiny, tmp_path):
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    out = tmp_path / "out"
    done = _cli(*_args(tiny, out), preexec_fn=limit)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"error: {out / 'report'}: File too large (EFBIG)"]
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_permission_denied_is_one_line(tiny, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:  # the real thing
        folder.chmod(0o555)
        done = _cli(*_args(tiny, folder / "out"))
        folder.chmod(0o755)
        assert done.returncode == 1
        [line] = done.stderr.strip().splitlines()
    else:  # root is never denied: simulate it where the build first creates OUT
        real_mkdir = Path.mkdir

        def denied(self, *args, **kwargs):
            if self == folder / "out":
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
            return real_mkdir(self, *args, **kwargs)

        monkeypatch.setattr(Path, "mkdir", denied)
        line = _in_process(monkeypatch, capsys, *_args(tiny, folder / "out"))
    assert line == f"error: {folder / 'out'}: Permission denied (EACCES)"


def test_a_truncated_table_is_one_line_naming_it(tmp_path):
    from detforge.probes.synthetic import shapes_dataset

    shapes_dataset(tmp_path / "images", images=4, seed=0).write(tmp_path / "tables")
    table = tmp_path / "tables" / "objects.parquet"
    table.write_bytes(table.read_bytes()[:200])
    (tmp_path / "preds.json").write_text("[]")
    done = _cli("evaluate", str(tmp_path / "tables"), "-p", str(tmp_path / "preds.json"))
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {table}: unreadable (parquet: "), line
