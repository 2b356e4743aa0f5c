"""`probe generate` at BigDetection's size: time and peak memory against the dataset's size.

A synthetic merged dataset in memory: ``--images`` images over three sources (60 %
Objects365-like with an exhaustive label space of 365 classes, 25 % LVIS-like with a few
verified negative and not-exhaustive labels per image, 15 % OpenImages-like with verified
negatives), ~10 boxes per image over 600 classes with a long tail, 5 % of images in
duplicate groups. Generation samples ``--max-images`` images (the default of the command)
and builds every task; the figures are wall and CPU time, resident memory with the dataset
held and the peak during generation (Linux: the peak is reset before it starts), items and
the largest distance of a text-only or source-only rule (n >= 50) from chance.

    python benchmarks/probe_generate.py [--images 100000 1000000 3500000] [--max-images 5000]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import polars as pl


def synthetic(n_images: int, seed: int = 0):
    """A merged dataset of ``n_images`` images (~10 boxes each) as a DetDataset."""
    from detforge.dataset import DetDataset

    rng = np.random.default_rng(seed)
    n_classes = 600
    source = rng.choice(3, size=n_images, p=[0.6, 0.25, 0.15])
    names = np.array(["objects365", "lvis", "openimages"])
    image_id = np.arange(n_images, dtype=np.int64) * 7919 + 13
    dup = np.where(
        rng.random(n_images) < 0.05, image_id[rng.integers(0, n_images, n_images)], image_id
    )
    images = pl.DataFrame(
        {
            "image_id": image_id,
            "source": names[source],
            "file_name": [f"{i}.jpg" for i in range(n_images)] if n_images <= 10 else None,
            "dup_group": dup,
            "split": "train",
        }
    )
    if images["file_name"].null_count():
        images = images.with_columns(file_name=pl.format("{}.jpg", "image_id"))
    per_image = rng.poisson(10, n_images).clip(1, 60)
    n_boxes = int(per_image.sum())
    owner = np.repeat(np.arange(n_images), per_image)
    weights = 1.0 / np.arange(1, n_classes + 1) ** 0.8  # a long tail
    label = rng.choice(n_classes, size=n_boxes, p=weights / weights.sum()).astype(np.int32)
    xy = rng.random((n_boxes, 2)).astype(np.float32) * 0.8
    wh = (0.02 + rng.random((n_boxes, 2)) * 0.3).astype(np.float32)
    bbox = np.concatenate([xy, np.minimum(xy + wh, 1.0)], axis=1)
    objects = pl.DataFrame(
        {
            "image_id": image_id[owner],
            "object_id": np.arange(n_boxes, dtype=np.int64),
            "source": names[source[owner]],
            "label": label,
            "bbox": bbox,
            "is_crowd": rng.random(n_boxes) < 0.02,
        }
    ).with_columns(pl.col("bbox").cast(pl.Array(pl.Float32, 4)))
    tagged = np.flatnonzero(source > 0)
    k = 6
    label_rows = pl.DataFrame(
        {
            "image_id": np.repeat(image_id[tagged], k),
            "source": np.repeat(names[source[tagged]], k),
            "label": rng.integers(0, n_classes, size=len(tagged) * k).astype(np.int32),
            "status": np.tile(["negative"] * 5 + ["not_exhaustive"], len(tagged)),
        }
    )
    spaces = pl.DataFrame({"source": "objects365", "label": np.arange(365, dtype=np.int32)})
    parents = [[n_classes - 1 - i // 20] if i < n_classes - 30 else [] for i in range(n_classes)]
    categories = pl.DataFrame(
        {
            "id": np.arange(n_classes),
            "name": [f"thing_{i}" for i in range(n_classes)],
            "parents": parents,
        },
        schema_overrides={"parents": pl.List(pl.Int32)},
    )
    return DetDataset(
        images=images,
        objects=objects,
        image_labels=label_rows,
        label_spaces=spaces,
        categories=categories,
        roots={},
    )


def _status_mib(field: str) -> int:
    """A memory figure of this process from /proc/self/status (VmRSS now, VmHWM peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return round(int(line.split()[1]) / 1024)
    return -1


def _reset_peak() -> None:
    """Start the peak (VmHWM) afresh, so it measures generation, not building the data."""
    Path("/proc/self/clear_refs").write_text("5")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--max-images", type=int, default=5000)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    from detforge.probes.generate import generate

    rows = []
    for n in args.images:
        dataset = synthetic(n)
        before = _status_mib("VmRSS")
        _reset_peak()
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        probes = generate(dataset, seed=0, max_images=args.max_images)
        wall = time.perf_counter() - start
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        worst = max(
            (r.get("over") or 0.0)
            for entry in probes.meta["shortcuts"].values()
            for r in entry["rules"]
            if r["n"] >= 50
        )
        row = {
            "images": n,
            "boxes": dataset.objects.height,
            "max_images": args.max_images,
            "items": probes.items.height,
            "wall_s": round(wall, 2),
            "cpu_s": round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 2),
            "rss_before_mib": before,
            "peak_rss_mib": _status_mib("VmHWM"),
            "worst_rule_over_chance": round(worst, 3),
        }
        row.update(
            {f"items_{t}": int(c) for t, c in probes.items.group_by("task").len().iter_rows()}
        )
        rows.append(row)
        print(json.dumps(row))
        del dataset, probes
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
