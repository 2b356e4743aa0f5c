"""Fixtures of the build tests: a tiny generated COCO-format source with its own taxonomy,
a recipe for it, and one build of it shared by the session."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
CLASSES = ["cat", "dog", "kite"]
# source category id -> (name, unified class name or "" for dropped)
SOURCE_CLASSES = {1: ("cat", "cat"), 2: ("dog", "dog"), 3: ("kite", "kite"), 4: ("blur", "")}


def _image(path: Path, seed: int, size: tuple[int, int]) -> None:
    """A JPEG of smooth random blobs (distinct perceptual hashes per seed)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(small).resize(size, Image.BICUBIC).save(path, quality=90)


def _coco(images: list[dict], annotations: list[dict]) -> dict:
    categories = [{"id": i, "name": n} for i, (n, _) in SOURCE_CLASSES.items()]
    return {"images": images, "annotations": annotations, "categories": categories}


def write_tiny_root(root: Path) -> Path:
    """Write the tiny source, holdout set, taxonomy and recipe under ``root``; return the
    recipe file. Planted: train image 100 is a byte copy of val image 200 (own split), and
    train image 101 is a byte copy of the holdout's image 900."""
    splits: dict[str, tuple[list[dict], list[dict]]] = {"train": ([], []), "val": ([], [])}
    ann_id = 1
    for split, ids in (("train", range(100, 124)), ("val", range(200, 208))):
        images, annotations = splits[split]
        for image_id in ids:
            width, height = (64, 48) if image_id % 2 else (48, 64)
            name = f"{image_id:012d}.jpg"
            seed = 200 if image_id == 100 else 900 if image_id == 101 else image_id
            _image(root / "src" / f"{split}2017" / name, seed, (width, height))
            images.append({"id": image_id, "file_name": name, "width": width, "height": height})
            for k in range(image_id % 4 + 1):
                x, y = 2 + 3 * k, 1 + 2 * k
                annotations.append(
                    {
                        "id": ann_id,
                        "image_id": image_id,
                        "category_id": (image_id + k) % 4 + 1,
                        "bbox": [x, y, 10.5 + k, 12.0],
                        "area": (10.5 + k) * 12.0,
                        "iscrowd": int(k == 3),
                    }
                )
                ann_id += 1
    for split, (images, annotations) in splits.items():
        file = root / "src" / "annotations" / f"instances_{split}2017.json"
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(json.dumps(_coco(images, annotations)))
    _image(root / "evalset" / "val2017" / "000000000900.jpg", 900, (48, 64))
    (root / "evalset" / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "evalset" / "annotations" / "instances_val2017.json").write_text(
        json.dumps(
            _coco(
                [{"id": 900, "file_name": "000000000900.jpg", "width": 48, "height": 64}],
                [
                    {
                        "id": 1,
                        "image_id": 900,
                        "category_id": 1,
                        "bbox": [1, 1, 5, 5],
                        "area": 25,
                        "iscrowd": 0,
                    }
                ],
            )
        )
    )
    taxonomy = root / "taxonomy"
    taxonomy.mkdir(exist_ok=True)
    (taxonomy / "classes.csv").write_text(
        "id,name,synonyms,synset,definition,parents,part_of,frequency\n"
        + "".join(f"{i},{n},,,,,,\n" for i, n in enumerate(CLASSES))
    )
    (taxonomy / "mapping.csv").write_text(
        "source,source_label,source_name,label,relation,provenance,score,note\n"
        + "".join(
            f"coco,{i},{n},{u},{'exact' if u else 'drop'},manual,,\n"
            for i, (n, u) in SOURCE_CLASSES.items()
        )
    )
    recipe = root / "tiny.yaml"
    recipe.write_text(
        f"""name: tiny
taxonomy: {taxonomy}
sources:
  - name: coco
    format: coco
    root: src
    splits: [train, val]
priority: [coco]
dedup: {{exact: true, near: true, phash_distance: 4}}
decontaminate:
  holdouts:
    evalset: {{annotations: evalset/annotations/instances_val2017.json, images: evalset/val2017}}
exports:
  hub: {{embed_images: true, shard_images: 10}}
"""
    )
    return recipe


def run_cli(*args: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess:
    """``detforge`` in a subprocess (the way a user runs it)."""
    return subprocess.run(
        [sys.executable, "-c", "from detforge.cli import main; main()", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "COLUMNS": "400", **(env or {})},  # rich wraps at terminal width
        **kwargs,
    )


def tiny_build_args(tiny_root: Path, out: Path, *extra: str) -> list[str]:
    """``build-dataset`` arguments of the tiny recipe into ``out`` (one worker)."""
    recipe = ["--recipe", str(tiny_root / "tiny.yaml"), "--root", str(tiny_root)]
    return ["build-dataset", *recipe, "--out", str(out), "--workers", "1", *extra]


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    write_tiny_root(root)
    return root


@pytest.fixture(scope="session")
def tiny_build(tiny_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uninterrupted CLI build of the tiny recipe (the reference for other tests)."""
    out = tmp_path_factory.mktemp("tiny-build") / "out"
    done = run_cli(*tiny_build_args(tiny_root, out))
    assert done.returncode == 0, done.stdout + done.stderr
    return out


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
    pytest.importorskip("ray")
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
