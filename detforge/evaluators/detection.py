"""Detection AP on a dataset split through faster-coco-eval: COCO, LVIS and federated.

Ground truth and predictions are handed to faster-coco-eval as in-memory COCO
objects (dense 1-based image/annotation ids, so no 63-bit id meets a float). The
ground truth is the source's own pixel boxes in float64 and the images go in the
source's id order (:func:`prepare`), so every number equals pycocotools' / LVISEval's
on the source's file, score ties and IoUs on a threshold included.
Protocols:

* ``coco``: pycocotools' COCOeval (every detection counts; up to 100 per image and class).
* ``federated``: faster-coco-eval's LVIS mode with per-image ``neg_category_ids`` =
  the classes annotated on the image (``label_spaces`` + verified image labels, see
  :mod:`detforge.evaluators.federated`) and ``not_exhaustive_category_ids`` from
  ``image_labels``; COCO's detection limits, so it equals ``coco`` where every class
  is exhaustive.
* ``lvis``: the same rule with LVIS's limits: the 300 best detections of each image,
  AR@300; equal to the ``lvis`` package's LVISEval on LVIS data.

The federated protocols also report APr/APc/APf from :func:`federated.frequency_bins`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import polars as pl
from faster_coco_eval import COCO, COCOeval_faster

from detforge.dataset import DetDataset
from detforge.evaluators import federated
from detforge.evaluators.matches import matches
from detforge.memory import gc_paused
from detforge.sources.coco_boxes import to_coco_xywh


@dataclasses.dataclass(frozen=True)
class Protocol:
    name: str
    federated: bool  # apply the federated (LVIS) rule
    max_dets: tuple[int, ...]  # per image and class, as COCOeval's maxDets
    per_image: int | None  # keep only the best N detections of each image (LVIS)
    description: str


PROTOCOLS: dict[str, Protocol] = {
    "coco": Protocol(
        "coco",
        False,
        (1, 10, 100),
        None,
        "pycocotools' COCOeval rules: every detection counts; at most 100 per image and class",
    ),
    "lvis": Protocol(
        "lvis",
        True,
        (300,),
        300,
        "the federated rule with LVIS's limits: the 300 best detections of each image, AR@300; "
        "APr/APc/APf",
    ),
    "federated": Protocol(
        "federated",
        True,
        (1, 10, 100),
        None,
        "a detection of a class not annotated on its image (label_spaces, verified image "
        "labels, boxes) is ignored, as is an unmatched one of a not-exhaustive class; "
        "COCO's limits; APr/APc/APf",
    ),
}
AREAS = ("small", "medium", "large")


@dataclasses.dataclass(frozen=True)
class EvalData:
    """One split's ground truth and predictions, in absolute pixel COCO xywh."""

    images: pl.DataFrame  # image_id, eval_id, source, width, height
    gt: pl.DataFrame  # gt_id, object_id, image_id, eval_id, label, x, y, w, h, area, iscrowd
    dets: pl.DataFrame  # dt_id, pred_index, image_id, eval_id, label, score, x, y, w, h,
    #                     annotated, not_exhaustive
    categories: pl.DataFrame  # label, name, frequency
    converted_boxes: int = 0  # ground-truth boxes without a source box (from bbox x size)


def image_order(images: pl.DataFrame) -> pl.DataFrame:
    """``images`` in evaluation order: by source, then the source's own image id (numeric
    where it is a number), as pycocotools and LVISEval sort a file's ids. Score ties
    between images are broken in this order, so it decides AP on tied scores."""
    own = pl.col("source_image_id")
    return images.sort(
        pl.col("source"), own.cast(pl.Int64, strict=False), own, "image_id", nulls_last=True
    )


