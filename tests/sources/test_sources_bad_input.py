"""Bad input: one clear InputError naming file/record/field, or a quarantine row; never silent."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from PIL import Image

from detforge.errors import InputError
from detforge.sources import coco, lvis, objects365, openimages


def _coco(tmp_path: Path, edit=None) -> Path:
    """A two-image COCO folder (real JPEGs) after ``edit(data)``; returns the folder."""
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    (root / "val2017").mkdir()
    for image_id, size in ((1, (100, 50)), (2, (40, 80))):
        Image.new("RGB", size, (90, 120, 30)).save(root / "val2017" / f"{image_id:012d}.jpg")
    data = {
        "images": [
            {"id": 1, "file_name": "000000000001.jpg", "width": 100, "height": 50},
            {"id": 2, "file_name": "000000000002.jpg", "width": 40, "height": 80},
        ],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 3, "bbox": [10, 5, 20, 10], "area": 200, "iscrowd": 0},
            {"id": 11, "image_id": 2, "category_id": 1, "bbox": [0, 0, 40, 80], "area": 3200, "iscrowd": 1},
        ],
        "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}],
    }  # fmt: skip
    if edit:
        edit(data)
    text = data if isinstance(data, str) else json.dumps(data)
    (root / "annotations" / "instances_val2017.json").write_text(text)
    return root


def _read(root: Path, **kwargs):
    return coco.read(root, "val", **kwargs)


def test_good_file_reads(tmp_path):
    dataset = _read(_coco(tmp_path))
    assert dataset.validate() == []
    assert dataset.objects["is_crowd"].to_list() == [False, True]
    assert dataset.quarantine.height == 0
    box = dataset.objects["bbox"][0].to_list()
    assert box == pytest.approx([0.1, 0.1, 0.3, 0.3])


def test_malformed_json(tmp_path):
    root = _coco(tmp_path)
    path = root / "annotations" / "instances_val2017.json"
    path.write_text(path.read_text()[:-20])
    with pytest.raises(InputError, match="malformed JSON") as error:
        _read(root)
    assert error.value.file == str(path)


@pytest.mark.parametrize(
    ("edit", "field", "reason"),
    [
        (lambda d: d.pop("images"), "images", "missing top-level key"),
        (lambda d: d["annotations"][1].pop("bbox"), "bbox", "expected"),
        (lambda d: d["annotations"][1].pop("category_id"), "category_id", "missing"),
        (lambda d: d["images"][0].pop("width"), "width", "missing"),
        (lambda d: d["annotations"][0].update(bbox=[1, 2, 3]), "bbox", "expected"),
        (lambda d: d["annotations"][0].update(image_id="one"), "image_id", "bad value"),
        (lambda d: d["annotations"][0].update(image_id=7), "image_id", "unknown image 7"),
        (
            lambda d: d["annotations"][0].update(category_id=99),
            "category_id",
            "unknown category 99",
        ),
        (lambda d: d["annotations"][1].update(id=10), "id", "duplicate annotation id"),
        (lambda d: d["images"][1].update(id=1), "id", "duplicate image id"),
        (
            lambda d: d["categories"].append({"id": 1, "name": "again"}),
            "id",
            "duplicate category id",
        ),
        (
            lambda d: d["images"][0].update(file_name="../secret.jpg"),
            "file_name",
            "leaves the image root",
        ),
        (lambda d: d["images"][0].update(file_name="/etc/passwd"), "file_name", "absolute path"),
        (lambda d: d["images"][0].update(height=0), "width", "must be positive"),
    ],
)
def test_bad_records_name_file_record_and_field(tmp_path, edit, field, reason):
    with pytest.raises(InputError) as error:
        _read(_coco(tmp_path, edit))
    assert error.value.field == field
    assert reason in error.value.reason
    assert error.value.file.endswith("instances_val2017.json")
    assert "\n" not in str(error.value)


def test_missing_image_file_and_skipping_the_check(tmp_path):
    root = _coco(tmp_path)
    (root / "val2017" / "000000000002.jpg").unlink()
    with pytest.raises(InputError, match="000000000002.jpg not found") as error:
        _read(root)
    assert error.value.record == "2"
    assert _read(root, check_files=False).images.height == 2


def test_boxes_quarantined_clipped_or_dropped(tmp_path):
    def edit(data):
        data["annotations"] += [
            {"id": 20, "image_id": 1, "category_id": 1, "bbox": [90, 40, 30, 20]},  # partly outside
            {"id": 21, "image_id": 1, "category_id": 1, "bbox": [10, 10, 0, 5]},  # zero width
            {"id": 22, "image_id": 1, "category_id": 1, "bbox": [10, 10, -4, 5]},  # x2 < x1
            {"id": 23, "image_id": 1, "category_id": 1, "bbox": [200, 10, 5, 5]},  # fully outside
        ]

    dataset = _read(_coco(tmp_path, edit))
    assert dataset.validate() == []
    quarantine = dataset.quarantine.sort("record")
    assert quarantine["record"].to_list() == ["20", "21", "22", "23"]
    assert quarantine["reason"].str.contains("clipped").to_list() == [True, False, False, False]
    assert (quarantine["field"] == "bbox").all()
    assert dataset.objects.height == 3  # 2 good + the clipped one
    clipped = dataset.objects.filter(pl.col("area") == 600)["bbox"][0].to_list()
    assert clipped == pytest.approx([0.9, 0.8, 1.0, 1.0])


def test_objects365_bad_paths_and_json(tmp_path, sample_root):
    root = tmp_path / "o365"
    shutil.copytree(sample_root / "objects365", root)
    file = root / "zhiyuan_objv2_val.json"
    data = json.loads(file.read_text())
    data["images"][0]["file_name"] = "images/v2/../../../patch0/x.jpg"
    file.write_text(json.dumps(data))
    with pytest.raises(InputError, match="leaves the image root"):
        objects365.read(root, "val")
    file.write_text("{not json")
    with pytest.raises(InputError, match="malformed JSON"):
        objects365.read(root, "val")
    file.unlink()
    with pytest.raises(InputError, match="no Objects365 annotation file"):
        objects365.read(root, "val")


def test_lvis_unknown_negative_category(tmp_path, sample_root):
    root = tmp_path / "lvis"
    root.mkdir()
    data = json.loads((sample_root / "lvis" / "lvis_v1_val.json").read_text())
    data["images"][1]["neg_category_ids"] = [5]
    (root / "lvis_v1_val.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match="unknown category 5") as error:
        lvis.read(root, "val", check_files=False)
    assert error.value.field == "neg_category_ids"
    assert error.value.record == data["images"][1]["id"]


@pytest.fixture
def oi_root(tmp_path, sample_root) -> Path:
    root = tmp_path / "oi"
    shutil.copytree(sample_root / "openimages", root)
    return root


def _edit_csv(path: Path, edit) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(edit(lines)) + "\n")


@pytest.mark.parametrize(
    ("file", "edit", "match"),
    [
        ("validation-annotations-bbox.csv", lambda ls: [ls[0].replace("XMax", "XMaxx")] + ls[1:], "missing column"),
        ("validation-annotations-bbox.csv", lambda ls: ls + ['0123,"unterminated'], "malformed CSV|line"),
        ("validation-annotations-bbox.csv", lambda ls: ls[:1] + [ls[1].replace("/m/", "/x/", 1)] + ls[2:], "unknown class /x/"),
        ("validation-annotations-bbox.csv", lambda ls: ls[:1] + [_set(ls[1], 8, "2")] + ls[2:], "flag 2 not in"),
        ("validation-annotations-bbox.csv", lambda ls: ls[:1] + [_set(ls[1], 0, "../../x")] + ls[2:], "leaves the image root"),
        ("validation-annotations-human-imagelabels-boxable.csv", lambda ls: ls[:1] + [_set(ls[1], 3, "0.5")] + ls[2:], "not 0 or 1"),
        ("validation-annotations-bbox.csv", lambda ls: ls[:1] + [_set(ls[1], 4, "")] + ls[2:], "missing or empty"),
    ],
)  # fmt: skip
def test_openimages_bad_csv(oi_root, file, edit, match):
    _edit_csv(oi_root / file, edit)
    with pytest.raises(InputError, match=match) as error:
        openimages.read(oi_root, "val")
    assert file in error.value.file or "validation/" in str(error.value)


def _set(line: str, index: int, value: str) -> str:
    cells = line.split(",")
    cells[index] = value
    return ",".join(cells)


def test_openimages_inverted_and_outside_boxes_are_quarantined(oi_root):
    def edit(lines):
        first = lines[1].split(",")
        inverted = _set(lines[1], 4, "0.9")  # XMin 0.9 > XMax
        outside = _set(_set(lines[1], 6, "-0.2"), 5, first[5])  # YMin < 0: clipped
        return [*lines, inverted, outside]

    _edit_csv(oi_root / "validation-annotations-bbox.csv", edit)
    dataset = openimages.read(oi_root, "val")
    reasons = sorted(dataset.quarantine["reason"].to_list())
    assert reasons == [
        "box partly outside the image: clipped",
        "zero or negative size: box dropped",
    ]
    assert dataset.quarantine["record"].str.starts_with("line ").all()
    assert dataset.validate() == []


def test_openimages_missing_image_file(oi_root):
    victim = next((oi_root / "validation").glob("*.jpg"))
    victim.unlink()
    with pytest.raises(InputError, match=f"{victim.name} not found"):
        openimages.read(oi_root, "val")
    dataset = openimages.read(oi_root, "val", check_files=False)
    assert dataset.images["width"].null_count() == dataset.images.height


def test_openimages_unreadable_image(oi_root):
    victim = next((oi_root / "validation").glob("*.jpg"))
    victim.write_bytes(b"not a jpeg")
    with pytest.raises(InputError, match="cannot read image header") as error:
        openimages.read(oi_root, "val")
    assert error.value.file == str(victim)
