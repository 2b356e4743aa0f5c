"""Run one training stage in its own process: ``python -m detforge.evaluators.pretrain.train``.

Trains from the config, tests when the config has a test set (saving its detections as
``predictions.json``, see :mod:`detforge.evaluators.pretrain.predictions`), and writes
``metrics.json`` last, so a step with ``metrics.json`` is complete. Rerun after an
interruption, it resumes from the last checkpoint in the work dir.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config", type=Path)
    parser.add_argument("--launcher", default="none")
    args = parser.parse_args()
    # mmengine checkpoints hold its own classes; torch's weights_only default refuses them.
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    from mmengine.config import Config
    from mmengine.runner import Runner

    from detforge.atomic import write_text
    from detforge.evaluators.pretrain.predictions import publish

    cfg = Config.fromfile(str(args.config))
    cfg.launcher = args.launcher
    work_dir = Path(cfg.work_dir)
    cfg.resume = (work_dir / "last_checkpoint").is_file()
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics, note = {}, None
    if cfg.get("test_dataloader"):
        metrics = runner.test()
        if not metrics:
            # mmdet's CocoMetric returns nothing when no box passes the score threshold:
            # that is an AP of 0, recorded as such.
            metrics = {f"coco/bbox_mAP{suffix}": 0.0 for suffix in ("", "_50", "_75")}
            note = "no detection above the score threshold"
    if runner.rank == 0:
        if cfg.get("test_dataloader"):
            publish(work_dir, dict(cfg.get("detforge_predictions") or {}))
        checkpoint = (work_dir / "last_checkpoint").read_text().strip()
        result = {
            "metrics": {k: float(v) for k, v in metrics.items()},
            "checkpoint": checkpoint,
            "note": note,
        }
        write_text(work_dir / "metrics.json", json.dumps(result, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
