"""Grouping rules on hashed frames (no files): no chains, the kept copy's order, the
gradient hash's veto, box merge across copies of one source, decontamination through a
merged copy, and a build that stops on invalid final tables."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from detforge import schema
from detforge.builders.decontaminate import decontaminate
from detforge.builders.dedup import DedupConfig, dedup
from detforge.builders.dedup.boxes import merge_boxes
from detforge.builders.dedup.images import plan_groups
from detforge.dataset import DatasetError, DetDataset

DHASH = [0x0F0F0F0F0F0F0F0F, 0x00FF00FF00FF00FF]


def bits(*positions: int) -> int:
    return sum(1 << p for p in positions)


def hashed(rows: list[dict]) -> pl.DataFrame:
    """A hashed images frame: each row needs ``name`` and ``phash``; the rest defaults."""
    out = []
    for k, row in enumerate(rows):
        full = {
            "image_id": schema.stable_id(row.get("source", "objects365"), row["name"]),
            "source": "objects365",
            "source_image_id": row["name"],
            "file_name": f"{row['name']}.jpg",
            "split": "train",
            "width": 640,
            "height": 480,
            "sha256": f"sha-{k}",
            "dhash": DHASH,
            "file_size": 1000,
            **{key: v for key, v in row.items() if key != "name"},
        }
        out.append(full)
    frame = pl.DataFrame(out).with_columns(
        pl.col("phash").cast(pl.UInt64),
        pl.col("dhash").cast(pl.Array(pl.UInt64, 2)),
        file_width=pl.col("width"),
        file_height=pl.col("height"),
        hash_error=pl.lit(None, pl.String),
    )
    return frame


def groups_of(frame: pl.DataFrame, config: DedupConfig) -> dict[str, list[str]]:
    plan, _ = plan_groups(frame, config, workers=1)
    names = dict(frame.select("image_id", "source_image_id").rows())
    out: dict[str, list[str]] = {}
    for group, image in plan.select("dup_group", "image_id").rows():
        out.setdefault(names[group], []).append(names[image])
    return {k: sorted(v) for k, v in out.items()}


def test_no_chains_a_copy_joins_only_within_radius_of_the_kept_copy() -> None:
    """a~b (6 bits), b~c (6 bits), c~d (6 bits): a to c is 12 bits. Components would make
    one group and carry c's boxes onto a at distance 12; groups here are {a, b}, {c, d}."""
    a, b = 0, bits(0, 1, 2, 3, 4, 5)
    c = b ^ bits(10, 11, 12, 13, 14, 15)
    d = c ^ bits(20, 21, 22, 23, 24, 25)
    frame = hashed(
        [
            {"name": "a", "phash": a, "file_size": 2000},  # first in kept-copy order
            {"name": "b", "phash": b, "width": 320, "height": 240},
            {"name": "c", "phash": c},
            {"name": "d", "phash": d, "width": 320, "height": 240},
        ]
    )
    assert groups_of(frame, DedupConfig(phash_distance=6)) == {"a": ["a", "b"], "c": ["c", "d"]}
    # a radius that reaches c from a takes c into a's group, and d (6 from c) forms its own
    assert groups_of(frame, DedupConfig(phash_distance=12)) == {"a": ["a", "b", "c"]}


def test_kept_copy_priority_then_pixels_then_file_size_then_id() -> None:
    near = bits(3)
    frame = hashed(
        [
            # same source: the larger picture is kept, whatever the ids
            {"name": "q70_small", "phash": 0, "width": 320, "height": 240},
            {"name": "q90_large", "phash": near},
            # same pixels: the larger file (the better encode) is kept
            {"name": "s1", "phash": bits(40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51)},
            {
                "name": "s2",
                "phash": bits(40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52),
                "file_size": 5000,
            },
            # source priority first: a smaller LVIS copy beats a larger OpenImages one
            {"name": "oi", "source": "openimages", "phash": bits(*range(20, 36)), "width": 1024},
            {"name": "lv", "source": "lvis", "phash": bits(*range(20, 36), 63), "width": 320},
        ]
    )
    groups = groups_of(frame, DedupConfig(phash_distance=4))
    assert groups == {
        "q90_large": ["q70_small", "q90_large"],
        "s2": ["s1", "s2"],
        "lv": ["lv", "oi"],
    }


def test_gradient_hash_vetoes_a_phash_match() -> None:
    frame = hashed(
        [
            {"name": "x", "phash": 0, "file_size": 2000},
            {"name": "y", "phash": bits(1, 2), "dhash": [0, 0]},  # 64 gradient bits apart
            {"name": "z", "phash": bits(5), "dhash": [DHASH[0] ^ bits(1, 2, 3), DHASH[1]]},
        ]
    )
    plan, stats = plan_groups(frame, DedupConfig(phash_distance=4, dhash_distance=26), workers=1)
    names = dict(frame.select("image_id", "source_image_id").rows())
    assert sorted(names[i] for i in plan["image_id"]) == ["x", "z"]
    assert stats["candidates"] == 3 and stats["rejected"] == 2  # x~y and y~z vetoed
    row = plan.filter(pl.col("image_id") == frame["image_id"][2]).row(0, named=True)
    assert row["distance"] == 1 and row["dhash_distance"] == 3


