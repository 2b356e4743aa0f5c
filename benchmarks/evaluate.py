"""Time `detforge evaluate`'s COCO protocol against faster-coco-eval alone and pycocotools.

5k images, 80 classes, ~100 detections per image (500k; about COCO val2017's size),
generated like the evaluator's tests. Each contender starts from the same files on disk
and its stats are checked equal:

* faster-coco-eval alone: ``COCO(gt.json)``, ``loadRes(preds.json)``, evaluate, accumulate;
* ``detforge evaluate --gt gt.json`` (:func:`evaluate_file`): the plain-file path;
* ``detforge evaluate OUT`` (:func:`evaluate`): the build's parquet tables;
* pycocotools (optional, about a minute).

Wall time and CPU time (user + sys of this process) are both printed: on a shared machine
the CPU time is the steadier figure. Target: detforge within 1.2x of faster-coco-eval.

    .venv/bin/python benchmarks/evaluate.py [--images 5000] [--skip-pycocotools]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "evaluate"))
from evaluate_synth import coco_ground_truth, make_dataset, make_predictions  # noqa: E402

from detforge.dataset import DetDataset  # noqa: E402
from detforge.evaluators import evaluate, evaluate_file  # noqa: E402

STATS = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]
TARGET = 1.2


def reference(module: str, gt_file: Path, preds_file: Path) -> np.ndarray:
    """COCO + loadRes + COCOeval of pycocotools or faster-coco-eval, from the files."""
    if module == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    else:
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_file))
        ev = COCOeval(gt, gt.loadRes(str(preds_file)), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.asarray(ev.stats[:12])


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(label: str, fn) -> tuple[float, float, object]:
    """Wall and CPU seconds of ``fn()``, printed, and its value."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    value = fn()
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    print(f"  {label:<52} {wall:7.2f} s wall {cpu:7.2f} s CPU", flush=True)
    return wall, cpu, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--classes", type=int, default=80)
    parser.add_argument("--repeat", type=int, default=3, help="best of N alternated runs")
    parser.add_argument("--skip-pycocotools", action="store_true", help="it takes about a minute")
    args = parser.parse_args()

    dataset = make_dataset(
        0, images=args.images, classes=args.classes, sources=("coco",), boxes_per_image=7.3
    )
    preds = make_predictions(dataset, 0, recall=0.8, false_positives=94)
    work = Path(tempfile.mkdtemp(prefix="detforge-bench-"))
    dataset.write(work / "tables")
    gt_file, preds_file = work / "gt.json", work / "preds.json"
    gt_file.write_text(json.dumps(coco_ground_truth(dataset)))  # category ids: unified + 1
    preds_file.write_text(json.dumps(preds))
    print(
        f"{args.images} images, {args.classes} classes, {dataset.objects.height} boxes, "
        f"{len(preds)} detections ({len(preds) / args.images:.0f}/image); best of {args.repeat}"
    )

    def build(protocols=("coco",), matches=False):
        return lambda: evaluate(
            DetDataset.read(work / "tables"),
            preds_file,
            protocols=protocols,
            matches=matches,
            category_ids="coco",
        )

    def plain():
        return evaluate_file(gt_file, preds_file, protocols=["coco"], matches=False)

    contenders = {
        "faster-coco-eval alone": lambda: reference("fce", gt_file, preds_file),
        "detforge evaluate --gt gt.json: coco": plain,
        "detforge evaluate OUT (tables): coco": build(),
    }
    # alternate the contenders so that load from other processes hits them alike
    best: dict[str, tuple[float, float]] = {}
    values: dict[str, object] = {}
    for _ in range(args.repeat):
        for label, fn in contenders.items():
            wall, cpu, values[label] = timed(label, fn)
            old = best.get(label, (float("inf"), float("inf")))
            best[label] = (min(old[0], wall), min(old[1], cpu))
    fast = values["faster-coco-eval alone"]
    for label in list(contenders)[1:]:
        mine = np.asarray([values[label].metrics("coco")[k] for k in STATS])
        np.testing.assert_allclose(mine, fast, rtol=0, atol=1e-9)
    timed("detforge evaluate OUT: coco + matches.parquet rows", build(matches=True))
    timed(
        "detforge evaluate OUT: coco + lvis + federated + matches",
        build(("coco", "lvis", "federated"), True),
    )
    (f_wall, f_cpu) = best["faster-coco-eval alone"]
    for label in list(contenders)[1:]:
        wall, cpu = best[label]
        print(
            f"{label} / faster-coco-eval: {wall / f_wall:.2f}x wall, {cpu / f_cpu:.2f}x CPU "
            f"(target <= {TARGET})"
        )
    if not args.skip_pycocotools:
        wall, _, slow = timed("pycocotools", lambda: reference("pycocotools", gt_file, preds_file))
        np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-9)
        print(f"pycocotools / detforge --gt: {wall / best[list(contenders)[1]][0]:.1f}x slower")
    print(f"AP {fast[0]:.4f}: identical stats (1e-9) from every contender")


if __name__ == "__main__":
    main()
