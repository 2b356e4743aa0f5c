"""BigDetection-scale benchmark: the near-pair search and the annotation stages.

(a) ``near_pairs`` on N random 64-bit hashes (``uniform``; ``repeats``: 5 % of the
    hashes drawn from 300 values, as blank and near-constant images are) with
    ``--planted`` copies at Hamming distances 1..radius: wall and CPU time, peak RSS,
    recall of the planted pairs.
(b) the annotation stages of ``benchmarks/build.py`` (read, map, box merge, COCO
    export) at 1M / 5M / 10M boxes: time and peak RSS, the fitted growth exponents
    (``time ~ boxes**k``) and the projection to 36M boxes.

Each measurement runs in a fresh child process; CPU time is user + sys of the child
and its workers, so it stays meaningful on a shared machine where wall time is not.

Run: ``python benchmarks/scale.py [--search 100000 1000000 3500000] [--boxes 1000000 ...]``
(``--search`` / ``--boxes`` with no sizes skips that part; small sizes run in seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build as build_bench  # noqa: E402  (the annotation generator and stage script)

SEARCH = r"""
import json, resource, sys, time
from detforge.allocator import release_pages_promptly
release_pages_promptly()  # before polars, as the detforge command does
import numpy as np, polars as pl
from detforge.builders.dedup import near_pairs

n, radius, planted, workers, workload = (int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]),
                                         int(sys.argv[4]), sys.argv[5])
