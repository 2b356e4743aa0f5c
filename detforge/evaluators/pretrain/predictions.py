"""Every benchmark step that tests saves its detections: ``<step>/predictions.json``.

The file is a COCO results JSON (``[{image_id, category_id, bbox: [x, y, w, h] in pixels,
score}]``) on the step's test set, numbered as that set's annotation file numbers its
images and categories: what mmdet's ``CocoMetric`` scores, so ``detforge evaluate --gt
<val.json> -p predictions.json`` reproduces the step's AP. Beside it,
``predictions.meta.json`` (:mod:`detforge.evaluators.provenance`) says what made the
detections and, when the test set is a build's own COCO export (unified id + 1), declares
that numbering: ``detforge evaluate OUT -p predictions.json`` then scores them with the
build's COCO, LVIS and federated protocols per source, no flag needed.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import polars as pl

from detforge.evaluators.provenance import write_meta

#: the file name of a step's detections
PREDICTIONS = "predictions.json"
#: mmdet's ``CocoMetric`` writes ``<outfile_prefix>.bbox.json``; renamed when whole
MMDET_PREFIX = ".predictions-partial"


def numbering(categories: list[dict], build_categories: pl.DataFrame) -> str | None:
    """How a COCO file's ``categories`` number the build's classes: ``coco`` (unified id +
    1, the build's COCO export), ``unified``, or None (some other numbering)."""
    theirs = sorted((int(c["id"]), str(c["name"])) for c in categories)
    ours = sorted(build_categories.select("id", "name").iter_rows())
    for scheme, offset in (("coco", 1), ("unified", 0)):
        if theirs == [(i + offset, name) for i, name in ours]:
            return scheme
    return None


def publish(work_dir: Path, about: dict) -> Path | None:
    """Rename mmdet's dump in ``work_dir`` to :data:`PREDICTIONS` and write its meta file
    (``about`` plus the detection count). None when the step wrote no detections file."""
    dump = work_dir / f"{MMDET_PREFIX}.bbox.json"
    if not dump.is_file():
        return None
    target = work_dir / PREDICTIONS
    detections = len(orjson.loads(dump.read_bytes()))
    write_meta(target, {**about, "detections": detections})
    os.replace(dump, target)  # the meta file first: predictions.json never appears without it
    return target
