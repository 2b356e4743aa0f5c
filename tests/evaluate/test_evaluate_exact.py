"""Identity with pycocotools and LVISEval to 1e-9 on other projects' real files and on the
hard cases: score ties across images, IoUs on a threshold, boxes outside the image, more
detections per image than the limits, crowd regions, empty images. Both through a plain
ground-truth file (``evaluate_file``) and through the build's readers (``evaluate``)."""

from __future__ import annotations

import copy
import json

import numpy as np
import polars as pl
import pytest
from references import (
    DATA,
    assert_equals_lvis,
    assert_equals_pycocotools,
    jittered,
    load_data,
    lvis_eval,
    pycocotools,
    without_source_boxes,
    write_json,
)

from detforge.builders.stages import canonical
from detforge.dataset import DetDataset
from detforge.evaluators import evaluate, evaluate_file
from detforge.schema import stable_ids

PADILLA = "review_object_detection_metrics/"
THRESHOLDS = (0.5, 0.6, 0.75, 0.8, 0.95)


def build_from_file(path, reader: str) -> DetDataset:
    """A COCO / LVIS file as a build holds it: read by the build's reader, labels = the
    file's category ids, every table in the stage cache's canonical order."""
    from detforge.sources import coco, lvis

    if reader == "coco":
        dataset = coco.read(path, "val", check_files=False)
    else:
        dataset = lvis.read(path, "val", check_files=False)
    as_label = pl.col("source_label").cast(pl.Int32).alias("label")
    categories = dataset.source_categories.select(
        pl.col("source_label").cast(pl.Int32).alias("id"), "name", "frequency"
    )
    return canonical(
        dataset.replace(
            objects=dataset.objects.with_columns(as_label),
            image_labels=dataset.image_labels.with_columns(as_label),
            categories=categories,
        )
    )


def build_ids(preds: list[dict], source: str) -> list[dict]:
    """The predictions with the build's hashed image ids."""
    keys = pl.Series([str(p["image_id"]) for p in preds])
    ids = stable_ids(source, keys).to_list()
    return [dict(p, image_id=i) for p, i in zip(preds, ids, strict=True)]


@pytest.fixture(scope="module")
def padilla():
    gt = load_data(PADILLA + "sampled_gts_bbox_area.json.gz")
    dets = load_data(PADILLA + "sampled_bbox_results.json.gz")["annotations"]
    return gt, dets


def test_real_coco_2014_detections_give_the_published_ap(padilla, tmp_path):
    gt, dets = padilla
    gt_file, dets_file = write_json(tmp_path / "gt.json", gt), write_json(tmp_path / "d.json", dets)
    ref = pycocotools(gt, dets)
    result = evaluate_file(gt_file, dets_file)
    assert round(result.metrics("coco")["AP"], 6) == 0.503647  # that project's own test
    assert_equals_pycocotools(result, ref)
    built = build_from_file(gt_file, "coco")
    preds = write_json(tmp_path / "b.json", build_ids(dets, "coco"))
    assert_equals_pycocotools(
        evaluate(built, preds, protocols=["coco"], category_ids="unified"), ref
    )
    # the normalised float32 boxes alone move some IoUs off their thresholds
    drift = evaluate(
        built.replace(objects=without_source_boxes(built.objects)),
        preds,
        protocols=["coco"],
        category_ids="unified",
    )
    assert abs(drift.metrics("coco")["AP"] - ref.stats[0]) > 1e-4
    assert any("830 ground-truth box(es) have no source box" in n for n in drift.notes)


def hard_case(
    gt: dict, dets: list[dict], seed: int, wholly_outside: bool = True
) -> tuple[dict, list[dict]]:
    """The real files with every hard case planted: crowd regions, ground truth and
    detections outside the image, two empty images, scores rounded to 0.1 (ties across
    images), IoUs on each COCO threshold, 130 detections of one class on one image.

    ``wholly_outside``: some ground-truth boxes lie entirely outside their image (a
    build's reader quarantines those: a box with no pixel in its image cannot be kept)."""
    rng = np.random.default_rng(seed)
    gt, dets = copy.deepcopy(gt), [dict(d, score=round(d["score"], 1)) for d in dets]
    sizes = {i["id"]: (i["width"], i["height"]) for i in gt["images"]}
    anns = gt["annotations"]
    for a in rng.choice(anns, 25, replace=False):
        a["iscrowd"] = 1
    for k, a in enumerate(rng.choice(anns, 20, replace=False)):
        x, y, w, h = a["bbox"]
        width, height = sizes[a["image_id"]]
        a["bbox"] = [[-w / 3, y, w, h], [x, -h / 4, w, h], [width - w / 2, y, w, h]][k % 3]
        if wholly_outside and k % 5 == 4:
            a["bbox"] = [width + 3.5, y, w, h]
    empty = [
        {"id": 10**6 + k, "width": 640, "height": 480, "file_name": f"e{k}.jpg"} for k in (1, 2)
    ]
    gt["images"] += empty
    plain = [a for a in anns if not a.get("iscrowd")]
    for k, a in enumerate(plain[:60]):
        x, y, w, h = a["bbox"]
        t = THRESHOLDS[k % len(THRESHOLDS)]
        dets.append(dict(a, bbox=[x, y, w, h * t], score=0.5))  # IoU t, up to rounding
    crowded = plain[0]
    width, height = sizes[crowded["image_id"]]
    for _ in range(130):
        w, h = rng.uniform(5, width / 2), rng.uniform(5, height / 2)
        box = [rng.uniform(-10, width - w), rng.uniform(0, height - h), w, h]
        dets.append({**crowded, "bbox": box, "score": round(float(rng.uniform()), 1)})
    for image_id in list(sizes)[:10]:
        dets.append({"image_id": image_id, "category_id": 1, "bbox": [-0.4, 3.0, 50.0, 40.0],
                     "score": 0.7})  # fmt: skip
    dets.append(
        {"image_id": empty[0]["id"], "category_id": 1, "bbox": [1, 2, 30, 40], "score": 0.9}
    )
    strip = {"id", "area", "iscrowd", "segmentation"}
    return gt, [{k: v for k, v in d.items() if k not in strip} for d in dets]


