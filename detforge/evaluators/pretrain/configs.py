"""mmdet 3 configs written from the templates mmdet ships (``mmdet/.mim/configs``).

A template is loaded with mmengine, the dataset, classes, schedule and model size
are set, and the result is dumped as one self-contained config file per run. A run with a
test set also saves its detections on it (COCO results JSON, see
:mod:`detforge.evaluators.pretrain.predictions`).

Training defaults are the template's: its optimizer and learning rate, scaled linearly
with the total batch (images per GPU x GPUs) against the batch the template was tuned
for, by mmengine's own ``auto_scale_lr`` (``enable=True``, the template's
``base_batch_size``); ``lr`` set explicitly replaces that. The schedule keeps the
template's shape on an iteration budget: its warm-up (capped at a tenth of a short run,
two iterations at least) and its step milestones at the same fractions of the run.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from detforge.errors import DetforgeError

TEMPLATES = {
    "faster_rcnn_r50_fpn": "faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py",
    "retinanet_r50_fpn": "retinanet/retinanet_r50_fpn_1x_coco.py",
    "deformable_detr_r50": "deformable_detr/deformable-detr_r50_16xb2-50e_coco.py",
}
#: checkpoints a run keeps (the newest; resuming needs only the last one)
MAX_KEEP_CHECKPOINTS = 3
#: ResNet output channels per stage, for the FPN / DETR neck in_channels
RESNET_CHANNELS = {18: [64, 128, 256, 512], 34: [64, 128, 256, 512], 50: [256, 512, 1024, 2048]}


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """One COCO-format set: annotation files, image folder and class names (in id order)."""

    train_ann: Path
    val_ann: Path | None
    images: Path
    classes: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class TrainSpec:
    detector: str
    iters: int
    batch_size: int = 2  # images per GPU (or per CPU process)
    lr: float | None = None  # None: the template's, scaled by auto_scale_lr
    backbone_depth: int = 50
    backbone_weights: str | None = None  # a local torchvision-style ResNet checkpoint
    image_scale: tuple[int, int] = (1333, 800)
    load_from: Path | None = None  # stage-1 checkpoint for fine-tuning
    sample_weights: Path | None = None  # per-image weights (class-aware sampling)
    checkpoint_interval: int = 500
    seed: int = 0
    launcher: str = "none"
    score_threshold: float | None = None  # None: the template's (0.05; DETR keeps its top 100)


def template_path(detector: str) -> Path:
    import mmdet

    if detector not in TEMPLATES:
        raise DetforgeError(f"unknown detector {detector!r}; choose one of {sorted(TEMPLATES)}")
    return Path(mmdet.__file__).parent / ".mim" / "configs" / TEMPLATES[detector]


@dataclasses.dataclass(frozen=True)
class LearningRate:
    """The learning rate a run trains with, and where it comes from."""

    optimizer: str  # the template's optimizer type (SGD, AdamW)
    template_lr: float
    base_batch: int  # the total batch the template's lr is for
    total_batch: int  # images per step over all GPUs
    lr: float  # what the optimizer gets
    scaled: bool  # True: template lr x total / base (auto_scale_lr); False: set explicitly

    def describe(self) -> str:
        if not self.scaled:
            return f"{self.optimizer} lr {self.lr:g} (set with --lr)"
        return (
            f"{self.optimizer} lr {self.lr:g} = the template's {self.template_lr:g} at batch "
            f"{self.base_batch} x {self.total_batch}/{self.base_batch} (auto_scale_lr)"
        )


def _template_lr(cfg) -> tuple[str, float, int]:
    optimizer = cfg.optim_wrapper.optimizer
    scale = cfg.get("auto_scale_lr") or {}
    if "base_batch_size" not in scale:
        raise DetforgeError("the detector's template has no auto_scale_lr.base_batch_size")
    return optimizer["type"], float(optimizer["lr"]), int(scale["base_batch_size"])


def learning_rate(
    detector: str, batch_size: int, gpus: int = 1, lr: float | None = None
) -> LearningRate:
    """The learning rate of ``detector`` at ``batch_size`` images on each of ``gpus``."""
    from mmengine.config import Config

    optimizer, template_lr, base = _template_lr(Config.fromfile(str(template_path(detector))))
    total = batch_size * gpus
    if lr is not None:
        return LearningRate(optimizer, template_lr, base, total, lr, scaled=False)
    return LearningRate(optimizer, template_lr, base, total, template_lr * total / base, True)


def _schedule(template: list[dict], iters: int) -> list[dict]:
    """The template's schedulers on an iteration budget (see the module docstring)."""
    schedule = []
    for scheduler in template:
        kind = scheduler["type"]
        if kind == "LinearLR" and not scheduler.get("by_epoch", True):
            # mmengine's LinearLR ramps over end - 1 steps: end 1 would hold the start factor
            # (a thousandth of the lr) for the whole run
            end = max(2, min(int(scheduler["end"]), iters // 10))
            schedule.append(dict(scheduler, begin=0, end=end))
        elif kind == "MultiStepLR":
            span = scheduler["end"]  # epochs (or iterations) the milestones are out of
            milestones = [round(iters * m / span) for m in scheduler["milestones"]]
            schedule.append(
                dict(scheduler, by_epoch=False, begin=0, end=iters, milestones=milestones)
            )
        else:
            raise DetforgeError(f"the detector's template uses a {kind} schedule, not supported")
    return schedule


def _set_num_classes(model: dict, count: int) -> None:
    if "roi_head" in model:
        model["roi_head"]["bbox_head"]["num_classes"] = count
    else:
        model["bbox_head"]["num_classes"] = count


def _set_backbone(model: dict, depth: int, weights: str | None) -> None:
    if depth not in RESNET_CHANNELS:
        raise DetforgeError(
            f"backbone depth {depth} not supported; use one of {sorted(RESNET_CHANNELS)}"
        )
    backbone = model["backbone"]
    backbone["depth"] = depth
    backbone["init_cfg"] = dict(type="Pretrained", checkpoint=weights) if weights else None
    channels = RESNET_CHANNELS[depth]
    neck = model.get("neck")
    if isinstance(neck, dict) and "in_channels" in neck:
        out_indices = backbone.get("out_indices", (0, 1, 2, 3))
        neck["in_channels"] = [channels[i] for i in out_indices]


def _set_score_threshold(model: dict, detector: str, threshold: float | None) -> None:
    """The lowest score a test detection keeps (the template's when ``threshold`` is None)."""
    if threshold is None:
        return
    if not 0 <= threshold < 1:
        raise DetforgeError(f"score threshold {threshold}: expected a number in [0, 1)")
    head = model["test_cfg"].get("rcnn", model["test_cfg"])
    if "score_thr" not in head:
        raise DetforgeError(
            f"{detector} keeps its top {head.get('max_per_img', 100)} detections per image "
            "whatever their score: a score threshold does not apply"
        )
    head["score_thr"] = threshold


def check_score_threshold(detector: str, threshold: float | None) -> None:
    """Raise now, before any step runs, when ``threshold`` cannot apply to ``detector``."""
    from mmengine.config import Config

    model = Config.fromfile(str(template_path(detector))).model
    _set_score_threshold(model, detector, threshold)


def _pipelines(scale: tuple[int, int]) -> tuple[list, list]:
    train = [
        dict(type="LoadImageFromFile"),
        dict(type="LoadAnnotations", with_bbox=True),
        dict(type="Resize", scale=scale, keep_ratio=True),
        dict(type="RandomFlip", prob=0.5),
        dict(type="PackDetInputs"),
    ]
    test = [
        dict(type="LoadImageFromFile"),
        dict(type="Resize", scale=scale, keep_ratio=True),
        dict(type="LoadAnnotations", with_bbox=True),
        dict(
            type="PackDetInputs",
            meta_keys=("img_id", "img_path", "ori_shape", "img_shape", "scale_factor"),
        ),
    ]
    return train, test


def build_config(data: DataSpec, train: TrainSpec, work_dir: Path, predictions: dict | None = None):
    """The mmengine ``Config`` of one training run (iteration-based, CPU or GPU).

    ``predictions``: what the run's predictions file says about itself (see
    :func:`detforge.evaluators.pretrain.predictions.publish`), kept in the config.
    """
    from mmengine.config import Config

    from detforge.evaluators.pretrain.predictions import MMDET_PREFIX

    cfg = Config.fromfile(str(template_path(train.detector)))
    model = cfg.model
    _set_num_classes(model, len(data.classes))
    _set_backbone(model, train.backbone_depth, train.backbone_weights)
    _set_score_threshold(model, train.detector, train.score_threshold)
    train_pipeline, test_pipeline = _pipelines(train.image_scale)
    metainfo = dict(classes=data.classes)
    sampler = (
        dict(type="WeightedImageSampler", weights_file=str(train.sample_weights), seed=train.seed)
        if train.sample_weights
        else dict(type="DefaultSampler", shuffle=True)
    )
    cfg.train_dataloader = dict(
        batch_size=train.batch_size,
        num_workers=0,
        persistent_workers=False,
        sampler=sampler,
        batch_sampler=dict(type="AspectRatioBatchSampler"),
        dataset=dict(
            type="CocoDataset",
            data_root="",
            ann_file=str(data.train_ann),
            data_prefix=dict(img=f"{data.images}/"),
            metainfo=metainfo,
            filter_cfg=dict(filter_empty_gt=True, min_size=0),
            pipeline=train_pipeline,
        ),
    )
    if data.val_ann is not None:
        cfg.test_dataloader = dict(
            batch_size=1,
            num_workers=0,
            persistent_workers=False,
            drop_last=False,
            sampler=dict(type="DefaultSampler", shuffle=False),
            dataset=dict(
                type="CocoDataset",
                data_root="",
                ann_file=str(data.val_ann),
                data_prefix=dict(img=f"{data.images}/"),
                metainfo=metainfo,
                test_mode=True,
                pipeline=test_pipeline,
            ),
        )
        cfg.test_evaluator = dict(
            type="CocoMetric",
            ann_file=str(data.val_ann),
            metric="bbox",
            # the detections on the test set, renamed to predictions.json when whole
            outfile_prefix=str(work_dir / MMDET_PREFIX),
        )
        cfg.test_cfg = dict(type="TestLoop")
        cfg.detforge_predictions = predictions or {}
    else:
        for key in ("test_dataloader", "test_evaluator", "test_cfg"):
            cfg[key] = None
    for key in ("val_dataloader", "val_evaluator", "val_cfg"):
        cfg[key] = None
    cfg.train_cfg = dict(
        type="IterBasedTrainLoop", max_iters=train.iters, val_interval=train.iters + 1
    )
    cfg.param_scheduler = _schedule(list(cfg.param_scheduler), train.iters)
    _, _, base = _template_lr(cfg)
    if train.lr is None:  # mmengine scales the template's lr by world size x batch / base
        cfg.auto_scale_lr = dict(enable=True, base_batch_size=base)
    else:
        cfg.optim_wrapper.optimizer.lr = train.lr
        cfg.auto_scale_lr = dict(enable=False, base_batch_size=base)
    cfg.default_hooks.checkpoint = dict(
        type="CheckpointHook",
        interval=min(train.checkpoint_interval, train.iters),
        by_epoch=False,
        max_keep_ckpts=MAX_KEEP_CHECKPOINTS,
        save_last=True,
    )
    cfg.default_hooks.logger = dict(type="LoggerHook", interval=max(1, min(50, train.iters)))
    cfg.log_processor = dict(type="LogProcessor", window_size=50, by_epoch=False)
    cfg.custom_imports = dict(
        imports=["detforge.evaluators.pretrain.sampler"], allow_failed_imports=False
    )
    cfg.randomness = dict(seed=train.seed, deterministic=False)
    cfg.load_from = str(train.load_from) if train.load_from else None
    cfg.resume = False
    cfg.launcher = train.launcher
    cfg.work_dir = str(work_dir)
    cfg.env_cfg.dist_cfg = dict(backend="nccl" if train.launcher != "none" else "gloo")
    return cfg


def write_config(
    data: DataSpec, train: TrainSpec, work_dir: Path, predictions: dict | None = None
) -> Path:
    """Dump the run's config to ``work_dir/config.py`` (mmengine parses it back)."""
    from detforge.atomic import write_text

    target = work_dir / "config.py"
    write_text(target, build_config(data, train, work_dir, predictions).pretty_text)
    return target
