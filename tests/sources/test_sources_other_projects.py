"""The readers on other projects' real files (tests/data/PROVENANCE.md) and on the naming
and content variants those projects use."""

from __future__ import annotations

import gzip
import json
import re
import shutil
from pathlib import Path

import polars as pl
import pytest

from detforge.errors import InputError
from detforge.sources import coco, lvis, openimages
from detforge.sources.openimages_classes import read_class_csv

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture
def datumaro(tmp_path) -> Path:
    root = tmp_path / "datumaro"
    shutil.copytree(DATA / "datumaro_open_images_v6", root)
    return root


def test_datumaro_open_images_reads_with_its_own_root_header_and_label_names(datumaro):
    """Root ``/m/x`` (not a class), a ``LabelName,DisplayName`` header in
    ``oidv6-class-descriptions.csv``, image labels in files without ``-boxable``."""
    train = openimages.read(datumaro / "annotations", "train", images_root=datumaro / "images")
    cats = train.source_categories
    assert cats["source_label"].to_list() == ["/m/0", "/m/1", "/m/2", "/m/3"]
    assert "DisplayName" not in cats["name"].to_list()
    parents = dict(zip(cats["source_label"], cats["parents"].to_list(), strict=True))
    assert parents == {"/m/0": [], "/m/1": ["/m/0"], "/m/2": [], "/m/3": []}
    statuses = dict(
        train.image_labels.join(train.images, on="image_id")
        .select("source_image_id", "status")
        .iter_rows()
    )
    assert statuses == {"a": "positive", "b": "negative"}
    sizes = {r["source_image_id"]: (r["width"], r["height"]) for r in train.images.to_dicts()}
    assert sizes == {"a": (6, 8), "b": (8, 2)}  # from the image files' headers
    assert train.objects.height == 1
    assert train.objects["source_bbox"][0].to_list() == pytest.approx([1.6, 0.6, 6.4, 0.4])
    test = openimages.read(datumaro / "annotations", "test", images_root=datumaro / "images")
    assert sorted(test.image_labels["source_label"].to_list()) == ["/m/1", "/m/3"]


@pytest.mark.parametrize(
    "name",
    [
        "validation-annotations-human-imagelabels.csv",
        "oidv6-validation-annotations-human-imagelabels.csv",
        "oidv7-validation-annotations-human-imagelabels-boxable.csv",
    ],
)
def test_every_image_label_file_name_is_read(tmp_path, sample_root, name):
    root = tmp_path / "oi"
    shutil.copytree(sample_root / "openimages", root)
    given = root / "validation-annotations-human-imagelabels-boxable.csv"
    expected = openimages.read(root, "val").image_labels
    assert expected.height > 0
    given.rename(root / name)
    assert openimages.files(root, "val")["labels"] == root / name
    assert openimages.read(root, "val").image_labels.equals(expected)


def test_the_boxable_image_label_file_wins(tmp_path, sample_root):
    root = tmp_path / "oi"
    shutil.copytree(sample_root / "openimages", root)
    boxable = root / "validation-annotations-human-imagelabels-boxable.csv"
    (root / "oidv6-validation-annotations-human-imagelabels.csv").write_text(
        "ImageID,Source,LabelName,Confidence\n"
    )
    assert openimages.files(root, "val", version="v6")["labels"] == boxable


@pytest.mark.parametrize("header", ["LabelName,DisplayName", "mid,label", "MID,name"])
def test_class_file_header_lines_are_detected(tmp_path, header):
    path = tmp_path / "class-descriptions-boxable.csv"
    path.write_text(f"{header}\n/m/011k07,Tortoise\n/m/011q46kg,Container\n")
    frame = read_class_csv(path)
    assert frame["source_label"].to_list() == ["/m/011k07", "/m/011q46kg"]
    path.write_text("/m/011k07,Tortoise\n/m/011q46kg,Container\n")
    assert read_class_csv(path).height == 2


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("LabelName,DisplayName\n/m/01,A\n/m/02,\n", 3, "missing or empty value"),
        ("/m/01,A\n/m/02,B\n/m/01,C\n", 3, "duplicate class /m/01 (first on line 1)"),
        ("LabelName,DisplayName\n/m/01,A\n/m/01,B\n", 3, "duplicate class /m/01 (first on line 2)"),
    ],
)
def test_class_file_errors_name_the_file_line(tmp_path, text, line, reason):
    path = tmp_path / "class-descriptions-boxable.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=re.escape(reason)) as raised:
        read_class_csv(path)
    assert raised.value.record == f"line {line}"


