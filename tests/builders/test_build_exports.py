"""The exports load in their consumers: pycocotools, mmdet's CocoDataset, datasets."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from detforge.dataset import DetDataset
from detforge.exports import coco as export_coco
from tests.builders.conftest import CLASSES


def _source_boxes(tiny_root: Path, split: str) -> set[tuple[str, int, tuple[float, ...]]]:
    """(source image id, category id, bbox) of the source file's kept (mapped) boxes."""
    data = json.loads(
        (tiny_root / "src" / "annotations" / f"instances_{split}2017.json").read_text()
    )
    return {
        (str(a["image_id"]), a["category_id"], tuple(a["bbox"]))
        for a in data["annotations"]
        if a["category_id"] != 4 and a["image_id"] not in (100, 101)  # dropped / contaminated
    }


def test_coco_export_loads_in_pycocotools_with_the_source_boxes(tiny_root, tiny_build):
    from pycocotools.coco import COCO

    tables = DetDataset.read(tiny_build / "tables")
    for split in ("train", "val"):
        coco = COCO(str(tiny_build / "coco" / f"{split}.json"))
        images = tables.images.filter(pl.col("split") == split)
        assert sorted(coco.getImgIds()) == sorted(images["image_id"])
        assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == CLASSES
        assert coco.getCatIds() == [1, 2, 3]  # unified id + 1
        source_id = {img["id"]: img["source_image_id"] for img in coco.dataset["images"]}
        # category k+1 of the export is source category k+1 in the tiny taxonomy (same order)
        exported = {
            (source_id[a["image_id"]], a["category_id"], tuple(a["bbox"]))
            for a in coco.dataset["annotations"]
        }
        assert exported == _source_boxes(tiny_root, split)
        crowd = [a for a in coco.dataset["annotations"] if a["iscrowd"]]
        assert crowd and all(a["bbox"][2] == 13.5 for a in crowd)  # k == 3 boxes are crowd
        img = coco.loadImgs(coco.getImgIds()[0])[0]
        assert img["file_name"].startswith("coco/")
        roots = json.loads((tiny_build / "coco" / "roots.json").read_text())
        assert (Path(roots["coco"]) / img["file_name"].removeprefix("coco/")).is_file()
        assert (tiny_build / "coco" / "images" / img["file_name"]).is_file()
    label_spaces = json.loads((tiny_build / "coco" / "train.json").read_text())["label_spaces"]
    assert label_spaces == {"coco": [1, 2, 3]}


def test_coco_export_loads_in_mmdet(tiny_build: Path) -> None:
    from mmdet.datasets import CocoDataset

    dataset = CocoDataset(
        data_root=str(tiny_build / "coco"),
        ann_file="train.json",
        data_prefix=dict(img="images/"),
        metainfo=dict(classes=tuple(CLASSES)),
        test_mode=True,
        pipeline=[],
    )
    coco = json.loads((tiny_build / "coco" / "train.json").read_text())
    assert len(dataset) == len(coco["images"])
    instances = sum(len(dataset[i]["instances"]) for i in range(len(dataset)))
    assert instances == len(coco["annotations"])
    first = dataset[0]
    assert Path(first["img_path"]).is_file()
    ann = next(a for a in coco["annotations"] if a["image_id"] == first["img_id"])
    x, y, w, h = ann["bbox"]
    assert first["instances"][0]["bbox"] == pytest.approx([x, y, x + w, y + h])
    assert first["instances"][0]["bbox_label"] == ann["category_id"] - 1


def test_hub_export_loads_in_datasets(tiny_build: Path, tmp_path: Path) -> None:
    import datasets

    loaded = datasets.load_dataset(str(tiny_build / "hub"), cache_dir=str(tmp_path / "cache"))
    tables = DetDataset.read(tiny_build / "tables")
    coco = json.loads((tiny_build / "coco" / "train.json").read_text())
    for split in ("train", "val"):
        assert loaded[split].num_rows == tables.images.filter(pl.col("split") == split).height
    features = loaded["train"].features
    assert features["objects"]["category"].feature.names == CLASSES
    assert isinstance(features["image"], datasets.Image)
    row = loaded["train"][0]
    assert row["image"].size == (row["width"], row["height"])
    by_object = {a["id"]: a for a in coco["annotations"]}
    objects = row["objects"]
    for object_id, bbox, category in zip(
        objects["object_id"], objects["bbox"], objects["category"], strict=True
    ):
        assert bbox == pytest.approx(by_object[object_id]["bbox"], abs=1e-4)
        assert category == by_object[object_id]["category_id"] - 1


def test_hub_card_follows_the_matching_settings(tiny_root: Path, tiny_build: Path) -> None:
    from detforge.builders.card import body
    from detforge.builders.recipe import load_recipe

    dataset = DetDataset.read(tiny_build / "tables")
    default = (tiny_build / "hub" / "README.md").read_text()
    assert "exact content hash and 64-bit perceptual hash within 4 bits" in default
    assert "perceptual hashes: heavy crops or edits escape it" in default
    exact_only = body(
        dataset, load_recipe(tiny_root / "tiny.yaml", ["dedup.near=false"]), "# Build report\n"
    )
    assert "perceptual hash within" not in exact_only
    assert "exact content hash only; near-duplicate matching was off" in exact_only
    assert "Near-duplicate matching was off (`dedup.near: false`)" in exact_only


