"""Benchmark: the build's annotation stages vs a plain pycocotools + Python-dict baseline.

Usage: ``python benchmarks/build.py [--dir DIR] [--boxes N] [--images N]``

Generates three synthetic sources in their real on-disk formats (Objects365 v2 JSON,
OpenImages V6 CSVs, LVIS v1 JSON; real class lists from ``../shared/data/taxonomy``),
about 1M boxes on 100k images in all, annotation-only (no image files). Then, each in a
fresh subprocess (wall time and peak RSS from ``os.wait4``):

- **detforge**: the three readers (``check_files=False``) → ``taxonomy.apply`` onto
  ``bigdet-v1`` → cross-source box merge → COCO JSON export of the result;
- **baseline**: ``pycocotools.COCO`` for the two JSON sources, ``csv.DictReader`` for
  OpenImages, a Python-dict remap of every box through ``mapping.csv``, ``json.dump``.

OpenImages CSVs carry no image sizes (the build reads image headers); both sides take them
from a ``sizes.csv`` the generator writes. Targets: detforge ≥ 3× faster at ≤ half the
baseline's peak memory.
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
import orjson
import polars as pl

TAXONOMY = Path(__file__).resolve().parents[2] / "shared" / "data" / "taxonomy"
SHARES = {"objects365": 0.45, "openimages": 0.30, "lvis": 0.25}

DETFORGE = r"""
import resource, sys, time
from pathlib import Path
from detforge.allocator import release_pages_promptly
release_pages_promptly()  # before polars, as the detforge command does
import polars as pl
from detforge import taxonomy
from detforge.exports import coco as export_coco
from detforge.builders.dedup import DedupConfig
from detforge.builders.dedup.boxes import merge_boxes
from detforge.sources import lvis, objects365, openimages
from detforge.dataset import DetDataset

root, out = Path(sys.argv[1]), Path(sys.argv[2])
def mark(stage):  # (stage, time, peak RSS so far in MiB)
    marks.append((stage, time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10))
marks = []
mark("start")
oi = openimages.read(root / "openimages", "train", check_files=False)
sizes = pl.read_csv(root / "openimages" / "sizes.csv", schema_overrides={"source_image_id": pl.String})
oi = oi.replace(images=oi.images.drop("width", "height").join(sizes, on="source_image_id", how="left"))
parts = [objects365.read(root / "objects365", "train", check_files=False),
         lvis.read(root / "lvis", "train", check_files=False), oi]
dataset = DetDataset.concat(parts)
del parts, oi
mark("read")
mapped, drops = taxonomy.apply(dataset, taxonomy.load("bigdet-v1"))
boxes_in = dataset.objects.height
del dataset  # the build's stage cache releases a stage once the next one has its own
mark("map")
objects, merged = merge_boxes(mapped.objects, DedupConfig())
mapped = mapped.replace(objects=objects)
mark("box dedup")
with (out / "train.json").open("wb") as handle:  # streamed, as the build's export does
    export_coco.write_split(mapped, "train", handle)
mark("coco export")
print(" ".join(f"{b[0]}={b[1] - a[1]:.1f}s/{b[2]}MiB" for a, b in zip(marks, marks[1:])),
      f"boxes_in={boxes_in} boxes_out={objects.height} merged={merged}")
"""

BASELINE = r"""
import contextlib, csv, io, json, sys, time
from pathlib import Path
from pycocotools.coco import COCO

root, out, tax = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
t0 = time.perf_counter()
names = [row["name"] for row in csv.DictReader((tax / "classes.csv").open())]
index = {name: i for i, name in enumerate(names)}
remap = {(r["source"], r["source_label"]): index[r["label"]]
         for r in csv.DictReader((tax / "mapping.csv").open()) if r["label"]}
images, annotations, image_ids = [], [], {}
for source, file in (("objects365", root / "objects365" / "zhiyuan_objv2_train.json"),
                     ("lvis", root / "lvis" / "lvis_v1_train.json")):
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(file))
    for img in coco.dataset["images"]:
        image_ids[(source, img["id"])] = len(image_ids) + 1
        name = img.get("file_name") or img["coco_url"].rsplit("/", 2)[-2:]
        images.append({"id": image_ids[(source, img["id"])], "file_name": f"{source}/{name}",
                       "width": img["width"], "height": img["height"]})
    for ann in coco.dataset["annotations"]:
        label = remap.get((source, str(ann["category_id"])))
        if label is not None:
            annotations.append({"id": len(annotations) + 1,
                                "image_id": image_ids[(source, ann["image_id"])],
                                "category_id": label + 1, "bbox": ann["bbox"],
                                "area": ann["area"], "iscrowd": ann.get("iscrowd", 0)})
    del coco
