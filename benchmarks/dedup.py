"""Near-duplicate benchmark: hashing speed per core vs imagehash; recall, precision and the
projected false pairs at BigDetection scale, per pHash radius and gradient-hash threshold.

Generates ``--n`` 640x480 JPEGs: originals plus planted near copies (resized,
re-encoded at another quality, brightness shifted, cropped by up to 5 % per axis on
random sides, or all of these) and look-alikes (mirror images), then

- times detforge's hashing (SHA-256 + reduced-decode pHash + gradient hash) and
  ``imagehash.phash`` (PIL full decode) on one core over the same files;
- scores the near pairs (pHash within the radius, confirmed by the gradient hash) against
  the planted pairs, for several radii;
- measures the rate at which *unrelated* pairs pass: pHash within r (all pairs), and the
  gradient hash given a pHash within 20 bits (the pairs the search could hand it), and
  projects false pairs among ``--project`` images as rate x n^2 / 2.

Run: ``.venv/bin/python benchmarks/dedup.py [--n 10000] [--dir DIR] [--workers 2]``
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

from detforge.builders.dedup import DedupConfig, engines, hash_images, near_pairs, synth
from detforge.builders.dedup.phash import hash_batch

VARIANTS = ("resized", "reencoded", "brightened", "cropped", "all")
#: the pHash distances the search could hand the gradient hash, for its conditional rate
CONDITION = 20


def generate(root: Path, n: int, copies: float, look_alikes: float, seed: int):
    """Write the image set (files already there are reused: each image has its own random
    stream, so a rerun into the same folder skips the drawing).

    Returns the paths, the planted pairs ``{(original, copy): variant}`` and the
    look-alike pairs (an original and its mirror image: same colours and
    statistics, another picture; a pair found there is a false positive).
    """
    n_copies, n_looks = int(n * copies), int(n * look_alikes)
    n_orig = n - n_copies - n_looks
    paths = [root / f"orig_{k:05d}.jpg" for k in range(n_orig)]
    planted: dict[tuple[int, int], str] = {}
    look: set[tuple[int, int]] = set()
    for k in range(n_copies + n_looks):
        variant = VARIANTS[k % len(VARIANTS)] if k < n_copies else None
        name = f"copy_{k:05d}_{variant}.jpg" if variant else f"look_{k:05d}.jpg"
        paths.append(root / name)
        if variant is None:
            look.add((k, len(paths) - 1))
        else:
            planted[(k, len(paths) - 1)] = variant
    for k in range(n_orig):
        extra = paths[n_orig + k] if k < n_copies + n_looks else None
        if paths[k].exists() and (extra is None or extra.exists()):
            continue
        rng = np.random.default_rng([seed, k])
        img = synth.photo(rng)
        _save(img, paths[k], 90)
        if extra is None:
            continue
        if k >= n_copies:  # a look-alike
            _save(img[:, ::-1], extra, 90)
            continue
        variant, copy, quality = VARIANTS[k % len(VARIANTS)], img, 90
        if variant in ("resized", "all"):
            copy = synth.resized(copy, float(rng.uniform(0.4, 0.8)))
        if variant in ("reencoded", "all"):
            quality = int(rng.integers(55, 80))
        if variant in ("brightened", "all"):
            copy = synth.brightened(copy, int(rng.choice([-1, 1]) * rng.integers(5, 16)))
        if variant in ("cropped", "all"):  # up to 5 % per axis, each side with p = 1/2
            left, right, top, bottom = rng.uniform(0, 0.05, 4) * rng.integers(0, 2, 4)
            h, w = copy.shape[:2]
            copy = copy[
                round(h * top) : h - round(h * bottom), round(w * left) : w - round(w * right)
            ]
        _save(copy, extra, quality)
    return paths, planted, look


def _save(img: np.ndarray, path: Path, quality: int) -> Path:
    return synth.save(np.ascontiguousarray(img), path, quality)


def _rate(fn, items: list) -> tuple[float, float]:
    """Items per CPU-second of this process (per core) and per wall-second."""
    cpu, wall = time.process_time(), time.perf_counter()
    fn(items)
    return len(items) / (time.process_time() - cpu), len(items) / (time.perf_counter() - wall)


def _rates_interleaved(fns: list, items: list, chunk: int = 250) -> list[tuple[float, float]]:
    """:func:`_rate` of each function, taking turns chunk by chunk, so that on a shared
    machine both see the same neighbours."""
    spent = [[0.0, 0.0] for _ in fns]
    for a in range(0, len(items), chunk):
        for k, fn in enumerate(fns):
            cpu, wall = time.process_time(), time.perf_counter()
            fn(items[a : a + chunk])
            spent[k][0] += time.process_time() - cpu
            spent[k][1] += time.perf_counter() - wall
    return [(len(items) / c, len(items) / w) for c, w in spent]


def unrelated_rates(phash: np.ndarray, dhash: np.ndarray, related: set, radii, thresholds):
    """Per radius the share of unrelated pairs with pHash within it, and per threshold the
    share of unrelated pairs with pHash within CONDITION whose gradient hashes are within it."""
    n = len(phash)
    within = dict.fromkeys(radii, 0)
    near_i, near_j = [], []
    for a in range(0, n, 1000):  # blocks of the full distance matrix, upper triangle
        dist = np.bitwise_count(phash[a : a + 1000, None] ^ phash[None, :])
        dist[np.arange(len(dist))[:, None] + a >= np.arange(n)[None, :]] = 99
        for r in radii:
            within[r] += int((dist <= r).sum())
        i, j = np.nonzero(dist <= CONDITION)
        near_i.append(i + a), near_j.append(j)
    i, j = np.concatenate(near_i), np.concatenate(near_j)
    keep = np.array(
        [(x, y) not in related for x, y in zip(i.tolist(), j.tolist(), strict=True)], bool
    )
    i, j = i[keep], j[keep]
    gradient = np.bitwise_count(dhash[i] ^ dhash[j]).sum(axis=1)
    pairs = n * (n - 1) // 2 - len(related)
    p_rate = {
        r: _upper(within[r] - sum(1 for x, y in related if _d(phash, x, y) <= r), pairs)
        for r in radii
    }
    d_rate = {t: _upper(int((gradient <= t).sum()), len(gradient)) for t in thresholds}
    return p_rate, d_rate, len(gradient), pairs


def _upper(k: int, n: int) -> float:
    """95 % upper bound of a rate seen k times in n (3/n for none: the rule of three)."""
    return (3.0 if k == 0 else k + 1.96 * k**0.5 + 1.92) / max(1, n)


def _d(phash: np.ndarray, x: int, y: int) -> int:
    return int(np.bitwise_count(phash[x] ^ phash[y]))


def score(phash: np.ndarray, dhash: np.ndarray | None, planted: dict, radius: int, threshold: int):
    """Recall, precision, pairs found and missed pairs per variant at ``radius`` (pHash)
    and ``threshold`` (gradient hash; ``dhash=None``: pHash alone)."""
    found = near_pairs(pl.Series(phash, dtype=pl.UInt64), radius, workers=1).expand()
    i, j = found["i"].to_numpy(), found["j"].to_numpy()
    if dhash is not None:
        ok = np.bitwise_count(dhash[i] ^ dhash[j]).sum(axis=1) <= threshold
        i, j = i[ok], j[ok]
    pairs = set(zip(i.tolist(), j.tolist(), strict=True))
    hits = len(pairs & set(planted))
    missed: dict[str, int] = {}
    for pair, variant in planted.items():
        if pair not in pairs:
            missed[variant] = missed.get(variant, 0) + 1
    return hits / len(planted), hits / max(1, len(pairs)), len(pairs), missed


def main() -> None:
    default = DedupConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000, help="images in all")
    parser.add_argument("--copies", type=float, default=0.1, help="fraction that are copies")
    parser.add_argument("--look-alikes", type=float, default=0.05, help="fraction of mirrors")
    parser.add_argument("--radius", type=int, default=default.phash_distance)
    parser.add_argument("--threshold", type=int, default=default.dhash_distance)
    parser.add_argument("--radii", type=int, nargs="*", default=[6, 8, 9, 10, 12])
    parser.add_argument("--thresholds", type=int, nargs="*", default=[22, 26, 30])
    parser.add_argument("--project", type=int, default=3_500_000, help="images to project to")
    parser.add_argument("--dup-rate", type=float, default=0.1, help="true copies per image there")
    parser.add_argument("--workers", type=int, default=2, help="for the pooled run")
    parser.add_argument("--dir", type=Path, help="image folder (kept; default: a temp dir)")
    parser.add_argument("--photos", type=Path, help="also time both on the JPEGs of this folder")
    args = parser.parse_args()
    console = Console(width=140)
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
        theirs: list[int] = []

        def reference(ps: list[Path]) -> None:
            theirs.extend(int(str(imagehash.phash(Image.open(p))), 16) for p in ps)

        (ours_cpu, ours_wall), (ref_cpu, ref_wall) = _rates_interleaved(
            [lambda ps: ours.append(hash_images(ps, workers=1)), reference], paths
        )
        engines.POOL_MIN_ITEMS = 0  # time the pool itself, even on a small set
        pool_wall = _rate(lambda ps: hash_images(ps, workers=args.workers), paths)[1]

    hashes = pl.concat(ours)
    phash = hashes["phash"].to_numpy()
    dhash = hashes["dhash"].cast(pl.Array(pl.UInt64, 2)).to_numpy().reshape(-1, 2)
    table = Table(title=f"hashing, {len(paths)} 640x480 JPEGs, one core")
    for col in ("method", "img/CPU-s", "img/s wall"):
        table.add_column(col, justify="right")
    table.add_row(
        "detforge (sha256 + pHash + gradient hash)", f"{ours_cpu:.0f}", f"{ours_wall:.0f}"
    )
    table.add_row("imagehash.phash (PIL full decode)", f"{ref_cpu:.0f}", f"{ref_wall:.0f}")
    console.print(table)

    related = set(planted) | look
    p_rate, d_rate, conditioned, unrelated = unrelated_rates(
        phash, dhash, related, args.radii, args.thresholds
    )
    n_pairs = args.project * (args.project - 1) / 2
    true_copies = args.dup_rate * args.project
    table = Table(
        title=f"recall / precision here; false pairs projected to {args.project:,} images "
        f"(vs {true_copies:,.0f} true copies; gradient-hash rate measured on {conditioned:,} "
        f"unrelated pairs with pHash <= {CONDITION})"
    )
    for col in (
        "pHash r",
        "grad. t",
        "recall",
        "precision",
        "pairs",
        "missed",
        "false (95% bound)",
    ):
        table.add_column(col, justify="right")
    theirs_hashes = np.array(theirs, np.uint64)
    for radius in args.radii:
        for threshold in [None, *args.thresholds]:
            recall, precision, found, missed = score(
                phash, None if threshold is None else dhash, planted, radius, threshold or 0
            )
            rate = p_rate[radius] * (1.0 if threshold is None else d_rate[threshold])
            chosen = radius == args.radius and threshold == args.threshold
            table.add_row(
                f"{radius}{' *' if chosen else ''}",
                "-" if threshold is None else str(threshold),
                f"{recall:.4f}",
                f"{precision:.4f}",
                str(found),
                ", ".join(f"{v} {c}" for v, c in sorted(missed.items())) or "-",
                f"{rate * n_pairs:,.0f} ({rate * n_pairs / true_copies:.2%})",
            )
    console.print(table)
    recall_ref = score(theirs_hashes, None, planted, 10, 0)[0]
    console.print(
        f"imagehash.phash alone at radius 10: recall {recall_ref:.4f}; unrelated pairs here: "
        f"{unrelated:,}; pHash rates (95% upper bounds): "
        + ", ".join(f"r{r} {p_rate[r]:.2e}" for r in args.radii)
        + "; gradient-hash rates (95% upper bounds): "
        + ", ".join(f"t{t} {d_rate[t]:.2e}" for t in args.thresholds)
    )
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
        f"{ours_wall / ref_wall:.2f}x (target >= 5x); pool of {args.workers}: "
        f"{pool_wall:.0f} img/s wall"
    )


if __name__ == "__main__":
    main()
