"""The benchmark's run directory: plan, steps (each resumable), summary.

```
RUN/plan.json                     the options; a rerun must agree with them
RUN/training.json                 the learning rate the steps train with, and why
RUN/data/                         downstream subsets, sampling weights, image links
RUN/pretrain/                     stage 1 (config.py, checkpoints, metrics.json when done)
RUN/finetune/<p>pct/scratch/      stage 2 without pre-training (the baseline)
RUN/finetune/<p>pct/pretrained/   stage 2 from stage 1's checkpoint
RUN/summary.{json,md}             AP per fraction, with and without pre-training, and the gain
```

Each stage-2 step also saves its detections on the downstream val set:
``<step>/predictions.json`` (COCO results, ids as in that file) and
``<step>/predictions.meta.json`` (what made them, how they are numbered), for
``detforge evaluate`` and ``detforge browse`` (:mod:`.predictions`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import polars as pl

from detforge.atomic import write_text
from detforge.dataset import DetDataset
from detforge.errors import DetforgeError
from detforge.evaluators.pretrain import data
from detforge.evaluators.pretrain.configs import (
    DataSpec,
    TrainSpec,
    check_score_threshold,
    learning_rate,
    write_config,
)
from detforge.evaluators.pretrain.holdout import (
    check_downstream_val,
    contamination_warning,
    file_sha256,
)
from detforge.evaluators.pretrain.predictions import PREDICTIONS, numbering
from detforge.evaluators.provenance import meta_path
from detforge.extras import require

METRICS = {"AP": "coco/bbox_mAP", "AP50": "coco/bbox_mAP_50", "AP75": "coco/bbox_mAP_75"}


@dataclasses.dataclass(frozen=True)
class BenchmarkPlan:
    """Everything a benchmark run depends on (saved as ``plan.json``)."""

    build_dir: Path
    downstream_train: Path
    downstream_val: Path
    downstream_images: Path
    detector: str = "faster_rcnn_r50_fpn"
    fractions: tuple[float, ...] = (1, 2, 5, 10, 100)
    seed: int = 1
    pretrain_iters: int = 90_000
    finetune_iters: int = 12_000
    batch_size: int = 2
    lr: float | None = None  # None: the template's, scaled to batch_size x gpus
    backbone_depth: int = 50
    backbone_weights: str | None = None
    image_scale: tuple[int, int] = (1333, 800)
    class_aware: bool = True
    device: str = "auto"
    gpus: int = 1
    allow_contaminated_val: bool = False
    score_threshold: float | None = None  # None: the detector template's

    def to_json(self) -> dict:
        return {
            k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v)
            for k, v in dataclasses.asdict(self).items()
        }


@dataclasses.dataclass(frozen=True)
class Step:
    name: str
    work_dir: Path
    data: DataSpec
    train: TrainSpec
    predictions: dict | None = None  # what its predictions.meta.json says (steps that test)

    @property
    def done(self) -> bool:
        return (self.work_dir / "metrics.json").is_file()


def _fraction_name(percent: float) -> str:
    return f"{percent:g}pct"


def _check_plan(plan: BenchmarkPlan, run_dir: Path) -> None:
    saved = run_dir / "plan.json"
    wanted = plan.to_json()
    if saved.is_file():
        held = json.loads(saved.read_text())
        changed = sorted(k for k in wanted if held.get(k) != wanted[k])
        if changed:
            raise DetforgeError(
                f"{run_dir} holds a run with other options ({', '.join(changed)}): "
                "rerun with the same options to resume, or choose a new --run"
            )
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text(saved, json.dumps(wanted, indent=2, sort_keys=True) + "\n")


def plan_steps(plan: BenchmarkPlan, run_dir: Path) -> list[Step]:
    """Prepare the data files and list the steps: pre-train, then per fraction both fine-tunes."""
    data_dir = run_dir / "data"
    build_coco = plan.build_dir / "coco"
    if not (build_coco / "train.json").is_file():
        raise DetforgeError(f"{build_coco / 'train.json'}: missing; is {plan.build_dir} a build?")
    # the build's tables give class names and sampling weights without loading the JSON
    build = DetDataset.read(plan.build_dir / "tables")
    weights = None
    if plan.class_aware:
        weights = data_dir / "class_aware_weights.json"
        if not weights.is_file():
            data.write_json(weights, data.class_aware_weights(build))
    pretrain_data = DataSpec(
        train_ann=build_coco / "train.json",
        val_ann=None,
        images=data.link_build_images(build_coco, data_dir / "build_images"),
        classes=tuple(build.categories.sort("id")["name"].to_list()),
    )
    common = dict(
        detector=plan.detector,
        batch_size=plan.batch_size,
        lr=plan.lr,
        backbone_depth=plan.backbone_depth,
        backbone_weights=plan.backbone_weights,
        image_scale=tuple(plan.image_scale),
        seed=plan.seed,
        launcher="pytorch" if plan.gpus > 1 else "none",
        score_threshold=plan.score_threshold,
    )
    pretrain = Step(
        "pretrain",
        run_dir / "pretrain",
        pretrain_data,
        TrainSpec(iters=plan.pretrain_iters, sample_weights=weights, **common),
    )
    downstream = data.load_coco(plan.downstream_train)
    classes = data.class_names(downstream)
    about = _predictions_about(plan, build)
    steps = [pretrain]
    for percent in plan.fractions:
        name = _fraction_name(percent)
        subset = data_dir / f"downstream_train_{name}_seed{plan.seed}.json"
        if not subset.is_file():
            data.write_json(subset, data.fraction_subset(downstream, percent, plan.seed))
        spec = DataSpec(subset, plan.downstream_val, plan.downstream_images, classes)
        for kind in ("scratch", "pretrained"):
            load_from = run_dir / "pretrain" / "final.pth" if kind == "pretrained" else None
            train = TrainSpec(iters=plan.finetune_iters, load_from=load_from, **common)
            step = f"{name}/{kind}"
            model = _describe_model(plan, percent, pretrained=kind == "pretrained")
            predictions = {**about, "model": f"{model} (benchmark step {step})", "step": step}
            steps.append(Step(step, run_dir / "finetune" / name / kind, spec, train, predictions))
    return steps


def _predictions_about(plan: BenchmarkPlan, build: DetDataset) -> dict:
    """What every step's ``predictions.meta.json`` says of the set it was tested on."""
    val = data.load_coco(plan.downstream_val)
    scheme = numbering(val["categories"], build.categories)
    return {
        "written_by": "detforge benchmark pretrain",
        "ground_truth": str(plan.downstream_val),
        "ground_truth_sha256": file_sha256(plan.downstream_val),
        # the downstream val numbers the build's classes as its COCO export does (or as
        # the unified ids): say so, so that evaluate scores them against the build
        "category_ids": scheme,
        "taxonomy_fingerprint": build.meta.get("taxonomy_fingerprint") if scheme else None,
        "score_threshold": plan.score_threshold,
    }