@pytest.fixture
def lvis_v05(tmp_path) -> Path:
    """lvis-api's real LVIS v0.5 val subset, named as LVIS ships it."""
    path = tmp_path / "lvis" / "lvis_v0.5_val.json"
    path.parent.mkdir()
    path.write_bytes(
        gzip.decompress(
            (DATA / "faster_coco_eval" / "lvis_v0.5_val_100_boxes.json.gz").read_bytes()
        )
    )
    return path


def test_lvis_v05_reads_with_paths_from_coco_url(lvis_v05):
    raw = json.loads(lvis_v05.read_text())
    assert raw["images"][0]["file_name"].startswith("COCO_val2014_")
    dataset = lvis.read(lvis_v05.parent, "val", check_files=False)  # found by its v0.5 name
    assert dataset.images["source"].unique().to_list() == ["lvis_v0.5"]
    first = raw["images"][0]
    row = dataset.images.filter(pl.col("source_image_id") == str(first["id"])).row(0, named=True)
    assert row["file_name"] == "val2017/" + first["coco_url"].rsplit("/", 1)[1]
    assert dataset.objects.height == len(raw["annotations"])
    assert dataset.image_labels.height == sum(
        len(i["neg_category_ids"]) + len(i["not_exhaustive_category_ids"]) for i in raw["images"]
    )
    assert dataset.source_categories["frequency"].null_count() == 0
    assert lvis.read(lvis_v05, "val", version="v0.5", check_files=False).objects.height > 0
    with pytest.raises(InputError, match=r"unknown LVIS version 'v2' \(v1, v0.5\)"):
        lvis.read(lvis_v05, "val", version="v2")


def test_lvis_v05_without_coco_url_uses_the_coco_2014_folder(lvis_v05, tmp_path):
    raw = json.loads(lvis_v05.read_text())
    for image in raw["images"]:
        del image["coco_url"]
    lvis_v05.write_text(json.dumps(raw))
    images = tmp_path / "coco"
    for image in raw["images"]:
        (images / "val2014").mkdir(parents=True, exist_ok=True)
        (images / "val2014" / image["file_name"]).write_bytes(b"")
    dataset = lvis.read(lvis_v05, "val", images_root=images)  # every file is found
    assert dataset.images["file_name"].str.starts_with("val2014/COCO_val2014_").all()


def test_non_positive_areas_are_recomputed_and_noted(tmp_path):
    raw = json.loads((DATA / "mmdetection" / "unsorted_obj365_sample.json").read_text())
    path = tmp_path / "instances_val2017.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(InputError, match="unknown category 3") as raised:
        coco.read(path, "val", check_files=False)  # its annotation 6 names a category not listed
    assert raised.value.record == 6 and raised.value.field == "category_id"
    raw["annotations"] = [a for a in raw["annotations"] if a["category_id"] != 3]
    raw["annotations"][0]["area"] = -1
    path.write_text(json.dumps(raw))
    dataset = coco.read(path, "val", check_files=False)
    area = dict(zip(dataset.objects["object_id"], dataset.objects["area"], strict=True))
    notes = dataset.quarantine.filter(pl.col("field") == "area")
    assert sorted(notes["record"].to_list()) == ["1", "7"]
    assert notes["reason"].str.contains("is not positive: recomputed").all()
    assert "area -1.0 is not positive" in notes["reason"].to_list()[0] + notes["reason"][1]
    assert all(a > 0 for a in area.values())
    dropped = dataset.quarantine.filter(pl.col("field") == "bbox")["record"].to_list()
    assert dropped == ["5"]  # the zero-width box
