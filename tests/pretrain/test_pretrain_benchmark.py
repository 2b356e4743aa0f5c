"""The pre-training benchmark on CPU: a tiny ResNet-18 detector, a few iterations."""

from __future__ import annotations

import json

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import scheduler as mmengine_schedulers
from typer.testing import CliRunner

from detforge.cli import app
from detforge.errors import DetforgeError
from detforge.evaluators.pretrain import data
from detforge.evaluators.pretrain.configs import (
    TEMPLATES,
    DataSpec,
    TrainSpec,
    learning_rate,
    write_config,
)
from detforge.evaluators.provenance import read_meta


def _args(d, run, *extra):
    return [
        "benchmark", "pretrain", str(d["build_dir"]),
        "--downstream-train", str(d["downstream_train"]),
        "--downstream-val", str(d["downstream_val"]),
        "--downstream-images", str(d["downstream_images"]),
        "--run", str(run), "--fractions", "50,100", "--pretrain-iters", "2",
        "--finetune-iters", "2", "--backbone-depth", "18", "--image-scale", "96,64",
        "--device", "cpu", *extra,
    ]  # fmt: skip


@pytest.mark.slow
def test_both_stages_baseline_summary_and_resume(tiny_benchmark_data, tmp_path):
    run = tmp_path / "run"
    result = CliRunner().invoke(app, _args(tiny_benchmark_data, run))
    assert result.exit_code == 0, result.output
    summary = json.loads((run / "summary.json").read_text())
    assert [row["fraction_pct"] for row in summary["rows"]] == [50.0, 100.0]
    for row in summary["rows"]:
        for key in ("AP_scratch", "AP_pretrained", "AP50_scratch", "AP50_pretrained"):
            assert row[key] is not None and 0.0 <= row[key] <= 1.0
        assert row["AP_gain"] == pytest.approx(row["AP_pretrained"] - row["AP_scratch"])
    pretrained = Config.fromfile(str(run / "finetune/50pct/pretrained/config.py"))
    assert pretrained.load_from.endswith("pretrain/final.pth")
    assert Config.fromfile(str(run / "finetune/50pct/scratch/config.py")).load_from is None
    stage1 = Config.fromfile(str(run / "pretrain/config.py"))
    assert stage1.train_dataloader.sampler.type == "WeightedImageSampler"
    # mmengine itself scaled the template's lr to the run's batch (2 of Faster R-CNN's 16)
    assert "Scaling the original LR by 0.125" in (run / "pretrain/step.log").read_text()
    assert summary["learning_rate"]["lr"] == pytest.approx(0.0025)
    assert summary["warnings"] == []
    _check_predictions(tiny_benchmark_data, run, summary, tmp_path)

    # an interrupted step (no metrics.json yet) is redone from its checkpoint; the rest skipped
    (run / "finetune/100pct/pretrained/metrics.json").unlink()
    result = CliRunner().invoke(app, _args(tiny_benchmark_data, run))
    assert result.exit_code == 0, result.output
    assert result.output.count("done earlier, skipped") == 4
    assert "100pct/pretrained: training" in result.output
    assert (run / "finetune/100pct/pretrained/metrics.json").is_file()

    resummarised = CliRunner().invoke(app, ["benchmark", "summarize", str(run)])
    assert resummarised.exit_code == 0 and "100 %" in resummarised.output


def _check_predictions(d, run, summary, tmp_path):
    """Each stage-2 step saved its detections on the val set, numbered as that file; scored
    on the file they reproduce the step's AP, and on the build no flag is needed."""
    val = json.loads(d["downstream_val"].read_text())
    steps = [f"{p}pct/{k}" for p in (50, 100) for k in ("scratch", "pretrained")]
    assert sorted(summary["predictions"]) == sorted(steps)
    for step in steps:
        path = run / "finetune" / step / "predictions.json"
        assert summary["predictions"][step] == str(path)
        detections = json.loads(path.read_text())
        assert detections, step  # two classes: their scores pass the template's 0.05
        assert {p["image_id"] for p in detections} <= {i["id"] for i in val["images"]}
        assert {p["category_id"] for p in detections} <= {c["id"] for c in val["categories"]}
        meta = read_meta(path)
        assert meta["detections"] == len(detections) and meta["category_ids"] == "coco"
        assert meta["ground_truth"] == str(d["downstream_val"]) and step in meta["model"]
        scored = CliRunner().invoke(
            app, ["evaluate", "--gt", str(d["downstream_val"]), "-p", str(path),
                  "--out", str(tmp_path / "gt" / step)],
        )  # fmt: skip
        assert scored.exit_code == 0, scored.output
        ap = json.loads((tmp_path / "gt" / step / "eval.json").read_text())["protocols"]
        step_ap = json.loads((path.parent / "metrics.json").read_text())["metrics"]
        # mmdet's CocoMetric rounds its AP to 3 decimals
        assert ap["coco"]["metrics"]["AP"] == pytest.approx(step_ap["coco/bbox_mAP"], abs=5e-4)
    on_build = tmp_path / "on-build"
    path = run / "finetune/100pct/pretrained/predictions.json"
    scored = CliRunner().invoke(
        app, ["evaluate", str(d["build_dir"]), "-p", str(path), "--out", str(on_build)]
    )
    assert scored.exit_code == 0, scored.output
    doc = json.loads((on_build / "eval.json").read_text())
    assert doc["category_ids"] == "coco"
    assert doc["counts"]["detections"] == read_meta(path)["detections"]
    assert set(doc["protocols"]) == {"coco", "lvis", "federated"}
    assert any("benchmark step 100pct/pretrained" in note for note in doc["notes"])