def ground_truth_boxes(objects: pl.DataFrame, size: pl.DataFrame) -> pl.DataFrame:
    """Pixel ``x, y, w, h`` (float64) of ``objects`` on the images of ``size``: the source's
    own box (unclipped, as written) wherever it still describes the box on this image
    (``from_source``); a box carried from a duplicate copy is converted with the image's
    size (:func:`~detforge.sources.coco_boxes.to_coco_xywh`)."""
    boxes = to_coco_xywh(
        objects.join(size, on="image_id", how="inner", maintain_order="left"), size
    )
    return boxes.with_columns(
        pl.col("coco_bbox").arr.get(i).alias(name) for i, name in enumerate("xywh")
    ).drop("coco_bbox")


def prepare(
    dataset: DetDataset,
    split: str,
    predictions: pl.DataFrame,
    frequency: pl.DataFrame | None = None,
) -> EvalData:
    """Ground truth of ``split`` (boxes with a unified label) beside validated predictions.

    Images go in :func:`image_order`; boxes keep the table's order within an image (a
    ground-truth file's order), which decides which of two equally good boxes a detection
    matches. ``frequency``: ``label, frequency`` r/c/f bins (default: LVIS's own).
    """
    images = (
        image_order(dataset.images.filter(pl.col("split") == split))
        .select("image_id", "source", "width", "height")
        .with_row_index("eval_id", offset=1)
        .with_columns(pl.col("eval_id").cast(pl.Int64))
    )
    size = images.select("image_id", "eval_id", "width", "height")
    labelled = dataset.objects.filter(pl.col("label").is_not_null())
    boxes = ground_truth_boxes(labelled, size)
    converted = boxes.height - int(boxes["from_source"].sum())
    gt = (
        boxes.sort("eval_id", maintain_order=True)
        .with_row_index("gt_id", offset=1)
        .select(
            pl.col("gt_id").cast(pl.Int64),
            "object_id",
            "image_id",
            "eval_id",
            "label",
            *"xywh",
            # the source's area where given (COCO: the mask's), else the box's
            pl.coalesce(pl.col("area").cast(pl.Float64), pl.col("w") * pl.col("h")).alias("area"),
            # OpenImages group-of boxes are COCO crowd regions: matches to them are ignored
            (pl.col("is_crowd").fill_null(False) | pl.col("is_group_of").fill_null(False))
            .cast(pl.Int8)
            .alias("iscrowd"),
        )
    )
    dets = (
        predictions.join(images.select("image_id", "eval_id", "source"), on="image_id", how="inner")
        .sort("pred_index")
        .with_columns(pl.col("pred_index").add(1).alias("dt_id"))
    )
    has_box = gt.select("image_id", "label").unique().with_columns(pl.lit(True).alias("_box"))
    dets = dets.join(has_box, on=["image_id", "label"], how="left", maintain_order="left")
    nel = (
        dataset.federated_labels(images["image_id"], has_box)
        .filter(pl.col("status") == "not_exhaustive")
        .select("image_id", "label", pl.lit(True).alias("not_exhaustive"))
    )
    dets = (
        dets.with_columns(
            (pl.col("_box").fill_null(False) | federated.annotated(dets, dataset)).alias(
                "annotated"
            )
        )
        .join(nel, on=["image_id", "label"], how="left", maintain_order="left")
        .with_columns(pl.col("not_exhaustive").fill_null(False))
        .drop("_box", "source")
    )
    if frequency is None:
        frequency = federated.frequency_bins(dataset)
    categories = dataset.categories.select(pl.col("id").alias("label"), "name").join(
        frequency.select("label", "frequency"), on="label", how="left"
    )
    return EvalData(images, gt, dets, categories, converted)


class _COCOeval(COCOeval_faster):
    """faster-coco-eval's evaluator, leaving classes of unknown frequency out of r/c/f
    (the library expects every class to have one)."""

    def _prepare_freq_group(self) -> list:
        groups: list[list[int]] = [[] for _ in self.params.imgCountLbl]
        for index, category in enumerate(self.cocoGt.load_cats(self.params.catIds)):
            if category.get("frequency") in self.params.imgCountLbl:
                groups[self.params.imgCountLbl.index(category["frequency"])].append(index)
        return groups


def _silent(*_args, **_kwargs) -> None:
    """faster-coco-eval prints its summary lines through this."""


