"""Dedup and decontamination find exactly the built-in sample's planted cases (planted.json)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from detforge import schema
from detforge.builders.decontaminate import decontaminate
from detforge.builders.dedup import dedup


@pytest.fixture(scope="module")
def built(sample_root: Path):
    from detforge.builders import pipeline
    from detforge.builders.recipe import load_recipe

    recipe = load_recipe("bigdet")
    read = pipeline.read_stage(recipe, pipeline.resolve_roots(recipe, sample_root))
    mapped, _ = pipeline.map_stage(read, recipe.taxonomy)
    config = pipeline.dedup_config(recipe)
    deduped, report = dedup(mapped, config, workers=1)
    holdouts = pipeline.read_holdouts(pipeline.resolve_holdouts(recipe, sample_root))
    clean, removed = decontaminate(deduped, holdouts, config, workers=1)
    cases = json.loads((sample_root / "planted.json").read_text())["cases"]
    return mapped, deduped, report, clean, removed, {c["case"]: c for c in cases}, config


def _ids(case: dict) -> list[int]:
    return [schema.stable_id(i["source"], i["source_image_id"]) for i in case["images"]]


def test_planted_duplicates_grouped_and_nothing_else(built) -> None:
    mapped, deduped, report, _, _, cases, config = built
    same, exact = _ids(cases["same_photo"]), _ids(cases["exact_duplicate"])
    crop = _ids(cases["cropped_copy"])
    expected = {frozenset(same), frozenset(exact), frozenset(crop)}
    groups = report.group_by("dup_group").agg("image_id")["image_id"].to_list()
    assert {frozenset(g) for g in groups} == expected
    actions = dict(report.select("image_id", "action").rows())
    assert actions[same[1]] == "merged" and actions[exact[0]] == "merged"
    assert report.filter(pl.col("image_id") == exact[0])["exact"].to_list() == [True]
    # the other source's boxes of the same objects were carried, then merged into the kept boxes
    kept_boxes = deduped.objects.filter(pl.col("image_id") == same[0])
    drawn = mapped.objects.filter(pl.col("image_id") == same[0])
    assert kept_boxes.height == drawn.height
    assert kept_boxes["merged_object_ids"].list.len().sum() == (
        mapped.objects.filter(pl.col("image_id") == same[1]).height
    )


def test_planted_cropped_copy_never_carries_boxes(built) -> None:
    _, deduped, report, _, _, cases, _ = built
    kept, crop = _ids(cases["cropped_copy"])
    carried = (pl.col("origin_image_id") == crop) & (pl.col("image_id") != crop)
    assert deduped.objects.filter(carried).height == 0
    rows = report.filter(pl.col("image_id") == crop)
    assert rows["action"].to_list() == ["removed_cropped"]
    assert "different framing" in rows["reason"][0]
    assert crop not in deduped.images["image_id"].to_list()
    assert kept in deduped.images["image_id"].to_list()


def test_planted_look_alike_not_merged(built) -> None:
    _, deduped, report, _, _, cases, _ = built
    ids = _ids(cases["look_alike"])
    assert set(ids) <= set(deduped.images["image_id"].to_list())
    assert not set(ids) & set(report["image_id"].to_list())


def test_planted_contamination_removed(built) -> None:
    _, deduped, _, clean, removed, cases, _ = built
    images = cases["contaminated"]["images"]
    train = [
        schema.stable_id(i["source"], i["source_image_id"]) for i in images if i["split"] == "train"
    ]
    evals = {i["source_image_id"] for i in images if i["split"] != "train"}
    assert removed["image_id"].to_list() == train
    assert set(removed["matched_source_image_id"].to_list()) <= evals
    assert set(clean.images["image_id"]) == set(deduped.images["image_id"]) - set(train)
    kept_eval = clean.images.filter(pl.col("split") != "train")["source_image_id"].to_list()
    assert evals & set(kept_eval)
