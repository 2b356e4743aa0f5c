"""Near-duplicate hashing benchmark: speed per core vs imagehash, recall/precision on planted pairs.

Generates ``--n`` 640x480 JPEGs: originals plus planted near copies (resized,
re-encoded at another quality, brightness shifted, or all three), then

- times detforge's hashing (SHA-256 + reduced-decode pHash) and
  ``imagehash.phash`` (PIL full decode) on one core over the same files;
- finds near pairs within ``--radius`` by multi-index hashing and scores them
  against the planted pairs (any other pair found is a false positive).

Run: ``.venv/bin/python benchmarks/dedup.py [--n 2000] [--dir DIR] [--workers 2]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import imagehash
import numpy as np
import polars as pl
from PIL import Image
from rich.console import Console
from rich.table import Table

from detforge.builders.dedup import engines, hash_images, near_pairs, synth
from detforge.builders.dedup.phash import hash_batch

VARIANTS = ("resized", "reencoded", "brightened", "all")


def generate(root: Path, n: int, copies: float, look_alikes: float, seed: int):
    """Write the image set (files already there are reused).

    Returns the paths, the planted pairs ``{(original, copy): variant}`` and the
    look-alike pairs (an original and its mirror image: same colours and
    statistics, another picture; a pair found there is a false positive).
    """
    rng = np.random.default_rng(seed)
    n_copies, n_looks = int(n * copies), int(n * look_alikes)
    n_orig = n - n_copies - n_looks
    paths: list[Path] = []
    planted: dict[tuple[int, int], str] = {}
    look: set[tuple[int, int]] = set()
    extra: list[tuple[Path, np.ndarray, int, int, str | None]] = []
    for k in range(n_orig):
        img = synth.photo(rng)
        paths.append(_save(img, root / f"orig_{k:05d}.jpg", 90))
        if k < n_copies:
            variant = VARIANTS[k % len(VARIANTS)]
            copy, quality = img, 90
            if variant in ("resized", "all"):
                copy = synth.resized(copy, float(rng.uniform(0.4, 0.8)))
            if variant in ("reencoded", "all"):
                quality = int(rng.integers(55, 80))
            if variant in ("brightened", "all"):
                copy = synth.brightened(copy, int(rng.choice([-1, 1]) * rng.integers(5, 16)))
            extra.append((root / f"copy_{k:05d}_{variant}.jpg", copy, quality, k, variant))
        elif k < n_copies + n_looks:
            extra.append((root / f"look_{k:05d}.jpg", img[:, ::-1], 90, k, None))
    for path, img, quality, original, variant in extra:
        paths.append(_save(img, path, quality))
        if variant is None:
            look.add((original, len(paths) - 1))
        else:
            planted[(original, len(paths) - 1)] = variant
    return paths, planted, look


def _save(img: np.ndarray, path: Path, quality: int) -> Path:
    return path if path.exists() else synth.save(np.ascontiguousarray(img), path, quality)


def _rate(fn, items: list) -> tuple[float, float]:
    """Items per CPU-second of this process (per core) and per wall-second."""
    cpu, wall = time.process_time(), time.perf_counter()
    fn(items)
    return len(items) / (time.process_time() - cpu), len(items) / (time.perf_counter() - wall)


def score(hashes: np.ndarray, planted: dict, radius: int) -> tuple[float, float, int, dict]:
    """Recall, precision, pairs found and missed pairs per variant at ``radius``."""
    found = near_pairs(pl.Series(hashes, dtype=pl.UInt64), radius).pairs
    pairs = set(found.select("i", "j").iter_rows())
    hits = len(pairs & set(planted))
    missed: dict[str, int] = {}
    for pair, variant in planted.items():
        if pair not in pairs:
            missed[variant] = missed.get(variant, 0) + 1
    return hits / len(planted), hits / max(1, len(pairs)), len(pairs), missed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="images in all")
    parser.add_argument("--copies", type=float, default=0.25, help="fraction that are copies")
    parser.add_argument("--look-alikes", type=float, default=0.1, help="fraction of mirrors")
    parser.add_argument("--radius", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2, help="for the pooled run")
    parser.add_argument("--dir", type=Path, help="image folder (kept; default: a temp dir)")
    parser.add_argument("--photos", type=Path, help="also time both on the JPEGs of this folder")
    args = parser.parse_args()
    console = Console(width=120)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.dir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        paths, planted, look = generate(root, args.n, args.copies, args.look_alikes, seed=0)
        console.print(
            f"{len(paths)} images: {len(planted)} planted copy pairs, {len(look)} look-alike "
            f"pairs, in {root} ({time.perf_counter() - start:.1f} s)"
        )
        for p in paths:  # warm the page cache so both sides time decoding, not the disk
            p.read_bytes()
        ours: list[pl.DataFrame] = []
        ours_cpu, ours_wall = _rate(lambda ps: ours.append(hash_images(ps, workers=1)), paths)
        engines.POOL_MIN_ITEMS = 0  # time the pool itself, even on a small set
        pool_wall = _rate(lambda ps: hash_images(ps, workers=args.workers), paths)[1]
        theirs: list[int] = []

        def reference(ps: list[Path]) -> None:
            theirs.extend(int(str(imagehash.phash(Image.open(p))), 16) for p in ps)

        ref_cpu, ref_wall = _rate(reference, paths)

    table = Table(title=f"near-duplicate hashing, {len(paths)} 640x480 JPEGs, radius {args.radius}")
    columns = ("method", "img/CPU-s", "img/s wall", "recall", "precision", "pairs", "missed")
    for col in columns:
        table.add_column(col, justify="right")
    rows = (
        (
            "detforge (sha256 + reduced-decode pHash)",
            ours[0]["phash"].to_numpy(),
            ours_cpu,
            ours_wall,
        ),
        ("imagehash.phash (PIL full decode)", np.array(theirs, np.uint64), ref_cpu, ref_wall),
    )
    for name, hashes, cpu, wall in rows:
        recall, precision, found, missed = score(hashes, planted, args.radius)
        table.add_row(
            name,
            f"{cpu:.0f}",
            f"{wall:.0f}",
            f"{recall:.4f}",
            f"{precision:.4f}",
            str(found),
            ", ".join(f"{v} {c}" for v, c in sorted(missed.items())) or "-",
        )
    console.print(table)
    if args.photos:
        photos = sorted(args.photos.glob("*.jpg"))
        photos = photos * max(1, 300 // max(1, len(photos)))
        ours_cpu_p = _rate(hash_batch, [str(p) for p in photos])[0]
        ref_cpu_p = _rate(lambda ps: [imagehash.phash(Image.open(p)) for p in ps], photos)[0]
        console.print(
            f"{args.photos} ({len(set(photos))} photos, each timed {len(photos) // len(set(photos))}x): "
            f"detforge {ours_cpu_p:.0f} img/CPU-s, imagehash {ref_cpu_p:.0f}: "
            f"{ours_cpu_p / ref_cpu_p:.2f}x"
        )
    console.print(
        f"speed-up per core (CPU time): {ours_cpu / ref_cpu:.2f}x, wall: "
        f"{ours_wall / ref_wall:.2f}x (target >= 3x); pool of {args.workers}: "
        f"{pool_wall:.0f} img/s wall"
    )


if __name__ == "__main__":
    main()