rng = np.random.default_rng(n)
hashes = rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64) * np.uint64(2)
hashes ^= rng.integers(0, 2, n).astype(np.uint64)
if workload == "repeats":  # 5 % of the hashes repeat 300 values
    rows = rng.choice(n, n // 20, replace=False)
    hashes[rows] = rng.choice(hashes[:300], n // 20)
copies = rng.choice(n, 2 * planted, replace=False)
source, target = copies[:planted], copies[planted:]
distance = 1 + np.arange(planted) % radius
for k in range(planted):  # target = source with `distance` random bits flipped
    bits = rng.choice(64, distance[k], replace=False).astype(np.uint64)
    hashes[target[k]] = hashes[source[k]] ^ np.bitwise_or.reduce(np.uint64(1) << bits)
series = pl.Series(hashes)
cpu0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
search = near_pairs(series, radius, workers=workers)
wall = time.perf_counter() - wall0
# pool workers fork from multiprocessing's fork server: stop it (it reaps them), so their
# CPU time and peak RSS count among this process's children
import multiprocessing.forkserver as forkserver
forkserver._forkserver._stop()
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = me.ru_utime + me.ru_stime - cpu0.ru_utime - cpu0.ru_stime + kids.ru_utime + kids.ru_stime
node = search.node
a, b = node[source], node[target]
found = set(zip(search.pairs["i"].to_list(), search.pairs["j"].to_list()))
hit = [x == y or (min(x, y), max(x, y)) in found for x, y in zip(a.tolist(), b.tolist())]
print(json.dumps({"wall": wall, "cpu": cpu, "recall": sum(hit) / planted,
                  "pairs": search.pairs.height, "nodes": search.nodes,
                  "rss": me.ru_maxrss / 1024, "worker_rss": kids.ru_maxrss / 1024}))
"""


def run_child(code: str, *args: str) -> tuple[float, float, float, str]:
    """Wall seconds, CPU seconds (user + sys of the child and its workers), peak RSS (MiB)
    and stdout of ``python -c code args``."""
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        start = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-c", code, *args],
            stdout=stdout,
            stderr=stderr,
            env=build_bench.FRESH_ENV,
        )
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        stdout.seek(0), stderr.seek(0)
        if os.waitstatus_to_exitcode(status):
            raise SystemExit(f"child failed:\n{stderr.read()}")
        return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, stdout.read().strip()


def search_part(console: Console, sizes: list[int], radius: int, planted: int, workers: int):
    table = Table(
        title=f"near-pair search, radius {radius}, {planted:,} planted copies at distances "
        f"1..{radius}, {workers} worker(s)"
    )
    columns = ("hashes", "workload", "nodes", "wall s", "CPU s", "peak RSS MiB main / worker")
    for col in (*columns, "recall"):
        table.add_column(col, justify="right")
    rows = []
    for n in sizes:
        for workload in ("uniform", "repeats"):
            *_, out = run_child(
                SEARCH, str(n), str(radius), str(min(planted, n // 4)), str(workers), workload
            )
            r = json.loads(out)
            rss = f"{r['rss']:.0f} / {r['worker_rss']:.0f}"
            table.add_row(
                f"{n:,}",
                workload,
                f"{r['nodes']:,}",
                f"{r['wall']:.1f}",
                f"{r['cpu']:.1f}",
                rss,
                f"{r['recall']:.4f}",
            )
            rows.append({"n": n, "workload": workload, **r})
    console.print(table)
    return rows


def fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Exponent ``k`` and factor ``c`` of ``y = c * x**k`` (least squares in log-log)."""
    k, logc = np.polyfit(np.log(xs), np.log(ys), 1)
    return float(k), float(np.exp(logc))


def stages_part(
    console: Console, sizes: list[int], work: Path, target: int, repeat: int = 1
) -> list[dict]:
    rows = []
    for boxes in sizes:
        root, out = work / f"sources-{boxes}", work / f"out-{boxes}"
        if not root.is_dir():
            build_bench.generate(root, boxes, boxes // 10)
        out.mkdir(parents=True, exist_ok=True)
        # the fastest of `repeat` runs: on a shared machine the others measure the neighbours
        runs = [run_child(build_bench.DETFORGE, str(root), str(out)) for _ in range(repeat)]
        wall, cpu, peak, detail = min(runs, key=lambda run: run[1])
        rows.append({"boxes": boxes, "wall": wall, "cpu": cpu, "rss": peak, "detail": detail})
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
    table = Table(title="annotation stages (read + map + box merge + COCO export)")
    for col in ("boxes", "wall s", "CPU s", "peak RSS MiB", "per stage (time / peak so far)"):
        table.add_column(
            col, justify="right" if col != "per stage (time / peak so far)" else "left"
        )
    for r in rows:
        table.add_row(
            f"{r['boxes']:,}", f"{r['wall']:.1f}", f"{r['cpu']:.1f}", f"{r['rss']:.0f}", r["detail"]
        )
    console.print(table)
    if len(rows) >= 2:
        xs = [r["boxes"] for r in rows]
        kt, ct = fit(xs, [r["cpu"] for r in rows])
        km, cm = fit(xs, [r["rss"] for r in rows])
        console.print(
            f"growth exponents: CPU time {kt:.2f}, peak RSS {km:.2f} (target <= 1.1); "
            f"projected at {target / 1e6:.0f}M boxes: {ct * target**kt:.0f} CPU s, "
            f"{cm * target**km / 1024:.1f} GiB peak RSS (target <= 16 GiB)"
        )
    return rows


def main() -> None:
    from detforge.builders.dedup import DedupConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--search", type=int, nargs="*", default=[100_000, 1_000_000, 3_500_000])
    parser.add_argument("--radius", type=int, default=DedupConfig().phash_distance)
    parser.add_argument("--planted", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--boxes", type=int, nargs="*", default=[1_000_000, 5_000_000, 10_000_000])
    parser.add_argument("--project", type=int, default=36_000_000, help="boxes to project to")
    parser.add_argument("--repeat", type=int, default=1, help="runs per stage size (fastest kept)")
    parser.add_argument("--dir", type=Path, help="where to generate sources (default: temp)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    console = Console(width=160)
    console.print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    results = {}
    if args.search:
        results["search"] = search_part(
            console, args.search, args.radius, args.planted, args.workers
        )
    if args.boxes:
        work = args.dir or Path(tempfile.mkdtemp(prefix="detforge-scale-"))
        results["stages"] = stages_part(console, args.boxes, work, args.project, args.repeat)
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
