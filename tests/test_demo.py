"""`scripts/demo.sh` (what `make demo` runs) end to end, then again: every step's result is
where the demo says, and a rerun resumes or replaces only what the demo wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

STEPS = [f"== {n}/6" for n in range(1, 7)]


def _run_demo(out: Path, env: dict[str, str]) -> str:
    run = subprocess.run(
        ["bash", str(REPO / "scripts" / "demo.sh"), str(out)],
        capture_output=True, text=True, env=env, cwd=out.parent, check=False, timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    return run.stdout


@pytest.mark.slow
def test_the_demo_walks_the_four_uses_and_reruns(tmp_path):
    from detforge.inspection.database import start_mongod

    server = start_mongod(tmp_path / "mongo")
    env = {
        **os.environ,
        "DETFORGE": str(Path(sys.executable).with_name("detforge")),
        # the detector at its smallest: the mechanics, not the minutes
        "DEMO_PRETRAIN_ITERS": "2",
        "DEMO_FINETUNE_ITERS": "2",
        "FIFTYONE_DATABASE_URI": server.uri,
        "FIFTYONE_DATABASE_NAME": "detforge_demo_test",
        "FIFTYONE_CONFIG_DIR": str(tmp_path / "fiftyone"),
        "FIFTYONE_DO_NOT_TRACK": "true",
        "COLUMNS": "200",
    }
    out = tmp_path / "demo"
    try:
        first = _run_demo(out, env)
        headers = [line.split()[1] for line in first.splitlines() if line.startswith("== ")]
        assert headers == ["1/6"] * 3 + ["2/6", "3/6", "4/6", "4/6", "5/6", "6/6", "done"]
        predictions = out / "benchmark/finetune/100pct/pretrained/predictions.json"
        meta = json.loads(predictions.with_name("predictions.meta.json").read_text())
        assert meta["category_ids"] == "coco" and meta["detections"] > 0
        assert meta["detections"] == len(json.loads(predictions.read_text()))
        evaluation = json.loads((out / "bigdet/eval/val/eval.json").read_text())
        assert evaluation["category_ids"] == "coco"  # no flag: the meta file said so
        assert evaluation["counts"]["detections"] == meta["detections"]
        assert set(evaluation["per_source"]["federated"]) == {"lvis", "objects365", "openimages"}
        probe = json.loads((out / "probe-run/results.json").read_text())
        assert probe["warnings"] and "its weights are random" in probe["warnings"][0]
        assert "its weights are random" in " ".join(first.split())
        browse = first[first.index(STEPS[4]) : first.index(STEPS[5])]
        assert "FiftyOne dataset detforge-demo" in browse
        for view in ("high-confidence-false-positives", "rare-class-misses", "probe-failures-"):
            assert view in browse
        assert "fiftyone app launch detforge-demo" in browse
        listed = first[first.index("where each result is") :]
        for path in ("sample", "bigdet/report/report.md", "benchmark/summary.md",
                     "bigdet/eval/val/eval.md", "probe-run/report.md", "tiny-clip"):  # fmt: skip
            assert str(out / path) in listed and (out / path).exists(), path

        # a rerun: the benchmark resumes, the rest replace their own outputs; a file the
        # demo did not write stays
        (out / "my-notes.txt").write_text("mine")
        again = _run_demo(out, env)
        assert again.count("done earlier, skipped") == 3
        assert "where each result is" in again
        assert (out / "my-notes.txt").read_text() == "mine"
    finally:
        server.stop()
