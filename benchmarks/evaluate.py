"""Time `detforge evaluate`'s COCO protocol against faster-coco-eval alone and pycocotools.

5k images, 80 classes, ~100 detections per image (about COCO val2017's size), generated
like the evaluator's tests. Each contender starts from the same files on disk: the
ground truth (detforge: the dataset's parquet tables; the others: a COCO JSON) and one
COCO results JSON, and its stats are checked equal.

    .venv/bin/python benchmarks/evaluate.py [--images 5000] [--skip-pycocotools]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "evaluate"))
from evaluate_synth import coco_ground_truth, make_dataset, make_predictions  # noqa: E402

from detforge.dataset import DetDataset  # noqa: E402
from detforge.evaluators import evaluate  # noqa: E402

STATS = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]


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


def timed(label: str, fn) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - start
    print(f"  {label:<52} {seconds:7.2f} s", flush=True)
    return seconds, value


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
    gt_file.write_text(json.dumps(coco_ground_truth(dataset)))
    preds_file.write_text(json.dumps(preds))
    print(
        f"{args.images} images, {args.classes} classes, {dataset.objects.height} boxes, "
        f"{len(preds)} detections ({len(preds) / args.images:.0f}/image); best of {args.repeat}"
    )

    def ours(protocols=("coco",), matches=False):
        return lambda: evaluate(
            DetDataset.read(work / "tables"), preds_file, protocols=protocols, matches=matches
        )

    # alternate the two contenders so that load from other processes hits both alike
    fast_times, our_times = [], []
    for _ in range(args.repeat):
        seconds, fast = timed(
            "faster-coco-eval alone", lambda: reference("fce", gt_file, preds_file)
        )
        fast_times.append(seconds)
        seconds, result = timed("detforge evaluate: coco", ours())
        our_times.append(seconds)
    t_fast, t_ours = min(fast_times), min(our_times)
    t_match, _ = timed("detforge evaluate: coco + matches.parquet rows", ours(matches=True))
    t_all, _ = timed(
        "detforge evaluate: coco + lvis + federated + matches",
        ours(("coco", "lvis", "federated"), True),
    )
    mine = np.asarray([result.metrics("coco")[k] for k in STATS])
    np.testing.assert_allclose(mine, fast, rtol=0, atol=1e-6)
    print(f"detforge / faster-coco-eval: {t_ours / t_fast:.2f}x (target <= 1.10)")
    if not args.skip_pycocotools:
        t_py, slow = timed("pycocotools", lambda: reference("pycocotools", gt_file, preds_file))
        np.testing.assert_allclose(mine, slow, rtol=0, atol=1e-6)
        print(f"pycocotools / detforge: {t_py / t_ours:.1f}x faster (target >= 5)")
    print(
        f"AP {mine[0]:.4f}: identical stats from every contender; "
        f"matches + all protocols: {t_match:.1f} s / {t_all:.1f} s"
    )


if __name__ == "__main__":
    main()