def _box(image_id: int, key: str, label: int, bbox: list[float], origin: int | None) -> dict:
    return {
        "image_id": image_id,
        "object_id": schema.stable_id("objects365", key),
        "source": "objects365",
        "source_label": str(label),
        "label": label,
        "bbox": bbox,
        "origin_image_id": origin,
    }


def test_boxes_of_two_copies_of_one_source_merge_but_not_boxes_of_one_copy() -> None:
    kept, copy = 1, 2
    objects = schema.conform(
        pl.DataFrame(
            [
                _box(kept, "k/0", 0, [0.1, 0.1, 0.5, 0.5], None),
                _box(kept, "k/1", 0, [0.12, 0.1, 0.52, 0.5], None),  # same object? one copy
                _box(kept, "c/0", 0, [0.11, 0.1, 0.5, 0.51], copy),  # carried: merges into k/0
                _box(kept, "c/1", 1, [0.6, 0.6, 0.9, 0.9], copy),  # other label: stays
            ]
        ),
        "objects",
    )
    out, merged = merge_boxes(objects, DedupConfig())
    assert merged == 1
    ids = {schema.stable_id("objects365", k): k for k in ("k/0", "k/1", "c/0", "c/1")}
    assert sorted(ids[i] for i in out["object_id"]) == ["c/1", "k/0", "k/1"]
    keeper = out.filter(pl.col("object_id") == schema.stable_id("objects365", "k/0"))
    assert keeper["merged_object_ids"].to_list() == [[schema.stable_id("objects365", "c/0")]]


def _dataset(frame: pl.DataFrame) -> DetDataset:
    images = frame.drop("file_width", "file_height", "file_size", "hash_error")
    objects = pl.DataFrame(
        [
            {
                "image_id": image_id,
                "object_id": image_id + 1,
                "source": source,
                "source_label": "0",
                "label": 0,
                "bbox": [0.1, 0.1, 0.5, 0.5],
            }
            for image_id, source in images.select("image_id", "source").rows()
        ]
    )
    categories = pl.DataFrame({"id": [0], "name": ["cat"]})
    roots = {s: "/nonexistent" for s in images["source"].unique()}
    return DetDataset(images=images, objects=objects, categories=categories, roots=roots)


def test_decontamination_sees_the_merged_copy() -> None:
    """Only the merged copy a2 is within the radius of the eval image e (a is 12 bits from
    e): the group {a, a2} leaves train, and the report names a2 as the member that matched."""
    a2 = bits(0, 1, 2, 3, 4, 5)
    e = a2 ^ bits(30, 31, 32, 33, 34, 35)
    frame = hashed(
        [
            {"name": "a", "phash": 0},
            {"name": "a2", "source": "openimages", "phash": a2},
            {"name": "e", "phash": e, "split": "val"},
            {"name": "other", "phash": bits(*range(20, 60))},
        ]
    )
    config = DedupConfig(phash_distance=10)
    deduped, groups = dedup(_dataset(frame), config, workers=1)
    ids = dict(frame.select("source_image_id", "image_id").rows())
    assert ids["a2"] not in deduped.images["image_id"].to_list()  # merged into a
    clean, report = decontaminate(deduped, {}, config, groups=groups, workers=1)
    assert ids["a"] not in clean.images["image_id"].to_list()
    assert ids["a"] not in clean.objects["image_id"].to_list()
    row = report.row(0, named=True)
    assert report.height == 1 and row["image_id"] == ids["a"]
    assert row["via_image_id"] == ids["a2"] and row["matched_image_id"] == ids["e"]
    assert row["distance"] == 6 and "its duplicate openimages/a2" in row["reason"]
    # without the dedup report the kept copy alone is checked and stays: the leak this closes
    leaky, _ = decontaminate(deduped, {}, config, workers=1)
    assert ids["a"] in leaky.images["image_id"].to_list()


def test_build_stops_on_invalid_final_tables(tiny_root: Path, tmp_path: Path, monkeypatch) -> None:
    from detforge.builders import pipeline
    from detforge.builders.recipe import load_recipe

    real = pipeline.decontaminate_stage

    def broken(*args, **kwargs):
        dataset, reports = real(*args, **kwargs)
        objects = dataset.objects
        twice = pl.concat([objects, objects.head(2)])  # duplicate object ids
        return dataset.replace(objects=twice), reports

    monkeypatch.setattr(pipeline, "decontaminate_stage", broken)
    out = tmp_path / "out"
    with pytest.raises(DatasetError, match="objects: duplicate object_id: 4 row"):
        pipeline.build(load_recipe(tiny_root / "tiny.yaml"), out, root=tiny_root, workers=1)
    assert not any((out / name).exists() for name in ("coco", "hub", "tables", "report"))