def test_hub_card_describes_what_the_repo_holds(tiny_build: Path) -> None:
    card = (tiny_build / "hub" / "README.md").read_text()
    loading = card.split("## Loading\n")[1].split("\n## ")[0]
    for field in ("neg_category_ids", "not_exhaustive_category_ids", "taxonomy/label_spaces.csv"):
        assert field in loading
    assert "they are not\nuploaded" in loading and "coco/images" not in card
    limitations = card.split("## Known limitations\n")[1].split("\n## ")[0]
    assert "`neg_category_ids`" in limitations and "label_spaces.csv" in limitations
    assert "COCO export" not in limitations and "tables/" not in limitations
    rows = (tiny_build / "hub" / "taxonomy" / "label_spaces.csv").read_text().splitlines()
    assert rows[0] == "source,label,name"


def test_federated_fields_from_image_labels() -> None:
    images = pl.DataFrame(
        {
            "image_id": [1, 2],
            "source": ["lvis", "lvis"],
            "source_image_id": ["1", "2"],
            "file_name": ["a.jpg", "b.jpg"],
            "width": [10, 10],
            "height": [10, 10],
            "split": ["val", "val"],
        }
    )
    objects = pl.DataFrame(
        {
            "image_id": [1],
            "object_id": [7],
            "source": ["lvis"],
            "source_label": ["3"],
            "label": [2],
            "bbox": [[0.1, 0.1, 0.5, 0.5]],
            "area": [None],
        },
        schema_overrides={"bbox": pl.Array(pl.Float32, 4), "area": pl.Float32},
    )
    labels = pl.DataFrame(
        {
            "image_id": [1, 1, 1, 2, 2],
            "source": ["lvis"] * 5,
            "source_label": ["1"] * 5,
            "label": [0, 1, 2, 1, 0],
            "status": ["negative", "not_exhaustive", "positive", "positive", "negative"],
        }
    )
    categories = pl.DataFrame({"id": [0, 1, 2], "name": ["a", "b", "c"]})
    dataset = DetDataset(images=images, objects=objects, image_labels=labels, categories=categories)
    records, annotations = export_coco.split_frames(dataset, "val")
    rows = {r["id"]: r for r in records.to_dicts()}
    # image 1: 'a' verified absent; 'b' not exhaustive; 'c' positive with a box: no entry
    assert rows[1]["neg_category_ids"] == [1] and rows[1]["not_exhaustive_category_ids"] == [2]
    # image 2: 'b' verified present without a box -> not exhaustive
    assert rows[2]["neg_category_ids"] == [1] and rows[2]["not_exhaustive_category_ids"] == [2]
    ann = annotations.to_dicts()[0]
    assert ann["bbox"] == [1.0, 1.0, 4.0, 4.0] and ann["area"] == 16.0 and ann["category_id"] == 3
    # the hub rows carry the same lists in unified ids (COCO id - 1)
    from detforge.exports.hub import rows as hub_rows

    hub = {r["image_id"]: r for r in hub_rows(dataset, "val").to_dicts()}
    assert hub[1]["neg_category_ids"] == [0] and hub[1]["not_exhaustive_category_ids"] == [1]
    assert hub[2]["neg_category_ids"] == [0] and hub[2]["not_exhaustive_category_ids"] == [1]


def test_coco_export_writes_the_sources_own_pixel_boxes(shared_data: Path, tmp_path: Path) -> None:
    """Each exported box is the source's box exactly as written (float64, unclipped), so
    pycocotools on the export scores as on the source's file; a box carried from another
    copy is converted from its normalised box."""
    from detforge.schema import stable_id
    from detforge.sources import coco

    real = shared_data / "images/annotations/panopticapi_panoptic_coco_detection_format.json"
    raw = json.loads(real.read_text())
    size = {image["id"]: (image["width"], image["height"]) for image in raw["images"]}
    first, second, third = raw["annotations"][:3]
    first["bbox"] = [12.3456789, 7.654321, 100.1234567, 50.98765]  # finer than float32 keeps
    second["bbox"] = [-4.4, 10.25, 60.0, 30.0]  # partly left of the image
    w, h = size[third["image_id"]]
    third["bbox"] = [w - 20.5, h - 10.25, 40.75, 30.5]  # partly beyond its right and bottom
    path = tmp_path / "instances_val.json"
    path.write_text(json.dumps(raw))
    dataset = coco.read(path, "val", check_files=False)
    objects = dataset.objects.with_columns(label=pl.lit(0, pl.Int32))
    images, annotations = export_coco.split_frames(dataset.replace(objects=objects), "val")
    want = {stable_id("coco", f"val/{a['id']}"): a["bbox"] for a in raw["annotations"]}
    assert annotations.height == len(want)
    assert all(
        box == want[object_id]
        for object_id, box in zip(annotations["id"], annotations["bbox"].to_list(), strict=True)
    )
    carried = objects.head(1).with_columns(origin_image_id=pl.lit(-1, pl.Int64))
    [box] = export_coco.coco_boxes(carried, dataset.images)["bbox"].to_list()
    [size] = (
        dataset.images.filter(pl.col("image_id") == carried["image_id"][0])
        .select("width", "height")
        .rows()
    )
    x1, y1, x2, y2 = carried["bbox"][0].to_list()
    assert box == pytest.approx(
        [x1 * size[0], y1 * size[1], (x2 - x1) * size[0], (y2 - y1) * size[1]], abs=0.006
    )