def test_rerun_with_other_options_is_refused(tiny_benchmark_data, tmp_path):
    from detforge.evaluators.pretrain.benchmark import BenchmarkPlan, _check_plan

    d = tiny_benchmark_data
    plan = BenchmarkPlan(d["build_dir"], d["downstream_train"], d["downstream_val"],
                         d["downstream_images"], fractions=(50,))  # fmt: skip
    _check_plan(plan, tmp_path)
    with pytest.raises(DetforgeError, match="other options \\(fractions\\)"):
        _check_plan(BenchmarkPlan(**{**plan.__dict__, "fractions": (10,)}), tmp_path)


#: each template's optimizer, learning rate, the total batch it is tuned for, its
#: warm-up and its step milestones as fractions of the run (mmdet 3.3's configs)
TEMPLATE_TRAINING = {
    "faster_rcnn_r50_fpn": ("SGD", 0.02, 16, 500, [8 / 12, 11 / 12]),
    "retinanet_r50_fpn": ("SGD", 0.01, 16, 500, [8 / 12, 11 / 12]),
    "deformable_detr_r50": ("AdamW", 2e-4, 32, None, [40 / 50]),
}


@pytest.mark.parametrize("detector", sorted(TEMPLATES))
def test_written_configs_keep_each_template_training(detector, tiny_benchmark_data, tmp_path):
    d = tiny_benchmark_data
    spec = DataSpec(d["downstream_train"], d["downstream_val"], d["downstream_images"], ("a", "b"))
    iters = 12_000
    config = write_config(spec, TrainSpec(detector, iters=iters, backbone_depth=18), tmp_path)
    cfg = Config.fromfile(str(config))
    heads = [cfg.model.get("bbox_head"), cfg.model.get("roi_head", {}).get("bbox_head")]
    assert [h["num_classes"] for h in heads if h] == [2]
    assert cfg.model.backbone.depth == 18 and cfg.model.backbone.init_cfg is None
    assert cfg.train_cfg.max_iters == iters
    assert cfg.test_evaluator.ann_file == str(d["downstream_val"])
    optimizer, lr, base, warmup, fractions = TEMPLATE_TRAINING[detector]
    assert cfg.optim_wrapper.optimizer.type == optimizer
    assert cfg.optim_wrapper.optimizer.lr == lr  # mmengine scales it at start
    assert cfg.auto_scale_lr == {"enable": True, "base_batch_size": base}
    assert cfg.train_dataloader.batch_size == 2
    steps = [s for s in cfg.param_scheduler if s.type == "MultiStepLR"]
    assert steps[0].milestones == [round(iters * f) for f in fractions]
    assert steps[0].end == iters and steps[0].by_epoch is False
    warmups = [s.end for s in cfg.param_scheduler if s.type == "LinearLR"]
    assert warmups == ([] if warmup is None else [warmup])
    hook = cfg.default_hooks.checkpoint
    assert hook.max_keep_ckpts == 3 and hook.interval == 500  # 3 checkpoints, not 24
    # the learning rate the run trains with: linear in the total batch
    effective = learning_rate(detector, batch_size=2, gpus=1)
    assert effective.lr == pytest.approx(lr * 2 / base) and effective.scaled
    assert learning_rate(detector, batch_size=4, gpus=8).lr == pytest.approx(lr * 32 / base)


@pytest.mark.parametrize("detector", sorted(TEMPLATES))
def test_an_explicit_lr_is_used_as_given(detector, tiny_benchmark_data, tmp_path):
    d = tiny_benchmark_data
    spec = DataSpec(d["downstream_train"], None, d["downstream_images"], ("a", "b"))
    config = write_config(spec, TrainSpec(detector, iters=20, lr=0.005), tmp_path)
    cfg = Config.fromfile(str(config))
    assert cfg.optim_wrapper.optimizer.lr == 0.005
    assert cfg.auto_scale_lr.enable is False
    warmups = [s.end for s in cfg.param_scheduler if s.type == "LinearLR"]
    assert warmups == ([] if detector == "deformable_detr_r50" else [2])  # a tenth of the run
    assert learning_rate(detector, 2, 1, lr=0.005).describe() == (
        f"{TEMPLATE_TRAINING[detector][0]} lr 0.005 (set with --lr)"
    )