sizes = {r["source_image_id"]: (int(r["width"]), int(r["height"]))
         for r in csv.DictReader((root / "openimages" / "sizes.csv").open())}
for image_id, (w, h) in sizes.items():
    image_ids[("openimages", image_id)] = len(image_ids) + 1
    images.append({"id": image_ids[("openimages", image_id)],
                   "file_name": f"openimages/train/{image_id}.jpg", "width": w, "height": h})
with (root / "openimages" / "oidv6-train-annotations-bbox.csv").open() as f:
    for row in csv.DictReader(f):
        label = remap.get(("openimages", row["LabelName"]))
        if label is None:
            continue
        w, h = sizes[row["ImageID"]]
        x1, x2 = float(row["XMin"]) * w, float(row["XMax"]) * w
        y1, y2 = float(row["YMin"]) * h, float(row["YMax"]) * h
        annotations.append({"id": len(annotations) + 1,
                            "image_id": image_ids[("openimages", row["ImageID"])],
                            "category_id": label + 1, "bbox": [x1, y1, x2 - x1, y2 - y1],
                            "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
categories = [{"id": i + 1, "name": n} for i, n in enumerate(names)]
with (out / "baseline.json").open("w") as f:
    json.dump({"images": images, "annotations": annotations, "categories": categories}, f)
print(f"total={time.perf_counter() - t0:.1f}s boxes_out={len(annotations)}")
"""


def _boxes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    """Normalised x1, y1, x2, y2 inside the unit square."""
    x1, y1 = rng.uniform(0, 0.7, n), rng.uniform(0, 0.7, n)
    return x1, y1, x1 + rng.uniform(0.02, 0.29, n), y1 + rng.uniform(0.02, 0.29, n)


def _coco_like(rng, n_images: int, n_boxes: int, category_ids: np.ndarray):
    widths, heights = rng.integers(320, 1025, n_images), rng.integers(240, 1025, n_images)
    image_of = np.sort(rng.integers(0, n_images, n_boxes))
    x1, y1, x2, y2 = _boxes(rng, n_boxes)
    w, h = widths[image_of], heights[image_of]
    bx, by = np.round(x1 * w, 2), np.round(y1 * h, 2)
    bw, bh = np.round((x2 - x1) * w, 2), np.round((y2 - y1) * h, 2)
    cats = rng.choice(category_ids, n_boxes)
    return widths, heights, image_of, np.stack([bx, by, bw, bh], 1), cats


def write_objects365(root: Path, n_images: int, n_boxes: int, rng) -> None:
    categories = json.loads((TAXONOMY / "objects365_v2_categories.json").read_text())
    ids = np.array([c["id"] for c in categories])
    widths, heights, image_of, bbox, cats = _coco_like(rng, n_images, n_boxes, ids)
    images = [
        {
            "id": i + 1,
            "width": int(widths[i]),
            "height": int(heights[i]),
            "license": 1,
            "file_name": f"images/v2/patch{i % 50}/objects365_v2_{i + 1:08d}.jpg",
        }
        for i in range(n_images)
    ]
    annotations = [
        {
            "id": k + 1,
            "image_id": int(image_of[k]) + 1,
            "category_id": int(cats[k]),
            "bbox": bbox[k].tolist(),
            "area": float(bbox[k, 2] * bbox[k, 3]),
            "iscrowd": 0,
            "isfake": 0,
            "isreflected": 0,
        }
        for k in range(n_boxes)
    ]
    folder = root / "objects365"
    folder.mkdir(parents=True)
    (folder / "zhiyuan_objv2_train.json").write_bytes(
        orjson.dumps({"images": images, "annotations": annotations, "categories": categories})
    )


def write_lvis(root: Path, n_images: int, n_boxes: int, rng) -> None:
    categories = json.loads((TAXONOMY / "lvis_v1_categories.json").read_text())
    ids = np.array([c["id"] for c in categories])
    widths, heights, image_of, bbox, cats = _coco_like(rng, n_images, n_boxes, ids)
    neg = rng.choice(ids, (n_images, 3))
    images = [
        {
            "id": i + 1,
            "width": int(widths[i]),
            "height": int(heights[i]),
            "license": 1,
            "coco_url": f"http://images.cocodataset.org/train2017/{i + 1:012d}.jpg",
            "flickr_url": "",
            "date_captured": "2013-11-14 16:28:13",
            "neg_category_ids": sorted(set(neg[i].tolist())),
            "not_exhaustive_category_ids": [],
        }
        for i in range(n_images)
    ]
    annotations = []
    for k in range(n_boxes):
        x, y, w, h = bbox[k].tolist()
        annotations.append(
            {
                "id": k + 1,
                "image_id": int(image_of[k]) + 1,
                "category_id": int(cats[k]),
                "bbox": [x, y, w, h],
                "area": w * h,
                "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]],
            }
        )
    folder = root / "lvis"
    folder.mkdir(parents=True)
    (folder / "lvis_v1_train.json").write_bytes(
        orjson.dumps({"images": images, "annotations": annotations, "categories": categories})
    )


def write_openimages(root: Path, n_images: int, n_boxes: int, rng) -> None:
    folder = root / "openimages"
    folder.mkdir(parents=True)
    for name in ("class-descriptions-boxable.csv", "bbox_labels_600_hierarchy.json"):
        shutil.copyfile(TAXONOMY / name, folder / name)
    mids = pl.read_csv(
        TAXONOMY / "class-descriptions-boxable.csv", has_header=False, new_columns=["mid", "name"]
    )["mid"].to_numpy()
    image_ids = np.array([f"{v:016x}" for v in rng.integers(0, 2**63, n_images)])
    image_of = np.sort(rng.integers(0, n_images, n_boxes))
    x1, y1, x2, y2 = _boxes(rng, n_boxes)
    flag = lambda: rng.choice([-1, 0, 1], n_boxes)  # noqa: E731
    pl.DataFrame(
        {
            "ImageID": image_ids[image_of],
            "Source": "xclick",
            "LabelName": rng.choice(mids, n_boxes),
            "Confidence": 1,
            "XMin": x1.round(6),
            "XMax": x2.round(6),
            "YMin": y1.round(6),
            "YMax": y2.round(6),
            "IsOccluded": flag(),
            "IsTruncated": flag(),
            "IsGroupOf": rng.choice([0, 1], n_boxes),
            "IsDepiction": flag(),
            "IsInside": flag(),
        }
    ).write_csv(folder / "oidv6-train-annotations-bbox.csv")
    pl.DataFrame(
        {
            "ImageID": np.repeat(image_ids, 2),
            "Source": "verification",
            "LabelName": rng.choice(mids, 2 * n_images),
            "Confidence": rng.choice([0, 1], 2 * n_images),
        }
    ).unique(["ImageID", "LabelName"], keep="first", maintain_order=True).write_csv(
        folder / "oidv6-train-annotations-human-imagelabels-boxable.csv"
    )
    pl.DataFrame(
        {
            "source_image_id": image_ids,
            "width": rng.integers(320, 1025, n_images),
            "height": rng.integers(240, 1025, n_images),
        }
    ).write_csv(folder / "sizes.csv")


def generate(root: Path, n_boxes: int, n_images: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for name, write in (
        ("objects365", write_objects365),
        ("openimages", write_openimages),
        ("lvis", write_lvis),
    ):
        write(root, int(n_images * SHARES[name]), int(n_boxes * SHARES[name]), rng)


#: each child starts as a shell-started process does: importing polars here set polars'
#: allocator variable, which a child would inherit in place of detforge's setting
FRESH_ENV = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}


def measure(code: str, *args: str) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB) and stdout of ``python -c code args`` in a child."""
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        start = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-c", code, *args], stdout=stdout, stderr=stderr, env=FRESH_ENV
        )
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0), stderr.seek(0)
        if child.returncode:
            raise SystemExit(f"child failed:\n{stderr.read()}")
        return wall, usage.ru_maxrss / 1024, stdout.read().strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="where to generate (default: a temp dir)")
    parser.add_argument("--boxes", type=int, default=1_000_000)
    parser.add_argument("--images", type=int, default=100_000)
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="detforge-bench-"))
    root, out = work / "sources", work / "out"
    if not root.is_dir():
        start = time.perf_counter()
        generate(root, args.boxes, args.images)
        print(
            f"generated {args.boxes:,} boxes / {args.images:,} images in "
            f"{time.perf_counter() - start:.0f}s under {root}"
        )
    out.mkdir(parents=True, exist_ok=True)
    from detforge.taxonomy.io import resolve

    results = {
        "detforge": measure(DETFORGE, str(root), str(out)),
        "baseline": measure(BASELINE, str(root), str(out), str(resolve("bigdet-v1"))),
    }
    for name, (wall, peak, detail) in results.items():
        print(f"{name:9s} {wall:7.1f} s  peak RSS {peak:7.0f} MiB  {detail}")
    (dw, dp, _), (bw, bp, _) = results["detforge"], results["baseline"]
    print(
        f"speed-up {bw / dw:.1f}x (target >= 3x); memory {dp / bp:.2f} of baseline (target <= 0.5)"
    )
    if args.dir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