def protocol_dets(data: EvalData, protocol: Protocol) -> pl.DataFrame:
    """The detections a protocol hands to the evaluator (LVIS: best N per image)."""
    if protocol.per_image is None:
        return data.dets
    return (
        data.dets.sort(["eval_id", "score", "dt_id"], descending=[False, True, False])
        .filter(pl.int_range(pl.len()).over("eval_id") < protocol.per_image)
        .sort("dt_id")
    )


def coco_objects(data: EvalData, protocol: Protocol, dets: pl.DataFrame) -> tuple[COCO, COCO]:
    """Fresh ground-truth and detection COCO objects (faster-coco-eval marks the dicts)."""
    images = data.images.select(pl.col("eval_id").alias("id"), "width", "height")
    if protocol.federated:
        # only the classes predicted on an image matter to the rule: short lists
        neg = (
            dets.filter(pl.col("annotated"))
            .group_by("eval_id")
            .agg(pl.col("label").unique().sort().alias("neg_category_ids"))
        )
        nel = (
            dets.filter(pl.col("not_exhaustive"))
            .group_by("eval_id")
            .agg(pl.col("label").unique().sort().alias("not_exhaustive_category_ids"))
        )
        images = (
            images.join(neg.rename({"eval_id": "id"}), on="id", how="left")
            .join(nel.rename({"eval_id": "id"}), on="id", how="left")
            .with_columns(
                pl.col("neg_category_ids", "not_exhaustive_category_ids").fill_null(
                    pl.lit([], pl.List(pl.Int32))
                )
            )
        )
    image_dicts = images.to_dicts()
    categories = data.categories.select(pl.col("label").alias("id"), "name", "frequency").to_dicts()
    g = data.gt
    gt_anns = [
        {"id": i, "image_id": im, "category_id": c, "bbox": [x, y, w, h], "area": a, "iscrowd": k}
        for i, im, c, x, y, w, h, a, k in zip(
            *(
                g[col].to_list()
                for col in ("gt_id", "eval_id", "label", *"xywh", "area", "iscrowd")
            ),
            strict=True,
        )
    ]
    dt_anns = [
        {
            "id": i,
            "image_id": im,
            "category_id": c,
            "bbox": [x, y, w, h],
            "score": s,
            "area": w * h,
        }
        for i, im, c, s, x, y, w, h in zip(
            *(dets[col].to_list() for col in ("dt_id", "eval_id", "label", "score", *"xywh")),
            strict=True,
        )
    ]
    pair = []
    for anns in (gt_anns, dt_anns):
        coco = COCO()
        coco.dataset = {"images": image_dicts, "annotations": anns, "categories": categories}
        coco.createIndex()
        pair.append(coco)
    return pair[0], pair[1]


def run(
    gt: COCO,
    dt: COCO,
    protocol: Protocol,
    eval_ids: list[int],
    labels: list[int],
    *,
    matching: bool = False,
) -> _COCOeval:
    """Evaluate and accumulate on some images and classes. ``matching``: one pass at
    IoU 0.5 over all areas, whose ``eval["matched"]`` pairs are exactly its matches."""
    ev = _COCOeval(gt, dt, iouType="bbox", lvis_style=protocol.federated, print_function=_silent)
    p = ev.params
    p.imgIds, p.catIds, p.maxDets = list(eval_ids), list(labels), list(protocol.max_dets)
    if matching:
        p.iouThrs = np.array([0.5])
        p.areaRng, p.areaRngLbl = p.areaRng[:1], p.areaRngLbl[:1]
        p.maxDets = p.maxDets[-1:]
    ev.evaluate()
    ev.accumulate()
    return ev