def test_hard_cases_in_a_file_equal_pycocotools(padilla, tmp_path):
    gt, dets = hard_case(*padilla, seed=3)
    ref = pycocotools(gt, dets)
    gt_file, dets_file = write_json(tmp_path / "gt.json", gt), write_json(tmp_path / "d.json", dets)
    result = evaluate_file(gt_file, dets_file)
    assert_equals_pycocotools(result, ref)
    assert result.counts["detections_outside_image"] >= 10


def test_hard_cases_through_the_reader_equal_pycocotools(padilla, tmp_path):
    gt, dets = hard_case(*padilla, seed=4, wholly_outside=False)
    ref = pycocotools(gt, dets)
    gt_file = write_json(tmp_path / "gt.json", gt)
    built = build_from_file(gt_file, "coco")
    clipped = built.quarantine.filter(pl.col("reason").str.contains("clipped"))
    assert clipped.height >= 10  # the reader clipped bbox; evaluation scores the source's box
    preds = write_json(tmp_path / "b.json", build_ids(dets, "coco"))
    ours = evaluate(built, preds, protocols=["coco"], category_ids="unified")
    assert_equals_pycocotools(ours, ref)


def test_score_ties_make_the_image_order_matter(padilla):
    """Non-vacuity of the tie case: pycocotools itself scores the same detections
    differently when only the image ids' order changes."""
    gt, dets = hard_case(*padilla, seed=3)
    ids = sorted(i["id"] for i in gt["images"])
    renumber = dict(zip(ids, reversed(ids), strict=True))
    swapped = copy.deepcopy(gt)
    for record in swapped["images"]:
        record["id"] = renumber[record["id"]]
    for a in swapped["annotations"]:
        a["image_id"] = renumber[a["image_id"]]
    moved = [dict(d, image_id=renumber[d["image_id"]]) for d in dets]
    assert abs(pycocotools(swapped, moved).stats[0] - pycocotools(gt, dets).stats[0]) > 1e-4


@pytest.fixture(scope="module")
def lvis_case(tmp_path_factory):
    """lvis-api's real LVIS v0.5 val subset, with jittered predictions whose scores tie
    across images, 350 detections on two images and boxes outside the image."""
    gt = load_data("faster_coco_eval/lvis_v0.5_val_100_boxes.json.gz")
    preds = jittered(gt, seed=5, false_positives=12, decimals=1)
    rng = np.random.default_rng(5)
    cats = [c["id"] for c in gt["categories"]]
    for image in gt["images"][:2]:
        for _ in range(350):
            w, h = rng.uniform(4, image["width"] / 3), rng.uniform(4, image["height"] / 3)
            box = [rng.uniform(-5, image["width"] - w), rng.uniform(0, image["height"] - h), w, h]
            preds.append({"image_id": image["id"], "category_id": int(rng.choice(cats)),
                          "bbox": box, "score": round(float(rng.uniform(0, 0.6)), 1)})  # fmt: skip
    root = tmp_path_factory.mktemp("lvis")
    gt_file = write_json(root / "lvis_v0.5_val.json", gt)
    return gt, gt_file, preds, lvis_eval(gt_file, preds)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_lvis_file_equals_lvis_eval(lvis_case, tmp_path):
    gt, gt_file, preds, ref = lvis_case
    result = evaluate_file(gt_file, write_json(tmp_path / "p.json", preds))
    assert list(result.protocols) == ["lvis"]  # the protocol an LVIS file defaults to
    assert_equals_lvis(result, ref)
    # every bin holds classes with ground truth (the file's own frequency field)
    assert ref["APc"] > 0 and ref["APf"] > 0 and result.metrics("lvis")["APr"] is not None
    matches = result.matches()
    assert (matches["reason"] == "beyond max detections").sum() > 0
    assert (matches["reason"] == "class not exhaustively annotated").sum() > 0


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_lvis_through_the_reader_equals_lvis_eval(lvis_case, tmp_path):
    _, gt_file, preds, ref = lvis_case
    built = build_from_file(gt_file, "lvis")
    assert built.images["source"].unique().to_list() == ["lvis_v0.5"]  # v0.5's own ids
    path = write_json(tmp_path / "p.json", build_ids(preds, "lvis_v0.5"))
    result = evaluate(built, path, protocols=["lvis"], category_ids="unified")
    assert_equals_lvis(result, ref)
    assert result.frequency_from.startswith("lvis")


