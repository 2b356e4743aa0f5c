"""A build writes only what it owns: it refuses an --out among its inputs, never deletes a
file it did not write, holds OUT's lock (a second build stops at once, a dead holder's lock
is taken over), never reuses another configuration's export, and rebuilds a damaged stage
cache with a note."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

from detforge.builders.pipeline import PAUSE_ENV, build
from detforge.builders.recipe import load_recipe
from detforge.lock import LOCK_NAME
from detforge.outputs import MANIFEST
from tests.builders.conftest import REPO, run_cli, tiny_build_args
from tests.builders.test_build_pipeline import output_hashes


def tree(folder: Path) -> dict[str, str]:
    """Every entry under ``folder``, hidden ones included: files by content, links by target."""
    found = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        if path.is_symlink():
            found[rel] = "->" + str(path.readlink())
        elif path.is_file():
            found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            found[rel] = "dir"
    return found


def copy_build(build_dir: Path, to: Path) -> Path:
    """A copy of a finished build (mtimes and links kept, so it is current as it stands)."""
    shutil.copytree(build_dir, to, symlinks=True)
    return to


def start(tiny_root: Path, out: Path, pause: str, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "COLUMNS": "400", PAUSE_ENV: pause}
    command = [sys.executable, "-m", "detforge.cli", *tiny_build_args(tiny_root, out, *extra)]
    return subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def wait_for(process: subprocess.Popen, ready, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            raise AssertionError(f"the build ended early: {process.stderr.read()}")
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def one_error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


def test_out_among_the_inputs_is_refused_and_nothing_is_written(tiny_root, tmp_path):
    # the reported case: `detforge sample --out D && detforge build-dataset bigdet --root D --out D`
    root = tmp_path / "D"
    assert run_cli("sample", "--out", str(root)).returncode == 0
    before = tree(root)
    for out, words in [
        (root, f"--out {root} contains the source objects365 ({root / 'objects365'})"),
        (root / "lvis", f"--out {root / 'lvis'} is the source lvis"),
        (root / "openimages" / "out", "lies inside the source openimages"),
        (root / "coco" / "val2017", "is the images of holdout coco_val2017"),
    ]:
        args = ["build-dataset", "bigdet", "--root", str(root), "--out", str(out)]
        line = one_error_line(run_cli(*args))
        assert words in line and "choose another --out" in line, line
        assert tree(root) == before, "a refused build wrote or deleted something"
    # a holdout's annotation file inside --out
    line = one_error_line(run_cli(*tiny_build_args(tiny_root, tiny_root / "evalset")))
    assert "contains the holdout evalset" in line
    assert not (tiny_root / "evalset" / LOCK_NAME).exists()


def test_files_the_build_did_not_write_are_kept_and_block_replacement(
    tiny_root, tiny_build, tmp_path
):
    out = copy_build(tiny_build, tmp_path / "out")
    (out / "report" / "notes.txt").write_text("my notes")
    (out / "notes.md").write_text("mine too")
    (out / ".scratch.tmp").write_text("a hidden file of mine")
    before = tree(out)
    # a changed setting would rewrite report/: refused, at once, and nothing touched
    line = one_error_line(run_cli(*tiny_build_args(tiny_root, out, "--set", "split.mode=hash")))
    assert f"{out / 'report'} cannot be replaced: 1 entry not written here (notes.txt;" in line
    assert "Nothing was deleted" in line
    assert tree(out) == before
    # with the note moved away the build runs; what else the user keeps in OUT stays
    (out / "report" / "notes.txt").unlink()
    done = run_cli(*tiny_build_args(tiny_root, out, "--set", "split.mode=hash"))
    assert done.returncode == 0, done.stderr
    assert (out / "notes.md").read_text() == "mine too"
    assert (out / ".scratch.tmp").read_text() == "a hidden file of mine"


def test_a_folder_of_the_user_named_like_an_export_is_refused(tiny_root, tmp_path):
    out = tmp_path / "out"
    (out / "coco" / "annotations").mkdir(parents=True)
    (out / "coco" / "annotations" / "instances_train2017.json").write_text("{}")
    line = one_error_line(run_cli(*tiny_build_args(tiny_root, out)))
    assert f"{out / 'coco'} cannot be replaced: 2 entries not written here" in line
    assert "it has no manifest" in line
    assert (out / "coco" / "annotations" / "instances_train2017.json").read_text() == "{}"
    assert not (out / ".stages").exists(), "refused before the first stage"


def test_a_rerun_never_reuses_another_configurations_export(tiny_root, tiny_build, tmp_path):
    reference = output_hashes(tiny_build)
    out = copy_build(tiny_build, tmp_path / "out")
    first_key = json.loads((out / "hub" / MANIFEST).read_text())["key"]
    # another configuration's hub/ is renamed into place, then the build is killed
    other = start(tiny_root, out, "export-hub written:60", "--set", "exports.hub.shard_images=5")
    wait_for(other, lambda: json.loads((out / "hub" / MANIFEST).read_text())["key"] != first_key)
    other.send_signal(signal.SIGKILL)
    other.wait()
    assert output_hashes(out) != reference
    # the first configuration again: hub/ is rewritten, not reused
    done = run_cli(*tiny_build_args(tiny_root, out))
    assert done.returncode == 0, done.stderr
    assert re.search(r"export-hub\s*│[\s│]*written", done.stdout), done.stdout
    assert output_hashes(out) == reference


def test_one_build_per_out_and_a_dead_holder_is_taken_over(tiny_root, tiny_build, tmp_path):
    out = tmp_path / "out"
    first = start(tiny_root, out, "dedup:60")
    wait_for(first, lambda: any((out / ".stages").glob("split-*")))
    started = time.monotonic()
    line = one_error_line(run_cli(*tiny_build_args(tiny_root, out)))
    assert time.monotonic() - started < 30, "the second build did not stop at once"
    holder = f"`detforge build-dataset` (pid {first.pid} on {socket.gethostname()}, since "
    assert line.startswith(f"error: {out} is being written by {holder}"), line
    first.send_signal(signal.SIGKILL)
    first.wait()
    done = run_cli(*tiny_build_args(tiny_root, out))
    assert done.returncode == 0, done.stderr
    assert f"note: {out}: {holder}" in done.stderr
    assert "ended without releasing its lock; taking it over" in done.stderr
    assert output_hashes(out) == output_hashes(tiny_build)
    assert not (out / LOCK_NAME).exists()


def test_a_damaged_stage_cache_is_rebuilt_with_a_note(tiny_root, tiny_build, tmp_path):
    out = copy_build(tiny_build, tmp_path / "out")
    flipped = next(out.glob(".stages/decontaminate-*/dataset/objects.parquet"))
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte changed
    flipped.write_bytes(bytes(data))
    truncated = next(out.glob(".stages/dedup-*/dataset/images.parquet"))
    truncated.write_bytes(truncated.read_bytes()[:100])
    done = run_cli(*tiny_build_args(tiny_root, out))
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if line.startswith("note: ")]
    assert len(notes) == 2, done.stderr
    assert "stage dedup: its cache" in notes[0] and "images.parquet changed size" in notes[0]
    assert "stage decontaminate: its cache" in notes[1]
    assert "objects.parquet does not match its checksum); rebuilding it" in notes[1]
    assert output_hashes(out) == output_hashes(tiny_build)


def test_a_damaged_image_hash_cache_is_hashed_again_with_a_note(tiny_root, tiny_build, tmp_path):
    out = copy_build(tiny_build, tmp_path / "out")
    cache = out / ".cache" / "dedup" / "image_hashes.parquet"
    cache.write_bytes(cache.read_bytes()[:100])
    for stage in out.glob(".stages/dedup-*"):  # so that dedup runs and reads the cache
        shutil.rmtree(stage)
    done = run_cli(*tiny_build_args(tiny_root, out))
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1 and "image_hashes.parquet: unreadable" in notes[0], done.stderr
    assert "hashing the images again" in notes[0]
    assert pl.read_parquet(cache).height > 0  # rewritten whole
    assert output_hashes(out) == output_hashes(tiny_build)


def test_same_size_edit_with_the_old_mtime_restored_is_noticed(tiny_root, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(tiny_root, root)
    recipe = load_recipe(root / "tiny.yaml", ["exports.hub.enabled=false", "exports.coco=false"])
    first = build(recipe, tmp_path / "out", root=root, workers=1)
    file = root / "src" / "annotations" / "instances_val2017.json"
    before = file.stat()
    text = file.read_text()
    edited = text.replace('"bbox": [2', '"bbox": [3', 1)
    assert edited != text and len(edited) == len(text)
    file.write_text(edited)
    os.utime(file, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (file.stat().st_size, file.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    again = build(recipe, tmp_path / "out", root=root, workers=1)
    cached = {stage: hit for stage, _, hit in again.stages}
    assert not cached["read"]
    assert not again.dataset.objects.equals(first.dataset.objects)
