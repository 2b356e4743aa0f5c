"""`detforge benchmark`: BigDetection's detector pre-training benchmark (mmdet/mmengine)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from detforge.cli.app import app, console

benchmark_app = typer.Typer(
    help="Detector pre-training benchmark: pre-train on a built dataset, fine-tune on a "
    "downstream COCO-format set at several fractions, compare with no pre-training.",
    no_args_is_help=True,
)
app.add_typer(benchmark_app, name="benchmark")


def _numbers(text: str, kind: type, option: str, example: str, count: int | None = None):
    """A comma-separated list of numbers, or a usage error naming the option."""
    try:
        values = tuple(kind(part) for part in text.split(","))
    except ValueError:
        values = ()
    if not values or (count is not None and len(values) != count):
        raise typer.BadParameter(f"{text!r}: expected numbers like {example}", param_hint=option)
    return values


def _print_summary(run: Path) -> None:
    from detforge.evaluators.pretrain import summarize

    summary = summarize(run)
    table = Table(title=f"box AP (%) — {run}")
    for column in ("fraction", "scratch", "pre-trained", "gain"):
        table.add_column(column, justify="right")

    def cell(value: float | None, signed: bool = False) -> str:
        if value is None:
            return "pending"
        return f"{100 * value:+.1f}" if signed else f"{100 * value:.1f}"

    for row in summary.iter_rows(named=True):
        table.add_row(
            f"{row['fraction_pct']:g} %",
            cell(row["AP_scratch"]),
            cell(row["AP_pretrained"]),
            cell(row["AP_gain"], signed=True),
        )
    console.print(table)
    written = json.loads((run / "summary.json").read_text())
    for warning in written["warnings"]:
        console.print(f"[bold yellow]warning[/]: {warning}", highlight=False)
    console.print(f"written: {run / 'summary.md'}, {run / 'summary.json'}")
    for step, path in written.get("predictions", {}).items():
        console.print(f"predictions of {step}: {path}", highlight=False)


@benchmark_app.command("pretrain")
def pretrain(
    dataset: Path = typer.Argument(..., help="A build directory (its coco/ export is used)."),
    downstream_train: Path = typer.Option(..., help="Downstream COCO train annotations."),
    downstream_val: Path = typer.Option(..., help="Downstream COCO val annotations (AP)."),
    downstream_images: Path = typer.Option(..., help="Folder the downstream file_names are in."),
    run: Path = typer.Option(..., "--run", help="Run directory (created; rerun to resume)."),
    detector: str = typer.Option(
        "faster_rcnn_r50_fpn",
        help="faster_rcnn_r50_fpn | retinanet_r50_fpn | deformable_detr_r50",
    ),
    fractions: str = typer.Option("1,2,5,10,100", help="Downstream train fractions, in %."),
    seed: int = typer.Option(1, help="Seed of the fraction subsets and sampling."),
    pretrain_iters: int = typer.Option(90_000, help="Stage-1 iterations."),
    finetune_iters: int = typer.Option(12_000, help="Stage-2 iterations per fraction."),
    batch_size: int = typer.Option(2, help="Images per GPU (or per CPU process)."),
    lr: float | None = typer.Option(
        None,
        help="Learning rate, used as given (default: the detector template's optimizer and "
        "lr, scaled linearly to batch-size x gpus against the template's batch by mmengine's "
        "auto_scale_lr: Faster R-CNN SGD 0.02 and RetinaNet SGD 0.01 at 16, Deformable "
        "DETR AdamW 2e-4 at 32).",
    ),
    backbone_depth: int = typer.Option(50, help="ResNet depth (18/34/50)."),
    backbone_weights: str | None = typer.Option(
        None, help="Local ImageNet ResNet checkpoint to start from (default: random init)."
    ),
    image_scale: str = typer.Option("1333,800", help="Resize scale W,H."),
    class_aware: bool = typer.Option(
        True, "--class-aware/--no-class-aware", help="Class-aware sampling in stage 1."
    ),
    device: str = typer.Option("auto", help="auto | cuda | cpu."),
    gpus: int = typer.Option(1, help="GPUs per step (>1 launches torchrun)."),
    allow_contaminated_val: bool = typer.Option(
        False,
        "--allow-contaminated-val",
        help="Run although --downstream-val is not among the eval sets the build was "
        "decontaminated against (the summary carries a warning).",
    ),
    score_threshold: float | None = typer.Option(
        None,
        help="Lowest score a detection on the val set keeps (default: the detector "
        "template's, 0.05; mmdet's LVIS configs use 0.0001). Deformable DETR keeps its top "
        "100 per image instead.",
    ),
) -> None:
    """Run stage 1, then stage 2 with and without it at every fraction; print the AP table.

    Configs are written from the templates mmdet ships, into the run directory; a rerun
    with the same options resumes (finished steps are skipped, an interrupted one
    continues from its last checkpoint).

    Every stage-2 step saves its detections on --downstream-val as a COCO results JSON,
    RUN/finetune/<p>pct/<scratch|pretrained>/predictions.json (ids as in that file), with
    predictions.meta.json beside it: `detforge evaluate --gt VAL -p FILE` scores them, and
    when VAL is the build's own split (OUT/coco/val.json), `detforge evaluate OUT -p FILE`
    scores them per source with the COCO, LVIS and federated protocols.
    """
    from detforge.evaluators.pretrain import BenchmarkPlan, run_benchmark

    plan = BenchmarkPlan(
        build_dir=dataset.resolve(),
        downstream_train=downstream_train.resolve(),
        downstream_val=downstream_val.resolve(),
        downstream_images=downstream_images.resolve(),
        detector=detector,
        fractions=_numbers(fractions, float, "--fractions", "1,2,5,10,100"),
        seed=seed,
        pretrain_iters=pretrain_iters,
        finetune_iters=finetune_iters,
        batch_size=batch_size,
        lr=lr,
        backbone_depth=backbone_depth,
        backbone_weights=backbone_weights,
        image_scale=_numbers(image_scale, int, "--image-scale", "1333,800", count=2),
        class_aware=class_aware,
        device=device,
        gpus=gpus,
        allow_contaminated_val=allow_contaminated_val,
        score_threshold=score_threshold,
    )
    run_benchmark(plan, run, log=console.print)
    _print_summary(run)


@benchmark_app.command("summarize")
def summarize_command(
    run: Path = typer.Argument(..., help="A benchmark run directory."),
) -> None:
    """Re-read a run's finished steps and print / write its summary table."""
    _print_summary(run)
