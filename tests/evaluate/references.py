"""The reference evaluators (pycocotools, LVISEval) and other projects' real files, for the
identity tests. Every comparison is to 1e-9 on every number detforge reports."""

from __future__ import annotations

import contextlib
import copy
import gzip
import io
import json
import logging
from pathlib import Path

import numpy as np
import polars as pl
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from detforge.evaluators.results import EvalResult

DATA = Path(__file__).resolve().parents[1] / "data"
COCO_STATS = ["AP", "AP50", "AP75", "APs", "APm", "APl"]
COCO_STATS += ["AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]
#: LVISEval's result keys -> detforge's metric names
LVIS_KEYS = {"AR@300": "AR300", "ARs@300": "ARs", "ARm@300": "ARm", "ARl@300": "ARl"}
TOLERANCE = 1e-9


def load_data(name: str) -> object:
    """A JSON file of ``tests/data`` (gzipped or not)."""
    raw = (DATA / name).read_bytes()
    return json.loads(gzip.decompress(raw) if name.endswith(".gz") else raw)


def write_json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


def pycocotools(gt: dict, results: list[dict], image_ids: list[int] | None = None) -> COCOeval:
    """pycocotools' COCOeval, run and summarised, on copies of the inputs."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = copy.deepcopy(gt)
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(copy.deepcopy(results)), "bbox")
        if image_ids is not None:
            ev.params.imgIds = image_ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def lvis_eval(gt_file: Path, results: list[dict]) -> dict[str, float]:
    """The ``lvis`` package's LVISEval results (``AP``, ``APr``, ``AR@300``, ...)."""
    import lvis

    logging.getLogger("lvis").setLevel(logging.ERROR)
    had = hasattr(np, "float")
    np.float = np.float64  # lvis 0.5.3 still spells float64 `np.float` (gone in numpy 2)
    try:
        gt = lvis.LVIS(str(gt_file))
        ev = lvis.LVISEval(gt, lvis.LVISResults(gt, copy.deepcopy(results), max_dets=300), "bbox")
        ev.run()
        return {k: float(v) for k, v in ev.get_results().items()}
    finally:
        if not had:
            del np.float


def assert_equals_pycocotools(result: EvalResult, ref: COCOeval, label_offset: int = 0) -> None:
    """The 12 summary numbers and every class's AP/AP50/AP75/AR equal pycocotools'."""
    ours = result.metrics("coco")
    got = [-1.0 if ours[k] is None else ours[k] for k in COCO_STATS]
    np.testing.assert_allclose(got, ref.stats, rtol=0, atol=TOLERANCE)
    precision = ref.eval["precision"][:, :, :, 0, -1]  # T x R x K, area all, maxDets 100
    recall = ref.eval["recall"][:, :, 0, -1]
    table = result.protocols["coco"]["per_class"]
    assert table.height > 0
    for row in table.iter_rows(named=True):
        k = ref.params.catIds.index(row["label"] + label_offset)
        p, r = precision[:, :, k], recall[:, k]
        for key, values in (("AP", p), ("AP50", p[0]), ("AP75", p[5]), ("AR", r)):
            valid = values[values > -1]
            expected = valid.mean() if valid.size else None
            if expected is None:
                assert row[key] is None, (row, key)
            else:
                assert abs(row[key] - expected) <= TOLERANCE, (row, key, expected)


def assert_equals_lvis(result: EvalResult, ref: dict[str, float], protocol: str = "lvis") -> None:
    """Every LVISEval number (AP, AP50, AP75, APs/m/l, APr/c/f, AR@300, ARs/m/l)."""
    ours = result.metrics(protocol)
    assert len(ref) == 13
    got = [-1.0 if ours[LVIS_KEYS.get(k, k)] is None else ours[LVIS_KEYS.get(k, k)] for k in ref]
    np.testing.assert_allclose(got, list(ref.values()), rtol=0, atol=TOLERANCE)


def jittered(gt: dict, seed: int, *, false_positives: int = 15, decimals: int | None = None):
    """Predictions from real boxes: jittered copies, dropped ones, false positives;
    scores rounded to ``decimals`` (ties across images) when given."""
    rng = np.random.default_rng(seed)
    sizes = {i["id"]: (i["width"], i["height"]) for i in gt["images"]}
    cats = [c["id"] for c in gt["categories"]]
    preds = []
    for a in gt["annotations"]:
        if rng.random() < 0.15:
            continue
        x, y, w, h = a["bbox"]
        dx, dy, dw, dh = rng.normal(0, 0.1, 4) * [w, h, w, h]
        box = [max(x + dx, 0.0), max(y + dy, 0.0), max(w + dw, 1.0), max(h + dh, 1.0)]
        preds.append({"image_id": a["image_id"], "category_id": a["category_id"], "bbox": box})
    for image_id, (width, height) in sizes.items():
        for _ in range(false_positives):
            w, h = rng.uniform(5, width / 2), rng.uniform(5, height / 2)
            box = [rng.uniform(0, width - w), rng.uniform(0, height - h), w, h]
            preds.append({"image_id": image_id, "category_id": int(rng.choice(cats)), "bbox": box})
    for p, s in zip(preds, rng.permutation(len(preds)) / len(preds), strict=True):
        p["score"] = float(s) + 0.001 if decimals is None else round(float(s), decimals)
    return preds


def without_source_boxes(frame: pl.DataFrame) -> pl.DataFrame:
    """Objects whose ground truth can only come from the normalised float32 ``bbox``."""
    return frame.with_columns(pl.lit(None, frame.schema["source_bbox"]).alias("source_bbox"))
