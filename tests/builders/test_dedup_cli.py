"""`detforge dedup FOLDER [--against EVAL] --pairs-out PAIRS.csv` on generated photos."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from detforge.builders.dedup import synth
from tests.builders.conftest import run_cli


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("folders")
    rng = np.random.default_rng(12)
    photos = [synth.photo(rng, 320, 240) for _ in range(6)]
    data, evals = root / "data", root / "eval"
    for k, img in enumerate(photos):
        synth.save(img, data / f"p{k}.jpg")
    synth.save(synth.resized(photos[1], 0.5), data / "sub" / "p1_small.jpg", quality=70)
    (data / "sub" / "deeper").mkdir(parents=True)
    shutil.copyfile(data / "p2.jpg", data / "sub" / "deeper" / "p2_copy.jpg")
    synth.save(photos[3][:, ::-1], data / "p3_mirror.jpg")  # a look-alike, not a copy
    (data / "broken.jpg").write_bytes(b"not a jpeg")
    (data / "notes.txt").write_text("not an image")
    synth.save(synth.brightened(photos[4], 10), evals / "val" / "e4.jpg", quality=80)
    synth.save(synth.photo(rng, 320, 240), evals / "val" / "other.jpg")
    return data, evals


def test_pairs_within_a_folder(folders: tuple[Path, Path], tmp_path: Path) -> None:
    data, _ = folders
    out, groups = tmp_path / "pairs.csv", tmp_path / "groups.csv"
    done = run_cli("dedup", str(data), "--pairs-out", str(out), "--groups-out", str(groups))
    assert done.returncode == 0, done.stderr
    pairs = pl.read_csv(out)
    assert pairs.columns == ["a", "b", "distance", "dhash_distance", "exact"]
    assert pairs.select("a", "b").rows() == [
        ("p1.jpg", "sub/p1_small.jpg"),
        ("p2.jpg", "sub/deeper/p2_copy.jpg"),
    ]
    assert pairs["exact"].to_list() == [False, True]
    assert pairs["distance"][1] == 0 and pairs["distance"][0] <= 10
    kept = pl.read_csv(groups).filter(pl.col("action") == "duplicate")
    # the larger picture is kept; of two identical files the first by name
    assert kept.select("file", "kept").rows() == [
        ("sub/p1_small.jpg", "p1.jpg"),
        ("sub/deeper/p2_copy.jpg", "p2.jpg"),
    ]
    # the unreadable file is listed, never skipped silently; other files are counted
    assert "unreadable: " in done.stderr and "broken.jpg: not an image" in done.stderr
    assert "1 other files ignored" in done.stderr
    bad = pl.read_csv(tmp_path / "pairs.unreadable.csv")
    assert bad["file"].to_list() == ["broken.jpg"]


def test_pairs_against_an_eval_folder(folders: tuple[Path, Path], tmp_path: Path) -> None:
    data, evals = folders
    out = tmp_path / "contaminated.csv"
    done = run_cli("dedup", str(data), "--against", str(evals), "--pairs-out", str(out))
    assert done.returncode == 0, done.stderr
    pairs = pl.read_csv(out)
    assert pairs.select("a", "b").rows() == [("p4.jpg", "val/e4.jpg")]
    assert "1 file(s) of" in done.stdout


def test_bad_folder_is_one_line(tmp_path: Path) -> None:
    done = run_cli("dedup", str(tmp_path / "nope"), "--pairs-out", str(tmp_path / "p.csv"))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"error: {tmp_path / 'nope'}: not a folder"]
    assert not (tmp_path / "p.csv").exists()
