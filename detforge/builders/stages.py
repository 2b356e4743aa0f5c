"""The stage cache: each pipeline stage's output, keyed by what it depends on.

A stage's output (a :class:`DetDataset` plus named report frames) lives in
``OUT/.stages/<stage>-<hash>/`` where the hash covers the stage name, its
config, the code that computes it and its inputs' fingerprints (the previous
stage's hash). The directory is written under a temporary name and renamed
into place, so it exists only when complete: a rerun after a crash resumes
from the last finished stage, and a changed setting re-runs only the stages
downstream of it. Its last file, ``checksums.json``, holds a content hash of
every other one: a cached stage whose files no longer match (a disk error, a
partial copy) is rebuilt, with a note, instead of failing every rerun.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import polars as pl
import pyarrow.parquet as pq
import xxhash

import detforge
from detforge.atomic import atomic_path
from detforge.dataset import DetDataset

#: sort keys that make every table's row order a function of its content
SORT_KEYS: dict[str, list[str]] = {
    "images": ["image_id"],
    "objects": ["image_id", "object_id"],
    "image_labels": ["image_id", "source", "source_label", "status", "label"],
    "label_spaces": ["source", "source_label", "label"],
    "categories": ["id"],
    "source_categories": ["source", "source_label"],
    "quarantine": ["source", "file", "record", "field", "reason"],
}

StageFn = Callable[[], tuple[DetDataset, dict[str, pl.DataFrame]]]


def sorted_by(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """``frame`` stably sorted by ``keys`` (nulls last); ``frame`` itself when already in
    that order, as a stage that filters its sorted input leaves it: a sort copies every
    column, and at a stage's end the copy would sit beside its input and output."""
    order = frame.select(pl.arg_sort_by(keys, nulls_last=True, maintain_order=True)).to_series()
    in_order = (order == pl.int_range(0, frame.height, dtype=order.dtype, eager=True)).all()
    return frame if in_order else frame[order]


def canonical(dataset: DetDataset) -> DetDataset:
    """``dataset`` with every table sorted by content and in one chunk (byte-stable parquet)."""
    tables = {
        name: sorted_by(frame, SORT_KEYS[name]).rechunk()
        for name, frame in dataset.tables().items()
    }
    return dataset.replace(**tables)


def canonical_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """A report frame sorted by all its sortable columns, in one chunk."""
    keys = [c for c, t in frame.schema.items() if not isinstance(t, pl.List | pl.Array | pl.Struct)]
    return (frame.sort(keys, nulls_last=True, maintain_order=True) if keys else frame).rechunk()


