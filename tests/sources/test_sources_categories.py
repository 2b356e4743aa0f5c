"""The real category files load through the readers with exact counts."""

from __future__ import annotations

import polars as pl

from detforge import schema
from detforge.sources import READERS, coco, lvis, objects365, openimages
from detforge.sources.openimages_classes import read_hierarchy


def test_registry_has_every_source_with_read_and_categories():
    assert set(READERS) == {"objects365", "openimages", "lvis", "coco"}
    for reader in READERS.values():
        assert callable(reader.read) and callable(reader.read_categories)


def test_objects365_v2_categories_raw_names(shared_data):
    cats = objects365.read_categories(shared_data / "taxonomy" / "objects365_v2_categories.json")
    assert cats.schema == schema.SOURCE_CATEGORIES
    assert cats.height == 365
    assert cats["source_label"].to_list() == [str(i) for i in range(1, 366)]
    names = dict(zip(cats["source_label"], cats["name"], strict=True))
    assert names["6"] == "Car"
    assert names["365"] == "Table Tennis "  # trailing space kept verbatim
    assert "Moniter/TV" in cats["name"].to_list()
    assert (cats["source"] == "objects365").all()


def test_openimages_classes_and_hierarchy_dag(shared_data):
    tax = shared_data / "taxonomy"
    cats = openimages.read_categories(
        tax / "class-descriptions-boxable.csv", tax / "bbox_labels_600_hierarchy.json"
    )
    assert cats.schema == schema.SOURCE_CATEGORIES
    assert cats.height == 601
    assert "/m/0bl9f" not in cats["source_label"].to_list()  # Entity is the root, not a class
    assert cats.filter(pl.col("parents").list.len() > 1).height == 45
    oven = cats.filter(pl.col("name") == "Oven").row(0, named=True)
    mid = dict(zip(cats["name"], cats["source_label"], strict=True))
    assert set(oven["parents"]) == {mid["Kitchen appliance"], mid["Home appliance"]}
    cookie = cats.filter(pl.col("name") == "Cookie")["parents"][0].to_list()
    assert {mid["Snack"], mid["Baked goods"], mid["Dessert"]} <= set(cookie)
    # Part edges are part_of, not is_a; 38 unique ones in the real file
    assert cats["part_of"].list.len().sum() == 38
    # children of the root have no parent
    assert cats.filter(pl.col("name") == "Person")["parents"][0].to_list() == []


def test_openimages_hierarchy_edges(shared_data):
    root, edges = read_hierarchy(shared_data / "taxonomy" / "bbox_labels_600_hierarchy.json")
    assert root == "/m/0bl9f"  # Entity: a container, not a class
    below = edges.filter(pl.col("parent") != root)
    counts = dict(below.group_by("relation").len().iter_rows())
    assert counts == {"is_a": 557, "part_of": 38}
    assert not edges.is_duplicated().any()


def test_openimages_classes_without_hierarchy(tmp_path, shared_data):
    csv = tmp_path / "class-descriptions-boxable.csv"
    csv.write_bytes((shared_data / "taxonomy" / "class-descriptions-boxable.csv").read_bytes())
    cats = openimages.read_categories(csv)
    assert cats.height == 601
    assert cats["parents"].is_null().all()


def test_lvis_categories(shared_data):
    cats = lvis.read_categories(shared_data / "taxonomy" / "lvis_v1_categories.json")
    assert cats.height == 1203
    assert cats["synset"].n_unique() == 1203
    assert cats["synset"].null_count() == 0
    freq = dict(cats.group_by("frequency").len().iter_rows())
    assert freq == {"r": 337, "c": 461, "f": 405}
    car = cats.filter(pl.col("name") == "car_(automobile)").row(0, named=True)
    assert car["synset"] == "car.n.01" and "auto_(automobile)" in car["synonyms"]
    assert car["definition"]


def test_coco_categories(shared_data):
    cats = coco.read_categories(shared_data / "taxonomy" / "coco_categories.json")
    assert cats.height == 80
    assert cats["source_label"].cast(pl.Int64).max() == 90
