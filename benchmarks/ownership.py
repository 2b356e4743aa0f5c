"""What owning an output costs: content hashes of annotation files, stage-cache checksums,
export manifests and the writer lock, measured here and scaled to BigDetection.

- annotation fingerprints: xxh3-128 over a generated file of ``--gb`` GB, read from disk
  (its pages dropped from the cache first) and again from the page cache;
- stage checksums: a box table of ``--boxes`` boxes in the stage cache's layout, written,
  checksummed and verified; scaled to 36M boxes;
- export manifests: listing, writing and checking a folder of ``--files`` files (a BigDetection
  Hub export has ~350 shards of 10,000 images);
- the writer lock: acquire + release.

Run: ``python benchmarks/ownership.py [--gb 2] [--boxes 3600000] [--files 20000] [--dir DIR]``
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
from rich.console import Console
from rich.table import Table

from detforge.builders.stages import checksum_problem, content_hash, write_checksums
from detforge.lock import output_lock
from detforge.outputs import entries, is_current, write_manifest

BIGDET_BOXES = 36_000_000
STAGES = 5  # read, map, split, dedup, decontaminate


def timed(fn) -> tuple[float, float, object]:
    """(wall s, CPU s, result) of ``fn()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def drop_cache(path: Path) -> None:
    """Drop ``path``'s pages from the page cache, so the next read comes from the disk."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
        os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def write_random(path: Path, gb: float) -> int:
    rng = np.random.default_rng(0)
    chunk = rng.integers(0, 256, 64 << 20, dtype=np.uint8).tobytes()
    size = int(gb * (1 << 30))
    with open(path, "wb") as handle:
        for start in range(0, size, len(chunk)):
            handle.write(chunk[: min(len(chunk), size - start)])
    return size


def box_table(n: int) -> pl.DataFrame:
    """Boxes with the columns the stage cache stores most of (ids, label, source, box)."""
    rng = np.random.default_rng(1)
    images = rng.integers(0, 2**62, n // 10 + 1)
    xy = rng.random((n, 2), dtype=np.float32) * 0.5
    wh = rng.random((n, 2), dtype=np.float32) * 0.5
    return pl.DataFrame(
        {
            "image_id": np.sort(images[rng.integers(0, len(images), n)]),
            "object_id": rng.integers(0, 2**62, n),
            "source": rng.choice(["objects365", "openimages", "lvis"], n),
            "source_label": rng.integers(0, 1203, n).astype(str),
            "label": rng.integers(0, 600, n).astype(np.int32),
            "bbox": np.concatenate([xy, xy + wh], axis=1),
            "area": rng.random(n, dtype=np.float32),
            "is_crowd": rng.random(n) < 0.01,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=2.0, help="size of the annotation file")
    parser.add_argument("--boxes", type=int, default=3_600_000, help="boxes in the stage table")
    parser.add_argument("--files", type=int, default=20_000, help="files in the export folder")
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a tmp)")
    args = parser.parse_args()
    console = Console(width=150)
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        work = Path(tmp)

        # annotation fingerprints
        file = work / "annotations.json"
        size = write_random(file, args.gb)
        drop_cache(file)
        wall, cpu, _ = timed(lambda: content_hash(file))
        per_gb = wall / (size / (1 << 30))
        rows.append(
            (
                f"content hash, {args.gb:g} GB from disk",
                f"{wall:.2f} s",
                f"{cpu:.2f} s",
                f"{size / wall / 1e9:.2f} GB/s; 10 GB of annotations ≈ {10 * per_gb:.0f} s",
            )
        )
        wall, cpu, _ = timed(lambda: content_hash(file))
        rows.append(
            (
                f"content hash, {args.gb:g} GB page cache",
                f"{wall:.2f} s",
                f"{cpu:.2f} s",
                f"{size / wall / 1e9:.2f} GB/s; {size / max(cpu, 1e-9) / 1e9:.1f} GB per CPU-s",
            )
        )
        file.unlink()

        # stage checksums
        stage = work / "stage"
        (stage / "dataset").mkdir(parents=True)
        boxes = box_table(args.boxes)
        boxes.write_parquet(stage / "dataset" / "objects.parquet", statistics=False)
        nbytes = (stage / "dataset" / "objects.parquet").stat().st_size
        del boxes
        wall_w, cpu_w, _ = timed(lambda: write_checksums(stage))
        drop_cache(stage / "dataset" / "objects.parquet")
        wall_v, cpu_v, problem = timed(lambda: checksum_problem(stage))
        assert problem is None, problem
        scale = BIGDET_BOXES / args.boxes
        rows.append(
            (
                f"stage checksums, {args.boxes / 1e6:.1f}M boxes ({nbytes / 1e6:.0f} MB)",
                f"write {wall_w:.2f} s, verify {wall_v:.2f} s",
                f"{cpu_w:.2f} s, {cpu_v:.2f} s",
                f"36M boxes ({nbytes * scale / 1e9:.1f} GB/stage): verify ≈ "
                f"{wall_v * scale:.1f} s/stage, {wall_v * scale * STAGES:.0f} s for all {STAGES}",
            )
        )

        # export manifests
        export = work / "hub"
        (export / "data").mkdir(parents=True)
        for i in range(args.files):
            (export / "data" / f"train-{i:05d}.parquet").write_bytes(b"x")
        wall_m, cpu_m, _ = timed(lambda: write_manifest(export, "k", "export-hub"))
        wall_c, cpu_c, current = timed(lambda: is_current(export, "k"))
        assert current
        wall_e, _, listed = timed(lambda: entries(export))
        rows.append(
            (
                f"export manifest, {len(listed):,} entries",
                f"write {wall_m:.2f} s, check {wall_c:.2f} s",
                f"{cpu_m:.2f} s, {cpu_c:.2f} s",
                f"listing alone {wall_e:.2f} s",
            )
        )

        # the writer lock
        n = 1000

        def cycles() -> None:
            for _ in range(n):
                with output_lock(work / "locked", "benchmark"):
                    pass

        wall_l, cpu_l, _ = timed(cycles)
        rows.append(
            ("writer lock, acquire + release", f"{wall_l / n * 1e6:.0f} µs", "", f"{n} cycles")
        )

    table = Table(title="owning an output: costs")
    for column in ("what", "wall", "CPU", "at scale / note"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    console.print(f"peak RSS {peak:.0f} MiB (the box table generation; hashing streams 8 MB)")


if __name__ == "__main__":
    main()
