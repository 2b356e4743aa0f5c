"""Reader behaviour on the sample and on small hand-made files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import orjson
import polars as pl
import pytest
from PIL import Image

from detforge import schema
from detforge.errors import InputError
from detforge.sources import coco, headers, jsonchunks, lvis, objects365, openimages
from detforge.sources.cocojson import parse
from detforge.sources.discover import discover


def test_objects365_resolves_patch_folders_and_ids(sample_root):
    dataset = objects365.read(sample_root / "objects365", "train")
    raw = json.loads((sample_root / "objects365" / "zhiyuan_objv2_train.json").read_text())
    first = raw["images"][0]
    row = dataset.images.filter(pl.col("source_image_id") == str(first["id"])).row(0, named=True)
    assert first["file_name"].startswith("images/v2/patch")
    assert row["file_name"] == "train/" + "/".join(first["file_name"].split("/")[-2:])
    assert row["image_id"] == schema.stable_id("objects365", str(first["id"]))
    assert dataset.roots["objects365"] == str((sample_root / "objects365").resolve())
    ann = raw["annotations"][0]
    assert (
        schema.stable_id("objects365", f"train/{ann['id']}")
        in dataset.objects["object_id"].to_list()
    )
    # exhaustive: every class is in label_spaces
    assert dataset.label_spaces.height == dataset.source_categories.height == 15
    assert dataset.objects["label"].null_count() == dataset.objects.height


def test_objects365_v1_names_and_versions(tmp_path, sample_root):
    root = tmp_path / "o365"
    (root / "val").mkdir(parents=True)
    data = json.loads((sample_root / "objects365" / "zhiyuan_objv2_val.json").read_text())
    for image in data["images"]:
        name = image["file_name"].split("/")[-1]
        shutil.copy(sample_root / "objects365" / "val" / "patch0" / name, root / "val" / name)
        image["file_name"] = name  # v1: a bare file name in <split>/
    (root / "objects365_val.json").write_text(json.dumps(data))
    dataset = objects365.read(root, "val")
    assert dataset.images["file_name"].str.starts_with("val/objects365_v2_").all()
    v1 = objects365.read(root, "val", version="v1")
    assert v1.images.height == 5
    # v1 numbers its classes in another order: it is its own label space
    assert set(v1.objects["source"]) == set(v1.source_categories["source"]) == {"objects365_v1"}
    with pytest.raises(InputError, match="zhiyuan_objv2_val.json"):
        objects365.read(root, "val", version="v2")
    with pytest.raises(InputError, match="unknown Objects365 version"):
        objects365.read(root, "val", version="v9")


def test_openimages_sizes_flags_and_labels(sample_root):
    dataset = openimages.read(sample_root / "openimages", "val")
    for row in dataset.images.iter_rows(named=True):
        size = Image.open(sample_root / "openimages" / row["file_name"]).size
        assert (row["width"], row["height"]) == size
        assert row["file_name"] == f"validation/{row['source_image_id']}.jpg"
    assert dataset.objects["is_inside"].null_count() == dataset.objects.height  # -1 → null
    assert dataset.objects["is_occluded"].null_count() == 0
    raw = pl.read_csv(sample_root / "openimages" / "validation-annotations-bbox.csv")
    assert dataset.objects["is_occluded"].sum() == raw["IsOccluded"].sum()
    assert dataset.objects["area"].min() > 0
    labels = dataset.image_labels
    assert labels["label"].null_count() == labels.height
    assert set(labels["status"]) == {"positive", "negative"}
    parents = dataset.source_categories.filter(pl.col("name") == "Bicycle")["parents"][0].to_list()
    assert set(parents) == {"/m/05y5lj", "/m/01prls"}  # Sports equipment, Land vehicle


def test_openimages_versions_and_sharded_train(tmp_path, sample_root):
    root = tmp_path / "oi"
    shutil.copytree(sample_root / "openimages", root)
    # a v4-style layout: unprefixed file names, train images sharded by first hex digit
    (root / "oidv6-train-annotations-bbox.csv").rename(root / "train-annotations-bbox.csv")
    (root / "oidv6-train-annotations-human-imagelabels-boxable.csv").rename(
        root / "train-annotations-human-imagelabels-boxable.csv"
    )
    for image in list((root / "train").glob("*.jpg")):
        shard = root / f"train_{image.name[0]}"
        shard.mkdir(exist_ok=True)
        image.rename(shard / image.name)
    (root / "train").rmdir()
    dataset = openimages.read(root, "train", version="v4")
    assert dataset.images.height == 9
    assert dataset.images["file_name"].str.contains(r"^train_[0-9a-f]/").all()
    assert dataset.image_labels.height > 0
    with pytest.raises(InputError, match="unknown OpenImages version"):
        openimages.read(root, "train", version="v3")


def test_openimages_without_labels_file_and_foreign_label_classes(tmp_path, sample_root):
    root = tmp_path / "oi"
    shutil.copytree(sample_root / "openimages", root)
    labels = root / "validation-annotations-human-imagelabels-boxable.csv"
    text = labels.read_text()
    first_image = text.splitlines()[1].split(",")[0]
    labels.write_text(text + f"{first_image},verification,/m/0notboxable,1\n" * 2)
    dataset = openimages.read(root, "val")
    (row,) = dataset.quarantine.iter_rows(named=True)
    assert row["record"] == "/m/0notboxable" and "2 image label(s) skipped" in row["reason"]
    assert "/m/0notboxable" not in dataset.image_labels["source_label"].to_list()
    labels.unlink()
    bare = openimages.read(root, "val")
    assert bare.image_labels.height == 0 and bare.objects.height == dataset.objects.height


def test_image_sizes_on_a_process_pool(monkeypatch, sample_root):
    files = sorted((sample_root / "openimages" / "train").glob("*.jpg"))
    monkeypatch.setattr(headers, "POOL_MIN_FILES", 2)
    monkeypatch.setattr(headers, "CHUNK", 3)
    sizes = headers.image_sizes(files, workers=2)
    assert sizes == [Image.open(f).size for f in files]


def test_lvis_paths_from_coco_url_and_federated_labels(sample_root):
    dataset = lvis.read(sample_root / "lvis", "val")
    assert dataset.roots["lvis"] == str((sample_root / "coco").resolve())
    assert dataset.images["file_name"].str.starts_with("val2017/").all()
    raw = json.loads((sample_root / "lvis" / "lvis_v1_val.json").read_text())
    expected = sum(
        len(i["neg_category_ids"]) + len(i["not_exhaustive_category_ids"]) for i in raw["images"]
    )
    assert dataset.image_labels.height == expected
    assert dataset.label_spaces.height == 0  # federated: nothing exhaustive per source
    assert dataset.source_categories.filter(pl.col("frequency") == "r").height == 3
    explicit = lvis.read(sample_root / "lvis", "val", images_root=sample_root / "coco")
    assert explicit.images.equals(dataset.images)


def test_coco_paths_and_images_root(sample_root, tmp_path):
    dataset = coco.read(sample_root / "coco", "val")
    assert dataset.images["file_name"].str.starts_with("val2017/").all()
    assert dataset.roots["coco"] == str((sample_root / "coco").resolve())
    flat = coco.read(
        sample_root / "coco" / "annotations" / "instances_val2017.json",
        "val",
        images_root=sample_root / "coco" / "val2017",
    )
    assert (flat.images["file_name"] == dataset.images["file_name"].str.slice(8)).all()
    assert dataset.label_spaces.height == 12


def _parse(path: Path):
    return parse(path, "coco", image_keys={"file_name": pl.String})


@pytest.mark.parametrize("order", ["images_first", "annotations_first"])
def test_chunked_parse_equals_whole_parse(tmp_path, monkeypatch, order):
    anns = [
        {"id": i, "image_id": 1 + i % 3, "category_id": 1, "bbox": [1, 2, 3 + i % 5, 4],
         "segmentation": {"counts": "a}, {b", "size": [9, 9]}, "note": "}, {\"x\": ]"}
        for i in range(500)
    ]  # fmt: skip
    images = [{"id": i, "file_name": f"{i}.jpg", "width": 50, "height": 40} for i in (1, 2, 3)]
    cats = [{"id": 1, "name": "a"}]
    data = {"images": images, "annotations": anns, "categories": cats}
    if order == "annotations_first":
        data = {"info": {}, "annotations": anns, "images": images, "categories": cats}
    path = tmp_path / "x.json"
    path.write_bytes(orjson.dumps(data))
    whole = _parse(path)
    monkeypatch.setattr(jsonchunks, "CHUNK_BYTES", 1000)
    calls = []
    real = jsonchunks._walk
    monkeypatch.setattr(jsonchunks, "_walk", lambda *a: calls.append(1) or real(*a))
    chunked = _parse(path)
    assert calls and chunked.annotations.equals(whole.annotations)
    assert chunked.images.equals(whole.images)
    assert chunked.annotations["id"].to_list() == list(range(500))


def test_chunked_parse_edge_cases(tmp_path, monkeypatch):
    monkeypatch.setattr(jsonchunks, "CHUNK_BYTES", 64)
    images = [{"id": 1, "file_name": "1.jpg", "width": 50, "height": 40}]
    path = tmp_path / "x.json"
    # an empty annotations array
    path.write_bytes(orjson.dumps({"images": images, "annotations": [], "categories": []}))
    assert _parse(path).annotations.height == 0
    # a second "annotations" key (nested) disables the fast path: still right
    ann = {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2]}
    nested = {"info": {"annotations": [{"x": 1}]}, "images": images, "annotations": [ann] * 3,
              "categories": [{"id": 1, "name": "a"}]}  # fmt: skip
    path.write_bytes(orjson.dumps(nested))
    assert _parse(path).annotations.height == 3
    # no top-level annotations: a clear error, not a crash
    path.write_bytes(
        orjson.dumps({"info": {"annotations": []}, "images": images, "categories": []})
    )
    with pytest.raises(InputError, match="missing top-level key 'annotations'"):
        _parse(path)
    # a bad record deep in a later chunk names its position in the whole array
    bad = {**nested, "info": {}, "annotations": [ann] * 20 + [{**ann, "bbox": [1, "x", 2, 2]}]}
    path.write_bytes(orjson.dumps(bad))
    with pytest.raises(InputError, match=r"annotations\[20\]"):
        _parse(path)


def test_discover_finds_every_split_of_the_sample(sample_root):
    found = {(s.source, s.split) for s in discover(sample_root)}
    assert found == {
        ("objects365", "train"), ("objects365", "val"), ("openimages", "train"),
        ("openimages", "val"), ("lvis", "train"), ("lvis", "val"), ("coco", "val"),
    }  # fmt: skip
    assert {s.source for s in discover(sample_root, ["lvis"])} == {"lvis"}
    with pytest.raises(Exception, match="unknown source"):
        discover(sample_root, ["imagenet"])


def test_read_all_merges_splits_into_one_valid_dataset(sample_root):
    from detforge.sources.discover import read_all

    dataset = read_all(sample_root)
    assert dataset.validate() == []
    counts = dict(dataset.source_categories.group_by("source").len().iter_rows())
    assert counts == {"objects365": 15, "openimages": 29, "lvis": 15, "coco": 12}
    assert dataset.images.height == sum(s.read().images.height for s in discover(sample_root))
    with pytest.raises(Exception, match="no source found"):
        read_all(sample_root / "nothing-here")
