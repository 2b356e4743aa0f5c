"""DetDataset: parquet round-trip, atomic writes and the invariants validate() checks."""

from __future__ import annotations

import polars as pl
import pytest
import xxhash

from detforge import schema
from detforge.dataset import DatasetError, DetDataset


def _dataset() -> DetDataset:
    images = pl.DataFrame(
        {
            "image_id": [schema.stable_id("lvis", "1"), schema.stable_id("lvis", "2")],
            "source": ["lvis", "lvis"],
            "source_image_id": ["1", "2"],
            "file_name": ["train2017/1.jpg", "train2017/2.jpg"],
            "width": [640, 320],
            "height": [480, 240],
            "split": ["train", "val"],
        }
    )
    objects = pl.DataFrame(
        {
            "image_id": images["image_id"].to_list(),
            "object_id": [11, 12],
            "source": ["lvis", "lvis"],
            "source_label": ["3", "3"],
            "label": [0, 0],
            "bbox": [[0.1, 0.1, 0.5, 0.5], [0.0, 0.2, 1.0, 0.9]],
        }
    ).with_columns(pl.col("bbox").cast(schema.BBOX))
    categories = pl.DataFrame({"id": [0], "name": ["car"]})
    return DetDataset(images=images, objects=objects, categories=categories, roots={"lvis": "/x"})


def test_tables_are_conformed_to_the_schema():
    dataset = _dataset()
    for table, expected in schema.TABLES.items():
        assert getattr(dataset, table).schema == expected, table


def test_write_read_round_trip(tmp_path):
    dataset = _dataset().replace(meta={"taxonomy": "bigdet-v1"})
    dataset.write(tmp_path / "ds")
    back = DetDataset.read(tmp_path / "ds")
    for table in schema.TABLES:
        assert getattr(back, table).equals(getattr(dataset, table)), table
    assert back.roots == {"lvis": "/x"}
    assert back.meta == {"taxonomy": "bigdet-v1"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary left behind"


def test_rewrite_replaces_atomically_and_read_rejects_non_datasets(tmp_path):
    _dataset().write(tmp_path / "ds")
    smaller = _dataset()
    smaller = smaller.replace(objects=smaller.objects.head(1))
    smaller.write(tmp_path / "ds")
    assert DetDataset.read(tmp_path / "ds").objects.height == 1
    with pytest.raises(DatasetError, match="not a detforge dataset"):
        DetDataset.read(tmp_path)


def test_valid_dataset_has_no_violations():
    assert _dataset().validate() == []


def test_validate_reports_every_violation_not_just_the_first():
    dataset = _dataset()
    images = pl.concat([dataset.images, dataset.images.head(1)])
    bad_boxes = [[0.5, 0.1, 0.4, 0.5], [0.0, 0.2, 1.2, 0.9]]
    objects = dataset.objects.with_columns(
        pl.Series("bbox", bad_boxes, dtype=schema.BBOX),
        pl.Series("label", [0, 7], dtype=pl.Int32),
    )
    orphan = objects.head(1).with_columns(
        image_id=pl.lit(123, pl.Int64), object_id=pl.lit(99, pl.Int64)
    )
    problems = dataset.replace(images=images, objects=pl.concat([objects, orphan])).validate()
    text = "\n".join(problems)
    assert "duplicate image_id" in text
    assert "bbox not 0 <= x1 < x2 <= 1" in text and "3 row(s)" in text
    assert "image_id not in images" in text
    assert "label not in categories" in text
    assert len(problems) == 4


def test_validate_catches_broken_dedup_results():
    """What a bug in carry or merge could ship: a group pointing at a removed image, and a
    merged box that was not removed."""
    dataset = _dataset()
    images = dataset.images.with_columns(dup_group=pl.Series([777, None], dtype=pl.Int64))
    objects = dataset.objects.with_columns(
        merged_object_ids=pl.Series([[12], None], dtype=pl.List(pl.Int64))
    )
    problems = dataset.replace(images=images, objects=objects).validate()
    assert problems == [
        f"images: dup_group not an image_id: 1 row(s) (e.g. image_id={images['image_id'][0]})",
        "objects: merged_object_ids names a box still present: 1 row(s) (e.g. merged_object_ids=12)",
    ]
    kept = images.with_columns(dup_group=pl.col("image_id"))
    assert dataset.replace(images=kept).validate() == []


def test_stable_ids_are_stable_and_source_scoped():
    assert schema.stable_id("lvis", "1") == schema.stable_id("lvis", "1")
    assert schema.stable_id("lvis", "1") != schema.stable_id("coco", "1")
    ids = schema.stable_ids("lvis", pl.Series([1, 2]))
    assert ids.dtype == pl.Int64
    assert ids.to_list() == [schema.stable_id("lvis", "1"), schema.stable_id("lvis", "2")]
    assert (ids >= 0).all()


def test_stable_ids_are_the_reference_xxhash64_of_the_key_seeded_by_the_source():
    keys = ["1", "train/123456", "", "0001eeaf4aed83f9", "ünïcödé/画像", "x" * 300]
    seed = xxhash.xxh64_intdigest(b"objects365")
    expected = [
        xxhash.xxh64_intdigest(key.encode(), seed=seed) & 0x7FFF_FFFF_FFFF_FFFF for key in keys
    ]
    assert schema.stable_ids("objects365", pl.Series(keys)).to_list() == expected


def test_conform_rejects_unknown_columns():
    with pytest.raises(ValueError, match="unknown column"):
        schema.conform(pl.DataFrame({"nope": [1]}), "images")


def test_concat_keeps_a_sources_class_list_once():
    classes = pl.DataFrame(
        {"source": ["lvis", "lvis"], "source_label": ["1", "2"], "name": ["a", "b"]}
    )
    train = _dataset().replace(source_categories=classes)
    both = DetDataset.concat([train, train.replace(images=train.images.head(0))])
    assert both.source_categories.equals(train.source_categories)
    assert both.images.height == 2