@pytest.mark.parametrize(
    "name",
    [
        "panopticapi_panoptic_coco_detection_format.json",
        "mmpose_test_coco_person_keypoints_val2017.json",
    ],
)
def test_real_coco_photos_annotations_equal_pycocotools(shared_data, tmp_path, name):
    path = shared_data / "images" / "annotations" / name
    gt = json.loads(path.read_text())
    preds = jittered(gt, seed=len(name), decimals=2)
    ref = pycocotools(gt, preds)
    result = evaluate_file(path, write_json(tmp_path / "p.json", preds))
    assert_equals_pycocotools(result, ref)
    assert result.metrics("coco")["AP"] > 0.05  # a real, non-degenerate score
    built = build_from_file(path, "coco")
    through_reader = write_json(tmp_path / "b.json", build_ids(preds, "coco"))
    assert_equals_pycocotools(
        evaluate(built, through_reader, protocols=["coco"], category_ids="unified"), ref
    )


def test_annotation_id_zero_counts_as_a_match_with_a_note(shared_data, tmp_path):
    """The references use id 0 as their 'unmatched' marker, so a detection matched to an
    annotation with id 0 is a false positive to them: detforge counts the match (what they
    give with ids from 1) and says why the numbers differ."""
    path = (
        shared_data / "images" / "annotations" / "panopticapi_panoptic_coco_detection_format.json"
    )
    gt = json.loads(path.read_text())
    assert min(a["id"] for a in gt["annotations"]) == 0
    preds = [
        {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            "bbox": a["bbox"],
            "score": 1 - i / 100,
        }
        for i, a in enumerate(gt["annotations"])
    ]
    result = evaluate_file(path, write_json(tmp_path / "p.json", preds))
    from_one = copy.deepcopy(gt)
    for annotation in from_one["annotations"]:
        annotation["id"] += 1
    assert_equals_pycocotools(result, pycocotools(from_one, preds))
    assert pycocotools(gt, preds).stats[0] < result.metrics("coco")["AP"] - 1e-3
    assert any("id 0" in note and "unmatched" in note for note in result.notes)


def test_mmdetection_sample_with_ignore_zero_area_and_unlisted_category(tmp_path):
    path = DATA / "mmdetection" / "unsorted_obj365_sample.json"
    gt = load_data("mmdetection/unsorted_obj365_sample.json")
    preds = [
        {"image_id": 0, "category_id": 1, "bbox": [0, 0, 20, 20], "score": 0.9},
        {"image_id": 0, "category_id": 2, "bbox": [1, 1, 18, 18], "score": 0.8},
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 20, 20], "score": 0.8},
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 19, 20], "score": 0.8},
        {"image_id": 2, "category_id": 2, "bbox": [5, 5, 10, 10], "score": 0.3},
        {"image_id": 3, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.6},
        {"image_id": 3, "category_id": 1, "bbox": [0, 0, 1, 0.1], "score": 0.6},
    ]
    result = evaluate_file(path, write_json(tmp_path / "p.json", preds))
    assert_equals_pycocotools(result, pycocotools(gt, preds))
    assert any("category the file does not list" in note for note in result.notes)


@pytest.mark.parametrize(
    ("edit", "record", "field", "reason"),
    [
        (lambda d: d["images"][1].pop("id"), "images[1]", "id", "missing or null value"),
        (
            lambda d: d["annotations"][2].update(id=d["annotations"][0]["id"]),
            None,
            "id",
            "duplicate",
        ),
        (
            lambda d: d["annotations"][3].update(bbox=[1, 2, 3]),
            None,
            "bbox",
            "expected [x, y, w, h]",
        ),
    ],
)
def test_a_broken_ground_truth_file_is_one_line(tmp_path, edit, record, field, reason):
    from detforge.errors import InputError

    gt = load_data("mmdetection/unsorted_obj365_sample.json")
    edit(gt)
    path = write_json(tmp_path / "gt.json", gt)
    with pytest.raises(InputError) as raised:
        evaluate_file(path, write_json(tmp_path / "p.json", []))
    error = raised.value
    assert error.field == field and reason in error.reason and "\n" not in str(error)
    if record is not None:
        assert error.record == record