@pytest.mark.parametrize("iters", [10, 15])
def test_a_short_run_warms_up_to_the_full_learning_rate(iters, tiny_benchmark_data, tmp_path):
    """mmengine's LinearLR ramps over end - 1 steps: a warm-up ending at 1 kept a thousandth
    of the learning rate for the whole run."""
    d = tiny_benchmark_data
    config = write_config(
        DataSpec(d["downstream_train"], d["downstream_val"], d["downstream_images"], ("a", "b")),
        TrainSpec("faster_rcnn_r50_fpn", iters, lr=0.02),
        tmp_path,
    )
    cfg = Config.fromfile(str(config))
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.02)
    schedulers = [
        getattr(mmengine_schedulers, s.pop("type"))(optimizer, **s) for s in cfg.param_scheduler
    ]
    rates = []
    for _ in range(iters):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        for scheduler in schedulers:
            scheduler.step()
    first_drop = round(iters * 8 / 12)  # the template's milestones: epochs 8 and 11 of 12
    assert rates[0] == pytest.approx(0.02 * 0.001)  # the template's start factor
    assert rates[1:first_drop] == pytest.approx([0.02] * (first_drop - 1))
    assert rates[first_drop] == pytest.approx(0.002)


def test_a_downstream_val_the_build_was_not_decontaminated_against(tiny_benchmark_data, tmp_path):
    """Refused with the flag that accepts it; accepted, the summary carries the warning;
    the same file elsewhere (same content) counts as decontaminated."""
    from detforge.evaluators.pretrain.benchmark import summarize
    from detforge.evaluators.pretrain.holdout import check_downstream_val

    d = tiny_benchmark_data
    other = tmp_path / "other_val.json"
    other.write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
    result = CliRunner().invoke(app, _args({**d, "downstream_val": other}, tmp_path / "run"))
    assert isinstance(result.exception, DetforgeError)
    message = str(result.exception)
    assert "not among the build's decontamination sets" in message
    assert "--allow-contaminated-val" in message and "--holdout" in message
    assert not (tmp_path / "run").exists()
    copy = tmp_path / "copy_of_val.json"
    copy.write_bytes(d["downstream_val"].read_bytes())
    assert check_downstream_val(d["build_dir"], copy, allow=False) is None
    warning = check_downstream_val(d["build_dir"], other, allow=True)
    assert warning and "gain may be inflated" in warning
    from detforge.evaluators.pretrain.benchmark import BenchmarkPlan, _check_plan

    plan = BenchmarkPlan(d["build_dir"], d["downstream_train"], other, d["downstream_images"],
                         fractions=(50,), allow_contaminated_val=True)  # fmt: skip
    _check_plan(plan, tmp_path / "accepted")
    summarize(tmp_path / "accepted")
    summary = json.loads((tmp_path / "accepted" / "summary.json").read_text())
    assert summary["warnings"] == [warning]
    assert "**Warning**" in (tmp_path / "accepted" / "summary.md").read_text()


def test_fraction_subsets_are_deterministic_and_sized(tiny_benchmark_data):
    coco = data.load_coco(tiny_benchmark_data["downstream_train"])
    half = data.fraction_subset(coco, 50, seed=3)
    assert half == data.fraction_subset(coco, 50, seed=3)
    assert len(half["images"]) == 4
    kept = {image["id"] for image in half["images"]}
    assert {a["image_id"] for a in half["annotations"]} <= kept
    assert len(data.fraction_subset(coco, 1, seed=3)["images"]) == 1
    with pytest.raises(DetforgeError):
        data.fraction_subset(coco, 0, seed=3)


def test_class_aware_weights_balance_classes():
    from tests.pretrain.conftest import tables_from_coco

    box = {"bbox": [1, 1, 4, 4]}
    coco = {
        "images": [
            {"id": i, "file_name": f"{i}.jpg", "width": 8, "height": 8} for i in (1, 2, 3, 4)
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, **box},
            {"id": 2, "image_id": 2, "category_id": 1, **box},
            {"id": 3, "image_id": 3, "category_id": 1, **box},
            {"id": 4, "image_id": 4, "category_id": 2, **box},
            {"id": 5, "image_id": 4, "category_id": 2, **box},
        ],
        "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
    }
    weights = data.class_aware_weights(tables_from_coco(coco))
    assert weights == pytest.approx({1: 1 / 3, 2: 1 / 3, 3: 1 / 3, 4: 1.0})
    # each class is drawn with equal total probability
    assert sum(weights[i] for i in (1, 2, 3)) == pytest.approx(weights[4])
    assert data.class_aware_weights(tables_from_coco(coco), split="val") == {}


@pytest.mark.parametrize(
    ("option", "value"), [("--image-scale", "1333x800"), ("--fractions", "1,two")]
)
def test_malformed_numbers_are_a_usage_error(tiny_benchmark_data, tmp_path, option, value):
    result = CliRunner().invoke(app, [*_args(tiny_benchmark_data, tmp_path / "r"), option, value])
    assert result.exit_code == 2
    assert "expected numbers like" in result.output
    assert not (tmp_path / "r").exists()
