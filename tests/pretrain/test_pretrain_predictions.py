"""What a benchmark step saves beside its AP: its detections (``predictions.json``) and what
they are (``predictions.meta.json``); the score threshold and the short-run warm-up."""

from __future__ import annotations

import json

import polars as pl
import pytest
from mmengine.config import Config

from detforge.errors import DetforgeError
from detforge.evaluators.pretrain.benchmark import BenchmarkPlan, plan_steps
from detforge.evaluators.pretrain.configs import (
    DataSpec,
    TrainSpec,
    check_score_threshold,
    write_config,
)
from detforge.evaluators.pretrain.predictions import MMDET_PREFIX, numbering, publish
from detforge.evaluators.provenance import meta_path, read_meta


def _spec(d, val=True):
    val_ann = d["downstream_val"] if val else None
    return DataSpec(d["downstream_train"], val_ann, d["downstream_images"], ("a", "b"))


def test_a_tested_step_dumps_its_detections_where_publish_finds_them(tiny_benchmark_data, tmp_path):
    about = {"model": "m", "category_ids": "coco"}
    train = TrainSpec("faster_rcnn_r50_fpn", iters=4)
    cfg = Config.fromfile(str(write_config(_spec(tiny_benchmark_data), train, tmp_path, about)))
    assert cfg.test_evaluator.outfile_prefix == str(tmp_path / MMDET_PREFIX)
    assert cfg.detforge_predictions == about
    untested = write_config(_spec(tiny_benchmark_data, val=False), train, tmp_path / "pre")
    assert Config.fromfile(str(untested)).test_evaluator is None


@pytest.mark.parametrize(
    ("detector", "where"),
    [("faster_rcnn_r50_fpn", ("test_cfg", "rcnn")), ("retinanet_r50_fpn", ("test_cfg",))],
)
def test_the_score_threshold_reaches_the_detector(detector, where, tiny_benchmark_data, tmp_path):
    spec, work = _spec(tiny_benchmark_data), tmp_path
    default = Config.fromfile(str(write_config(spec, TrainSpec(detector, iters=4), work)))
    low = Config.fromfile(
        str(write_config(spec, TrainSpec(detector, iters=4, score_threshold=1e-4), work))
    )
    for cfg, expected in ((default, 0.05), (low, 1e-4)):  # 0.05: the template's own
        head = cfg.model
        for key in where:
            head = head[key]
        assert head["score_thr"] == expected


def test_a_threshold_that_cannot_apply_is_refused_before_any_step():
    check_score_threshold("faster_rcnn_r50_fpn", None)
    with pytest.raises(DetforgeError, match="keeps its top 100 detections"):
        check_score_threshold("deformable_detr_r50", 0.01)
    with pytest.raises(DetforgeError, match=r"expected a number in \[0, 1\)"):
        check_score_threshold("retinanet_r50_fpn", 1.5)


def test_numbering_names_how_a_file_numbers_the_builds_classes():
    build = pl.DataFrame({"id": [0, 1], "name": ["cat", "dog"]})
    assert numbering([{"id": 2, "name": "dog"}, {"id": 1, "name": "cat"}], build) == "coco"
    assert numbering([{"id": 0, "name": "cat"}, {"id": 1, "name": "dog"}], build) == "unified"
    assert numbering([{"id": 1, "name": "dog"}, {"id": 2, "name": "cat"}], build) is None
    assert numbering([{"id": 1, "name": "cat"}], build) is None  # a subset: its own numbering


def test_publish_renames_the_dump_and_writes_what_it_is(tmp_path):
    assert publish(tmp_path, {}) is None  # a step without a test set dumps nothing
    detections = [{"image_id": 7, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5}] * 3
    (tmp_path / f"{MMDET_PREFIX}.bbox.json").write_text(json.dumps(detections))
    path = publish(tmp_path, {"category_ids": "coco", "model": "m"})
    assert path == tmp_path / "predictions.json"
    assert json.loads(path.read_text()) == detections
    assert not (tmp_path / f"{MMDET_PREFIX}.bbox.json").exists()
    meta = read_meta(path)
    assert (meta["detections"], meta["category_ids"], meta["model"]) == (3, "coco", "m")
    assert meta_path(path).name == "predictions.meta.json"


def test_each_stage2_step_says_what_its_predictions_will_be(tiny_benchmark_data, tmp_path):
    d = tiny_benchmark_data
    plan = BenchmarkPlan(d["build_dir"], d["downstream_train"], d["downstream_val"],
                         d["downstream_images"], fractions=(50,), pretrain_iters=20,
                         finetune_iters=10, backbone_depth=18, score_threshold=0.001)  # fmt: skip
    steps = {step.name: step for step in plan_steps(plan, tmp_path)}
    assert steps["pretrain"].predictions is None
    scratch, pretrained = steps["50pct/scratch"].predictions, steps["50pct/pretrained"].predictions
    # the val file numbers the build's classes as its COCO export does (red_box 1, blue_box 2)
    assert scratch["category_ids"] == pretrained["category_ids"] == "coco"
    assert scratch["ground_truth"] == str(d["downstream_val"])
    assert scratch["score_threshold"] == 0.001
    assert pretrained["model"] == (
        "faster_rcnn_r50_fpn with a ResNet-18 backbone (random init), pre-trained 20 "
        "iterations on build, then fine-tuned 10 on 50 % of train.json "
        "(benchmark step 50pct/pretrained)"
    )
    assert "trained 10 iterations from scratch" in scratch["model"]