def _describe_model(plan: BenchmarkPlan, percent: float, pretrained: bool) -> str:
    """One line: the detector behind a stage-2 step's predictions."""
    init = f"from {plan.backbone_weights}" if plan.backbone_weights else "random init"
    trained = (
        f"pre-trained {plan.pretrain_iters} iterations on {plan.build_dir.name}, then "
        f"fine-tuned {plan.finetune_iters}"
        if pretrained
        else f"trained {plan.finetune_iters} iterations from scratch"
    )
    return (
        f"{plan.detector} with a ResNet-{plan.backbone_depth} backbone ({init}), {trained} "
        f"on {percent:g} % of {plan.downstream_train.name}"
    )


def _command(plan: BenchmarkPlan, config: Path) -> list[str]:
    entry = ["-m", "detforge.evaluators.pretrain.train", str(config)]
    if plan.gpus > 1:
        return [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={plan.gpus}",
                *entry, "--launcher", "pytorch"]  # fmt: skip
    return [sys.executable, *entry]


def _environment(plan: BenchmarkPlan) -> dict[str, str]:
    env = dict(os.environ)
    if plan.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    elif plan.device not in ("auto", "cuda"):
        raise DetforgeError(f"--device {plan.device!r}: use auto, cuda or cpu")
    return env


def run_step(plan: BenchmarkPlan, step: Step) -> None:
    """Train (and test) one step in a subprocess; its output goes to ``step.log``."""
    step.work_dir.mkdir(parents=True, exist_ok=True)
    config = write_config(step.data, step.train, step.work_dir, step.predictions)
    log = step.work_dir / "step.log"
    with log.open("a") as out:
        code = subprocess.call(
            _command(plan, config), stdout=out, stderr=subprocess.STDOUT, env=_environment(plan)
        )
    if code != 0:
        lines = [line for line in log.read_text().splitlines() if line.strip()]
        raise DetforgeError(
            f"step {step.name} failed (exit {code}): {lines[-1] if lines else 'no output'} "
            f"(full log: {log})"
        )
    if step.name == "pretrain":
        checkpoint = json.loads((step.work_dir / "metrics.json").read_text())["checkpoint"]
        final = step.work_dir / "final.pth"
        if not final.exists():
            final.symlink_to(Path(checkpoint).name)


