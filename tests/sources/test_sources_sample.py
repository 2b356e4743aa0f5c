"""The built-in sample: layout, determinism, size, and every planted case."""

from __future__ import annotations

import json
import time
from pathlib import Path

import imagehash
import polars as pl
import pytest
from PIL import Image

from detforge import schema
from detforge.errors import DetforgeError
from detforge.sources import coco, lvis, objects365, openimages
from detforge.sources.sample import sample_files, write_sample

LAYOUT = [
    "objects365/zhiyuan_objv2_train.json",
    "objects365/zhiyuan_objv2_val.json",
    "openimages/oidv6-train-annotations-bbox.csv",
    "openimages/validation-annotations-bbox.csv",
    "openimages/oidv6-train-annotations-human-imagelabels-boxable.csv",
    "openimages/validation-annotations-human-imagelabels-boxable.csv",
    "openimages/class-descriptions-boxable.csv",
    "openimages/bbox_labels_600_hierarchy.json",
    "lvis/lvis_v1_train.json",
    "lvis/lvis_v1_val.json",
    "coco/annotations/instances_val2017.json",
    "planted.json",
]


@pytest.fixture(scope="module")
def datasets(sample_root: Path) -> dict:
    """Every source split of the sample, read through the readers."""
    return {
        ("objects365", "train"): objects365.read(sample_root / "objects365", "train"),
        ("objects365", "val"): objects365.read(sample_root / "objects365", "val"),
        ("openimages", "train"): openimages.read(sample_root / "openimages", "train"),
        ("openimages", "val"): openimages.read(sample_root / "openimages", "val"),
        ("lvis", "train"): lvis.read(sample_root / "lvis", "train"),
        ("lvis", "val"): lvis.read(sample_root / "lvis", "val"),
        ("coco", "val"): coco.read(sample_root / "coco", "val"),
    }


@pytest.fixture(scope="module")
def planted(sample_root: Path) -> dict[str, dict]:
    cases = json.loads((sample_root / "planted.json").read_text())["cases"]
    return {case["case"]: case for case in cases}


def _image(datasets, ref: dict) -> dict:
    images = datasets[(ref["source"], ref["split"])].images
    return images.filter(pl.col("source_image_id") == ref["source_image_id"]).row(0, named=True)


def _path(sample_root: Path, datasets, ref: dict) -> Path:
    dataset = datasets[(ref["source"], ref["split"])]
    return Path(dataset.roots[ref["source"]]) / _image(datasets, ref)["file_name"]


def _boxes(datasets, ref: dict) -> pl.DataFrame:
    dataset = datasets[(ref["source"], ref["split"])]
    image_id = _image(datasets, ref)["image_id"]
    return schema.bbox_columns(dataset.objects.filter(pl.col("image_id") == image_id))


def _phash(path: Path) -> imagehash.ImageHash:
    return imagehash.phash(Image.open(path))


