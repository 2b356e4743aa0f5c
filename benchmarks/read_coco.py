"""Benchmark: detforge's COCO reader vs ``pycocotools.COCO`` on a 1M-annotation JSON.

Usage: ``python benchmarks/read_coco.py [--file PATH] [--annotations N] [--images N]``.
Generates a COCO-style instances file (kept at ``--file`` when given, else in a temp dir),
then loads it with each reader in a fresh subprocess and prints wall time and peak RSS
(``os.wait4`` rusage of that child). Target: detforge ≤ 0.5× pycocotools' time at ≤ its
peak memory.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

CHILD = {
    "detforge": (
        "from detforge.allocator import release_pages_promptly; release_pages_promptly(); "
        "from detforge.sources import coco; import sys, time; t = time.perf_counter(); "
        "d = coco.read(sys.argv[1], 'val', check_files=False); "
        "print(f'{time.perf_counter() - t:.2f}s in read, {d.objects.height} boxes')"
    ),
    "pycocotools": (
        "import contextlib, io, sys, time; from pycocotools.coco import COCO; t = time.perf_counter(); "
        "f = io.StringIO()\nwith contextlib.redirect_stdout(f): c = COCO(sys.argv[1])\n"
        "print(f'{time.perf_counter() - t:.2f}s in read, {len(c.anns)} boxes')"
    ),
}


def generate(path: Path, n_annotations: int, n_images: int, seed: int = 0) -> None:
    """A COCO instances JSON with polygon segmentations, written in chunks."""
    rng = np.random.default_rng(seed)
    widths = rng.integers(320, 1024, n_images)
    heights = rng.integers(240, 1024, n_images)
    image_of = np.sort(rng.integers(0, n_images, n_annotations))
    categories = rng.integers(1, 81, n_annotations)
    fx, fy = rng.uniform(0, 0.7, n_annotations), rng.uniform(0, 0.7, n_annotations)
    fw, fh = rng.uniform(0.02, 0.3, n_annotations), rng.uniform(0.02, 0.3, n_annotations)
    crowd = (rng.uniform(size=n_annotations) < 0.01).astype(int)
    with path.open("wb") as out:
        out.write(b'{"info": {"description": "benchmark"}, "licenses": [], "images": [')
        for i in range(n_images):
            image = {"license": 1, "file_name": f"{i + 1:012d}.jpg", "height": int(heights[i]),
                     "width": int(widths[i]), "date_captured": "2013-11-14 16:28:13", "id": i + 1}  # fmt: skip
            out.write((b"," if i else b"") + orjson.dumps(image))
        out.write(b'], "annotations": [')
        for k in range(n_annotations):
            w, h = widths[image_of[k]], heights[image_of[k]]
            x, y, bw, bh = (
                round(float(v), 2) for v in (fx[k] * w, fy[k] * h, fw[k] * w, fh[k] * h)
            )
            ann = {"segmentation": [[x, y, x + bw, y, x + bw, y + bh, x, y + bh]],
                   "area": round(bw * bh, 2), "iscrowd": int(crowd[k]), "image_id": int(image_of[k]) + 1,
                   "bbox": [x, y, bw, bh], "category_id": int(categories[k]), "id": k + 1}  # fmt: skip
            out.write((b"," if k else b"") + orjson.dumps(ann))
        cats = [{"supercategory": "thing", "id": c, "name": f"class{c}"} for c in range(1, 81)]
        out.write(b'], "categories": ' + orjson.dumps(cats) + b"}")


def measure(name: str, path: Path) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB) and output of one reader in a fresh process."""
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD[name], str(path)], stdout=subprocess.PIPE, text=True
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    output = process.stdout.read().strip() if process.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name} failed")
    return wall, usage.ru_maxrss / 1024, output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, help="where to write the JSON (default: a temp dir)")
    parser.add_argument("--annotations", type=int, default=1_000_000)
    parser.add_argument("--images", type=int, default=150_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.file or Path(tmp) / "instances_bench.json"
        if not path.exists():
            t = time.perf_counter()
            generate(path, args.annotations, args.images)
            print(
                f"generated {path} ({path.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t:.1f}s"
            )
        results = {name: measure(name, path) for name in ("detforge", "pycocotools")}
    for name, (wall, rss, output) in results.items():
        print(f"{name:12s} wall {wall:6.2f}s  peak RSS {rss:7.0f} MiB  ({output})")
    (dw, dr, _), (pw, pr, _) = results["detforge"], results["pycocotools"]
    print(f"detforge / pycocotools: time {dw / pw:.2f}x, peak memory {dr / pr:.2f}x")


if __name__ == "__main__":
    main()
