"""Benchmark: the map stage (``taxonomy.apply`` onto ``bigdet-v1``) at a share of BigDetection's size.

Usage: ``python benchmarks/taxonomy_apply.py [--scale 0.1] [--scale 0.2] [--dir DIR]``

At ``--scale 1`` the synthetic dataset has BigDetection's size: Objects365 1.7M images /
25M boxes with its whole class list as label space; OpenImages 1.7M images / 14M boxes /
8.7M human-verified image labels (60 % positive); LVIS 100k images / 1.27M boxes / 7
verified negatives and one not-exhaustive class per image. Classes are drawn uniformly from
each source's rows of ``mapping.csv``, so the merge, parent and drop rows all occur.

The tables are generated and written as parquet first; then, per scale, a fresh
subprocess loads them and runs ``apply``. It prints wall time, CPU time (user + sys) and
peak RSS of the apply alone (the RSS after loading is printed beside it), and the size of
its output. Several scales show how cost grows with size.

Measured on a 2-core machine shared with other work (CPU time is the steadier figure):
scale 0.1 (4.0M boxes, 0.94M image labels) 2.7–3.4 s CPU, peak 1.0–1.1 GiB (0.56 GiB
loaded); scale 0.3 (12.1M boxes, 2.8M image labels) 9.3–9.5 s CPU, peak 2.8 GiB (1.45 GiB
loaded): linear in size, so about 30 s CPU and 9–10 GiB at BigDetection's full size. The
rule that a merge set covers its class only as a whole costs about 10 % CPU over the
previous rule (2.4–2.5 s and 8.2–9.0 s), the same peak memory. Making every exact/synonym and
merge class of a source cover its class (one covering count per class; with the mapping's 288
merge rows, up from 13) costs nothing measurable: alternating runs minutes apart gave 2.3–2.4 s
and 7.2–7.8 s CPU, peak 1.2–1.3 and 2.9–3.0 GiB, against 2.3 s and 7.3–8.1 s, 1.3 and
2.9–3.0 GiB for the rule and mapping before; the output has 2.8 % more image labels (mostly
not_exhaustive where a merge set is partly annotated).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import polars as pl

from detforge import schema
from detforge.dataset import DetDataset
from detforge.taxonomy import load

FULL = {  # images, boxes, image labels per image
    "objects365": (1_700_000, 25_000_000, 0.0),
    "openimages": (1_700_000, 14_000_000, 5.1),
    "lvis": (100_000, 1_270_000, 8.0),
}

CHILD = r"""
import resource, sys, time
from detforge.allocator import release_pages_promptly
release_pages_promptly()  # before polars, as the detforge command does
from detforge.dataset import DetDataset
from detforge.taxonomy import apply, load

dataset = DetDataset.read(sys.argv[1])
taxonomy = load("bigdet-v1")
loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10
cpu0, wall0 = time.process_time(), time.perf_counter()
mapped, report = apply(dataset, taxonomy)
wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10
print(f"wall {wall:6.1f} s  cpu {cpu:6.1f} s  peak RSS {peak:6d} MiB (after loading {loaded} MiB)  "
      f"boxes {dataset.objects.height:,} -> {mapped.objects.height:,}  "
      f"image_labels {dataset.image_labels.height:,} -> {mapped.image_labels.height:,}  "
      f"report rows {report.height}")
"""


def generate(scale: float, seed: int = 0) -> DetDataset:
    """A source-space dataset of ``scale`` × BigDetection's size."""
    rng = np.random.default_rng(seed)
    mapping = load("bigdet-v1").mapping
    images, objects, labels = [], [], []
    next_id = 0
    for source, (n_img, n_box, per_image) in FULL.items():
        classes = mapping.filter(pl.col("source") == source)["source_label"].to_numpy()
        n_img, n_box = max(1, int(n_img * scale)), max(1, int(n_box * scale))
        ids = np.arange(next_id, next_id + n_img, dtype=np.int64)
        next_id += n_img
        images.append(
            pl.DataFrame(
                {
                    "image_id": ids,
                    "source": source,
                    "source_image_id": ids.astype(str),
                    "file_name": "x.jpg",
                    "width": 640,
                    "height": 480,
                    "split": "train",
                }
            )
        )
        image_of = np.sort(rng.choice(ids, n_box))
        objects.append(
            pl.DataFrame(
                {
                    "image_id": image_of,
                    "object_id": np.arange(n_box, dtype=np.int64) + (next_id << 26),
                    "source": source,
                    "source_label": rng.choice(classes, n_box),
                }
            ).with_columns(pl.lit([0.1, 0.1, 0.5, 0.5], schema.BBOX).alias("bbox"))
        )
        n_labels = int(n_img * per_image)
        if n_labels:
            status = (
                rng.choice(["positive", "negative"], n_labels, p=[0.6, 0.4])
                if source == "openimages"
                else np.where(rng.random(n_labels) < 7 / 8, "negative", "not_exhaustive")
            )
            labels.append(
                pl.DataFrame(
                    {
                        "image_id": rng.choice(ids, n_labels),
                        "source": source,
                        "source_label": rng.choice(classes, n_labels),
                        "status": status,
                    }
                ).unique(["image_id", "source_label"])
            )
    o365 = mapping.filter(pl.col("source") == "objects365").select("source", "source_label")
    return DetDataset(
        images=pl.concat(images),
        objects=pl.concat(objects, how="diagonal"),
        image_labels=pl.concat(labels),
        label_spaces=o365,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, action="append", help="share of BigDetection")
    parser.add_argument("--dir", type=Path, help="where to write the datasets (default: temp)")
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="detforge-apply-"))
    for scale in args.scale or [0.1]:
        folder = work / f"scale-{scale:g}"
        if not folder.is_dir():
            generate(scale).write(folder)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(folder)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if done.returncode:
            raise SystemExit(f"scale {scale}: child failed:\n{done.stderr}")
        print(f"scale {scale:g}: {done.stdout.strip()}")
    if args.dir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