def summary(ev: _COCOeval, protocol: Protocol) -> dict[str, float | None]:
    """AP/AR numbers of an accumulated evaluation (None where no class has ground truth)."""
    last = protocol.max_dets[-1]
    s = ev._summarize  # pycocotools' own averaging over valid (> -1) entries
    values = {
        "AP": s(1, maxDets=last),
        "AP50": s(1, iouThr=0.5, maxDets=last),
        "AP75": s(1, iouThr=0.75, maxDets=last),
        **{f"AP{a[0]}": s(1, areaRng=a, maxDets=last) for a in AREAS},
    }
    if protocol.federated:
        for index, label in enumerate(ev.params.imgCountLbl):
            values[f"AP{label}"] = s(1, maxDets=last, freq_group_idx=index)
    values.update({f"AR{m}": s(0, maxDets=m) for m in protocol.max_dets})
    values.update({f"AR{a[0]}": s(0, areaRng=a, maxDets=last) for a in AREAS})
    return {k: (None if v < 0 else float(v)) for k, v in values.items()}


def empty_summary(protocol: Protocol) -> dict[str, None]:
    """The keys of :func:`summary` with no value (no ground truth to score against)."""
    keys = ["AP", "AP50", "AP75", *(f"AP{a[0]}" for a in AREAS)]
    keys += ["APr", "APc", "APf"] if protocol.federated else []
    keys += [f"AR{m}" for m in protocol.max_dets] + [f"AR{a[0]}" for a in AREAS]
    return dict.fromkeys(keys)


def per_class(ev: _COCOeval) -> pl.DataFrame:
    """``label, AP, AP50, AP75, AR`` per evaluated class (area all, largest maxDets)."""
    precision = ev.eval["precision"][:, :, :, 0, -1]  # T x R x K
    recall = ev.eval["recall"][:, :, 0, -1]  # T x K
    thresholds = ev.params.iouThrs

    def mean(values: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        valid = values > -1
        count = valid.sum(axis=axes)
        total = np.where(valid, values, 0.0).sum(axis=axes)
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)

    at = {t: int(np.argmin(np.abs(thresholds - t))) for t in (0.5, 0.75)}
    return pl.DataFrame(
        {
            "label": np.asarray(ev.params.catIds, dtype=np.int32),
            "AP": mean(precision, (0, 1)),
            "AP50": mean(precision[at[0.5]], (0,)),
            "AP75": mean(precision[at[0.75]], (0,)),
            "AR": mean(recall, (0,)),
        }
    ).with_columns(pl.col("AP", "AP50", "AP75", "AR").fill_nan(None))


def evaluate_protocol(
    data: EvalData,
    protocol: Protocol,
    *,
    with_matches: bool = True,
    step: Callable[[str], None] = _silent,
) -> dict:
    """One protocol: overall and per-source summaries, per-class rows, matches."""
    dets = protocol_dets(data, protocol)
    with gc_paused():
        gt_coco, dt_coco = coco_objects(data, protocol, dets)
    labels = sorted(data.gt["label"].unique().to_list())
    result: dict = {"description": protocol.description}
    step(f"{protocol.name}: all images")
    if labels:
        ev = run(gt_coco, dt_coco, protocol, data.images["eval_id"].to_list(), labels)
        result["overall"] = summary(ev, protocol)
        result["per_class"] = per_class(ev)
    else:
        result["overall"] = empty_summary(protocol)
        result["per_class"] = pl.DataFrame(schema={"label": pl.Int32, "AP": pl.Float64})
    sources = sorted(data.images["source"].unique().to_list())
    result["per_source"] = {}
    for source in sources:
        if len(sources) == 1:  # the same images: the same numbers
            result["per_source"][source] = result["overall"]
            continue
        step(f"{protocol.name}: {source}")
        images = data.images.filter(pl.col("source") == source)["eval_id"]
        own = sorted(
            data.gt.filter(pl.col("eval_id").is_in(images.implode()))["label"].unique().to_list()
        )
        result["per_source"][source] = (
            summary(run(gt_coco, dt_coco, protocol, images.to_list(), own), protocol)
            if own
            else empty_summary(protocol)
        )
    if with_matches and labels:
        step(f"{protocol.name}: matches at IoU 0.5")
        ev = run(
            gt_coco, dt_coco, protocol, data.images["eval_id"].to_list(), labels, matching=True
        )
        result["matches"] = matches(ev, data, protocol, dets, labels)
    return result