def code_version(*modules: ModuleType) -> str:
    """detforge's version plus a hash of the modules' source (every ``.py`` of a package)."""
    digest = hashlib.sha256(detforge.__version__.encode())
    for module in modules:
        if hasattr(module, "__path__"):
            files = sorted(p for d in module.__path__ for p in Path(d).rglob("*.py"))
        else:
            files = [Path(module.__file__)]
        for file in files:
            digest.update(file.name.encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


_CHUNK = 8 << 20


def content_hash(path: Path) -> str:
    """xxh3-128 of a file's bytes (about 9 GB/s of CPU: disk speed decides its cost)."""
    digest = xxhash.xxh3_128()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_fingerprints(paths: list[Path]) -> list[list[Any]]:
    """``[path, size, mtime_ns, content hash]`` of each existing file (a missing one
    fingerprints as absent). The hash catches an edit that keeps the size and restores the
    mtime; these are annotation files (image files are fingerprinted by size and mtime only,
    in the dedup hash cache)."""
    prints: list[list[Any]] = []
    for path in sorted(set(paths)):
        try:
            stat = path.stat()
            prints.append([str(path), stat.st_size, stat.st_mtime_ns, content_hash(path)])
        except FileNotFoundError:
            prints.append([str(path), None, None, None])
    return prints


ANNOTATION_SUFFIXES = {".json", ".jsonl", ".csv", ".txt", ".parquet", ".xml", ".yaml", ".yml"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
_PEEK = 64


def _annotation_entries(folder: Path) -> list[Path]:
    return sorted(
        Path(entry.path)
        for entry in os.scandir(folder)
        if entry.is_file()
        and not entry.name.startswith(".")
        and Path(entry.name).suffix.lower() in ANNOTATION_SUFFIXES
    )


def _is_image_folder(folder: Path) -> bool:
    """True when the folder's first entries are all images or sub-folders (patchN/)."""
    with os.scandir(folder) as entries:
        for count, entry in enumerate(entries):
            if count >= _PEEK:
                break
            if entry.is_file() and Path(entry.name).suffix.lower() not in IMAGE_SUFFIXES:
                return False
    return True


def annotation_files(root: Path) -> list[Path]:
    """Annotation-like files (JSON, CSV, ...) in ``root`` and its immediate sub-folders
    (COCO keeps them in ``annotations/``). Image folders are recognised from their first
    entries and never listed in full, so fingerprinting stays cheap on 2M-image trees."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        return []
    files = _annotation_entries(root)
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if not _is_image_folder(sub):
            files += _annotation_entries(sub)
    return files


def stage_hash(stage: str, config: Any, code: str, inputs: list[Any]) -> str:
    """The cache key of one stage run."""
    blob = json.dumps(
        {"stage": stage, "config": config, "code": code, "inputs": inputs},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class StageResult:
    """One stage's output. The dataset is read from the cache only when asked for, and
    :meth:`release` drops it from memory once the next stage has its own (a resumed build
    does not load every finished stage, and a build holds one or two stages, not all)."""

    stage: str
    key: str
    folder: Path | None
    loaded: DetDataset | None = None
    reports: dict[str, pl.DataFrame] = field(default_factory=dict)
    cached: bool = False

    @property
    def dataset(self) -> DetDataset:
        if self.loaded is None:
            if self.folder is None:
                raise ValueError(f"stage {self.stage}: no dataset")
            self.loaded = DetDataset.read(self.folder / "dataset")
        return self.loaded

    def release(self) -> None:
        if self.folder is not None:
            self.loaded = None

    def rows(self, table: str) -> int:
        """Row count of one table, from the parquet footer when the dataset is not loaded."""
        if self.loaded is not None:
            return getattr(self.loaded, table).height
        return pq.read_metadata(self.folder / "dataset" / f"{table}.parquet").num_rows


CHECKSUMS = "checksums.json"


def write_checksums(folder: Path) -> None:
    """Record the size and content hash of every file under ``folder`` (written last)."""
    files = {
        path.relative_to(folder).as_posix(): [path.stat().st_size, content_hash(path)]
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
    (folder / CHECKSUMS).write_text(json.dumps(files, indent=1, sort_keys=True) + "\n")


def checksum_problem(folder: Path) -> str | None:
    """Why ``folder`` no longer holds what :func:`write_checksums` recorded, or None."""
    try:
        recorded = json.loads((folder / CHECKSUMS).read_text())
    except FileNotFoundError:
        return f"{CHECKSUMS} is missing"
    except (OSError, ValueError) as error:
        return f"{CHECKSUMS} is unreadable ({error})"
    for rel, (size, digest) in sorted(recorded.items()):
        path = folder / rel
        try:
            if path.stat().st_size != size:
                return f"{rel} changed size"
            if content_hash(path) != digest:
                return f"{rel} does not match its checksum"
        except OSError as error:
            return f"{rel}: {error.strerror or error}"
    return None


class StageCache:
    """``OUT/.stages``: run a stage or load its finished output (checked against its
    checksums; a damaged one is rebuilt and reported through ``note``)."""

    def __init__(self, out: Path, note: Callable[[str], None] | None = None):
        self.root = Path(out) / ".stages"
        self.note = note or (lambda message: None)

    def path(self, stage: str, key: str) -> Path:
        return self.root / f"{stage}-{key}"

    def run(self, stage: str, key: str, compute: StageFn) -> StageResult:
        """Load ``stage``'s output for ``key`` if complete, else compute, store and return it."""
        folder = self.path(stage, key)
        if folder.is_dir():
            problem = checksum_problem(folder)
            if problem is None:
                reports = {
                    file.stem: pl.read_parquet(file)
                    for file in sorted(folder.glob("reports/*.parquet"))
                }
                return StageResult(stage, key, folder, None, reports, True)
            self.note(f"stage {stage}: its cache {folder} is damaged ({problem}); rebuilding it")
            shutil.rmtree(folder)
        dataset, reports = compute()
        dataset = canonical(dataset)
        reports = {name: canonical_frame(frame) for name, frame in reports.items()}
        self._store(folder, dataset, reports)
        self._prune(stage, key)
        return StageResult(stage, key, folder, dataset, reports, False)

    def _store(self, folder: Path, dataset: DetDataset, reports: dict[str, pl.DataFrame]) -> None:
        with atomic_path(folder) as tmp:
            tmp.mkdir(parents=True)
            dataset.write(tmp / "dataset")
            (tmp / "reports").mkdir()
            for name, frame in reports.items():
                frame.write_parquet(tmp / "reports" / f"{name}.parquet", statistics=False)
            write_checksums(tmp)

    def _prune(self, stage: str, keep: str) -> None:
        """Remove this stage's outputs for other keys (they can only be recomputed, not resumed
        into: a later stage's key names its input stage's key)."""
        for old in self.root.glob(f"{stage}-*"):
            if old.is_dir() and old.name != f"{stage}-{keep}" and not old.name.startswith("."):
                shutil.rmtree(old, ignore_errors=True)