def test_layout_sizes_and_speed(tmp_path):
    start = time.perf_counter()
    root = write_sample(tmp_path / "s", seed=0)
    assert time.perf_counter() - start < 3
    for name in LAYOUT:
        assert (root / name).is_file(), name
    files = [p for p in root.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 3 * 2**20
    jpegs = [p for p in files if p.suffix == ".jpg"]
    assert 24 <= len(jpegs) <= 60
    assert list((root / "objects365" / "train").glob("patch*/objects365_v2_*.jpg"))
    header = (root / "openimages/oidv6-train-annotations-bbox.csv").read_text().splitlines()[0]
    assert header.startswith(
        "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,"
        "IsGroupOf,IsDepiction,IsInside"
    )
    assert not (root / "openimages/class-descriptions-boxable.csv").read_text().startswith("MID")


def test_deterministic_per_seed(tmp_path):
    one = sample_files(0)
    assert one == sample_files(0)
    other = sample_files(1)
    assert one.keys() != other.keys() or any(one[k] != other[k] for k in one)
    write_sample(tmp_path / "a", seed=3)
    write_sample(tmp_path / "a", seed=3)  # a previous sample is replaced
    assert {
        str(p.relative_to(tmp_path / "a")) for p in (tmp_path / "a").rglob("*") if p.is_file()
    } == set(sample_files(3))


def test_refuses_a_folder_with_other_files(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(DetforgeError, match="not empty"):
        write_sample(tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_every_source_reads_and_validates(datasets):
    for key, dataset in datasets.items():
        assert dataset.validate() == [], key
        assert dataset.images.height and dataset.objects.height, key
    counts = [(d.images["width"] > 0).all() for d in datasets.values()]
    assert all(counts)


def test_same_photo_boxes_overlap_and_framing_matches(sample_root, datasets, planted):
    a, b = planted["same_photo"]["images"]
    ia, ib = _image(datasets, a), _image(datasets, b)
    assert abs(ia["width"] / ia["height"] - ib["width"] / ib["height"]) < 0.01
    assert ia["width"] != ib["width"]  # resized
    pa, pb = _path(sample_root, datasets, a), _path(sample_root, datasets, b)
    assert pa.read_bytes() != pb.read_bytes()
    assert _phash(pa) - _phash(pb) <= 4
    ba, bb = _boxes(datasets, a), _boxes(datasets, b)
    assert ba.height == bb.height == 3
    for row in ba.iter_rows(named=True):
        ious = [_iou(row, other) for other in bb.iter_rows(named=True)]
        assert max(ious) > 0.8


def _iou(a: dict, b: dict) -> float:
    w = max(0.0, min(a["x2"], b["x2"]) - max(a["x1"], b["x1"]))
    h = max(0.0, min(a["y2"], b["y2"]) - max(a["y1"], b["y1"]))
    inter = w * h
    area = (a["x2"] - a["x1"]) * (a["y2"] - a["y1"]) + (b["x2"] - b["x1"]) * (b["y2"] - b["y1"])
    return inter / (area - inter)


def test_exact_duplicate_is_byte_identical(sample_root, datasets, planted):
    a, b = planted["exact_duplicate"]["images"]
    assert a["source"] != b["source"]
    assert (
        _path(sample_root, datasets, a).read_bytes() == _path(sample_root, datasets, b).read_bytes()
    )


def test_cropped_copy_changes_framing(sample_root, datasets, planted):
    a, b = planted["cropped_copy"]["images"]
    ia, ib = _image(datasets, a), _image(datasets, b)
    ratio_a, ratio_b = ia["width"] / ia["height"], ib["width"] / ib["height"]
    # well beyond dedup's 1 % framing tolerance, small enough to stay a near duplicate
    assert abs(ratio_a - ratio_b) / ratio_a > 0.03
    assert ib["width"] == round(ia["width"] * 0.96)


def test_look_alikes_are_not_near_duplicates(sample_root, datasets, planted):
    a, b = planted["look_alike"]["images"]
    pa, pb = _path(sample_root, datasets, a), _path(sample_root, datasets, b)
    mean_a = Image.open(pa).convert("RGB").resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
    mean_b = Image.open(pb).convert("RGB").resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
    assert max(abs(x - y) for x, y in zip(mean_a, mean_b, strict=True)) < 25  # similar colours
    assert _phash(pa) - _phash(pb) > 12  # but different photos


def test_all_images_have_distinct_phashes(sample_root, datasets, planted):
    dups = {
        (r["source"], r["source_image_id"])
        for case in ("same_photo", "exact_duplicate", "contaminated", "cropped_copy")
        for r in planted[case]["images"]
    }
    hashes = []
    for (source, _), dataset in datasets.items():
        if source == "coco":
            continue  # the same files as LVIS val
        for row in dataset.images.iter_rows(named=True):
            if (source, row["source_image_id"]) not in dups:
                hashes.append(_phash(Path(dataset.roots[source]) / row["file_name"]))
    closest = min(a - b for i, a in enumerate(hashes) for b in hashes[i + 1 :])
    assert closest > 8


def test_contaminated_train_image_copies_coco_val(sample_root, datasets, planted):
    case = planted["contaminated"]
    train = next(r for r in case["images"] if r["split"] == "train")
    val = next(r for r in case["images"] if r["split"] == "val")
    val_image = _image(datasets, val)
    coco_val = datasets[("coco", "val")].images
    listed = coco_val.filter(pl.col("source_image_id") == val["source_image_id"])
    assert listed.height == 1
    coco_file = sample_root / "coco" / listed["file_name"][0]
    assert coco_file.is_file()
    assert _phash(_path(sample_root, datasets, train)) - _phash(coco_file) <= 4
    assert _image(datasets, train)["width"] < val_image["width"]


def test_label_variants_group_of_and_verified_labels(datasets, planted):
    car = planted["label_variants"]["car"]
    names = {
        s: datasets[(s, "train" if s != "coco" else "val")].source_categories.filter(
            pl.col("source_label") == car[s]
        )["name"][0]
        for s in car
    }
    assert names == {
        "objects365": "Car",
        "openimages": "Car",
        "lvis": "car_(automobile)",
        "coco": "car",
    }
    (group,) = planted["group_of"]["images"]
    boxes = _boxes(datasets, group)
    assert boxes["is_group_of"].sum() == 1
    assert set(datasets[("openimages", "train")].image_labels["status"]) == {"positive", "negative"}
    for ref in planted["verified_labels"]["images"]:
        labels = datasets[("openimages", ref["split"])].image_labels
        mine = labels.filter(pl.col("image_id") == _image(datasets, ref)["image_id"])
        negatives = mine.filter(pl.col("status") == "negative")["source_label"]
        assert sorted(negatives) == sorted(ref["negative_labels"])
        positives = set(mine.filter(pl.col("status") == "positive")["source_label"])
        assert positives == set(_boxes(datasets, ref)["source_label"])


def test_federated_lvis_labels_and_rare_val_box(datasets, planted):
    train = datasets[("lvis", "train")].image_labels
    val = datasets[("lvis", "val")].image_labels
    both = pl.concat([train, val])
    assert set(both["status"]) == {"negative", "not_exhaustive"}
    for ref in planted["lvis_federated"]["images"]:
        labels = datasets[("lvis", ref["split"])].image_labels
        mine = labels.filter(pl.col("image_id") == _image(datasets, ref)["image_id"])
        for status, key in (
            ("negative", "negative_labels"),
            ("not_exhaustive", "not_exhaustive_labels"),
        ):
            got = mine.filter(pl.col("status") == status)["source_label"]
            assert sorted(got) == sorted(ref.get(key, []))
    (rare,) = planted["rare_class_val"]["images"]
    boxes = _boxes(datasets, rare)
    assert "808" in boxes["source_label"].to_list()
    cats = datasets[("lvis", "val")].source_categories
    assert cats.filter(pl.col("source_label") == "808")["frequency"][0] == "r"


def test_trailing_space_names_and_outside_box(datasets, planted):
    cats = datasets[("objects365", "train")].source_categories
    names = dict(zip(cats["source_label"], cats["name"], strict=True))
    assert names["365"] == "Table Tennis " and names["197"] == "Cigar/Cigarette "
    (image,) = planted["trailing_space_names"]["images"]
    assert "365" in _boxes(datasets, image)["source_label"].to_list()
    quarantine = datasets[("objects365", "train")].quarantine
    assert quarantine.height == 1 and "clipped" in quarantine["reason"][0]
    (outside,) = planted["box_outside_image"]["images"]
    assert _boxes(datasets, outside)["x2"].max() == pytest.approx(1.0)


def test_counting_images_have_several_instances(datasets, planted):
    for ref in planted["counting"]["images"]:
        counts = _boxes(datasets, ref).group_by("source_label").len()["len"]
        assert counts.max() >= 3


def test_relative_size_images_hold_one_large_and_one_small_box(datasets, planted):
    refs = planted["relative_size"]["images"]
    larger = []
    for ref in refs:
        boxes = _boxes(datasets, ref).with_columns(
            area=(pl.col("x2") - pl.col("x1")) * (pl.col("y2") - pl.col("y1"))
        )
        assert sorted(boxes["source_label"]) == ["56", "93"], ref  # one Bus, one Dog
        big, small = boxes.sort("area", descending=True).rows(named=True)
        assert big["area"] >= 6 * small["area"], ref
        larger.append(big["source_label"])
    assert sorted(larger) == ["56"] * 3 + ["93"] * 3  # each class drawn large three times