def run_benchmark(
    plan: BenchmarkPlan, run_dir: Path, log: Callable[[str], None] = print
) -> pl.DataFrame:
    """Run every step not done yet, then summarise. Safe to rerun after an interruption."""
    for module in ("torch", "mmengine", "mmdet", "mmcv"):
        require(module, "train")
    warning = check_downstream_val(plan.build_dir, plan.downstream_val, plan.allow_contaminated_val)
    check_score_threshold(plan.detector, plan.score_threshold)
    _check_plan(plan, run_dir)
    if warning:
        log(f"warning: {warning}")
    lr = learning_rate(plan.detector, plan.batch_size, plan.gpus, plan.lr)
    training = {"learning_rate": {**dataclasses.asdict(lr), "description": lr.describe()}}
    write_text(run_dir / "training.json", json.dumps(training, indent=2) + "\n")
    log(f"training: {lr.describe()}")
    steps = plan_steps(plan, run_dir)
    for index, step in enumerate(steps, 1):
        if step.done:
            log(f"[{index}/{len(steps)}] {step.name}: done earlier, skipped")
            continue
        log(f"[{index}/{len(steps)}] {step.name}: training {step.train.iters} iterations")
        run_step(plan, step)
        written = step.work_dir / PREDICTIONS
        if written.is_file():
            count = json.loads(meta_path(written).read_text()).get("detections")
            log(f"[{index}/{len(steps)}] {step.name}: {count} detections -> {written}")
    return summarize(run_dir)


def _metric(path: Path, key: str) -> float | None:
    if not path.is_file():
        return None
    return json.loads(path.read_text())["metrics"].get(key)


def summarize(run_dir: Path) -> pl.DataFrame:
    """AP per fraction with and without pre-training, from the steps done so far.

    Writes ``summary.json`` and ``summary.md``; steps not done yet show as null.
    """
    plan_file = run_dir / "plan.json"
    if not plan_file.is_file():
        raise DetforgeError(f"{run_dir}: not a benchmark run (no plan.json)")
    plan = json.loads(plan_file.read_text())
    rows = []
    for percent in plan["fractions"]:
        base = run_dir / "finetune" / _fraction_name(percent)
        row: dict[str, float | None] = {"fraction_pct": float(percent)}
        for label, key in METRICS.items():
            scratch = _metric(base / "scratch" / "metrics.json", key)
            pretrained = _metric(base / "pretrained" / "metrics.json", key)
            row[f"{label}_scratch"] = scratch
            row[f"{label}_pretrained"] = pretrained
            both = scratch is not None and pretrained is not None
            row[f"{label}_gain"] = pretrained - scratch if both else None
        rows.append(row)
    table = pl.DataFrame(rows, schema={"fraction_pct": pl.Float64} | {
        f"{m}_{k}": pl.Float64 for m in METRICS for k in ("scratch", "pretrained", "gain")
    })  # fmt: skip
    training_file = run_dir / "training.json"
    training = json.loads(training_file.read_text()) if training_file.is_file() else {}
    lr = training.get("learning_rate")
    warning = contamination_warning(Path(plan["build_dir"]), Path(plan["downstream_val"]))
    predictions = sorted(run_dir.glob(f"finetune/*/*/{PREDICTIONS}"))
    summary = {
        "schema_version": 2,
        "detector": plan["detector"],
        "learning_rate": lr,
        "warnings": [warning] if warning else [],
        "rows": table.to_dicts(),
        # each stage-2 step's detections on the downstream val set (COCO results JSON)
        "predictions": {
            str(p.parent.relative_to(run_dir / "finetune")): str(p) for p in predictions
        },
    }
    write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    described = lr["description"] if lr else "not recorded"
    write_text(run_dir / "summary.md", _markdown(plan, table, described, summary["warnings"]))
    return table


def _markdown(plan: dict, table: pl.DataFrame, lr: str, warnings: list[str]) -> str:
    def cell(value: float | None, signed: bool = False) -> str:
        if value is None:
            return "pending"
        return f"{100 * value:+.1f}" if signed else f"{100 * value:.1f}"

    lines = [
        f"# Pre-training benchmark: {plan['detector']}",
        "",
        f"Stage 1 on `{plan['build_dir']}` ({plan['pretrain_iters']} iterations), stage 2 on "
        f"`{plan['downstream_train']}` ({plan['finetune_iters']} iterations per fraction, "
        f"seed {plan['seed']}); COCO box AP on `{plan['downstream_val']}`. Training: {lr}, "
        f"{plan['batch_size']} images per GPU x {plan['gpus']}.",
        "",
        "Each stage-2 step's detections on the val set: "
        f"`finetune/<fraction>/<scratch|pretrained>/{PREDICTIONS}` (COCO results; "
        "`detforge evaluate` scores them).",
        "",
        *(f"**Warning**: {warning}.\n" for warning in warnings),
        "| fraction | AP scratch | AP pre-trained | gain | AP50 scratch | AP50 pre-trained |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in table.iter_rows(named=True):
        lines.append(
            f"| {row['fraction_pct']:g} % | {cell(row['AP_scratch'])} | {cell(row['AP_pretrained'])}"
            f" | {cell(row['AP_gain'], signed=True)} | {cell(row['AP50_scratch'])}"
            f" | {cell(row['AP50_pretrained'])} |"
        )
    return "\n".join(lines) + "\n"
