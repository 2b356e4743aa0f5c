"""Recipes: the shipped one loads, overrides are YAML-typed, mistakes are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from detforge.builders.recipe import Recipe, RecipeError, available, load_recipe


def test_shipped_bigdet_recipe() -> None:
    assert "bigdet" in available()
    recipe = load_recipe("bigdet")
    assert isinstance(recipe, Recipe)
    assert [s.name for s in recipe.sources] == ["objects365", "openimages", "lvis"]
    assert recipe.taxonomy == "bigdet-v1"
    assert recipe.source("lvis").images_root == "coco"
    assert "coco_val2017" in recipe.decontaminate.holdouts


def test_overrides_are_typed_and_reach_nested_keys() -> None:
    recipe = load_recipe(
        "bigdet",
        [
            "dedup.phash_distance=4",
            "dedup.box_iou=0.5",
            "exports.hub.embed_images=false",
            "sources.lvis.root=/data/lvis",
            "decontaminate.holdouts.objects365_val=o365/val.json",
            "decontaminate.holdouts.coco_val2017=null",
            "split.fractions={train: 0.8, val: 0.2}",
        ],
    )
    assert recipe.dedup.phash_distance == 4 and isinstance(recipe.dedup.phash_distance, int)
    assert recipe.dedup.box_iou == 0.5
    assert recipe.exports.hub.embed_images is False
    assert recipe.source("lvis").root == "/data/lvis"
    assert list(recipe.decontaminate.holdouts) == ["objects365_val"]
    assert recipe.decontaminate.holdouts["objects365_val"].annotations == "o365/val.json"
    assert recipe.split.fractions == {"train": 0.8, "val": 0.2}
    assert load_recipe("bigdet").dedup.phash_distance == 10  # the shipped file is untouched


def test_shipped_recipe_and_library_share_the_dedup_defaults() -> None:
    """One default for the kept-copy priority, the radius and the confirmation threshold:
    the shipped recipe, a recipe that omits them and DedupConfig() agree."""
    from detforge.builders.dedup import DedupConfig
    from detforge.builders.dedup.config import DEFAULT_PRIORITY
    from detforge.builders.pipeline import dedup_config

    assert DEFAULT_PRIORITY == ("objects365", "lvis", "openimages", "coco")
    assert dedup_config(load_recipe("bigdet")) == DedupConfig()
    bare = Recipe(name="x", taxonomy="bigdet-v1", sources=())
    assert dedup_config(bare) == DedupConfig()
    assert (DedupConfig().phash_distance, DedupConfig().dhash_distance) == (10, 26)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("dedup.phash_dist=4", "unknown key 'dedup.phash_dist'"),
        ("exports.hub.shards=3", "unknown key 'exports.hub.shards'"),
        ("colour=blue", "unknown key 'colour'"),
        ("dedup.phash_distance=many", "dedup.phash_distance = 'many': expected int"),
        ("dedup.exact=3", "dedup.exact = 3: expected bool"),
        ("sources.pascal.root=/x", "no entry named 'pascal'"),
        ("engine=spark", "engine 'spark' not one of process, ray"),
        ("split.fractions={train: 0.5}", "sum to 1"),
        ("nonsense", "expected KEY=VALUE"),
    ],
)
def test_bad_override_is_named(override: str, message: str) -> None:
    with pytest.raises(RecipeError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_recipe("bigdet", [override])


def test_user_recipe_file(tmp_path: Path) -> None:
    file = tmp_path / "mine.yaml"
    file.write_text(
        "name: mine\ntaxonomy: bigdet-v1\nsources:\n  - {name: coco, format: coco}\n"
        "split: {mode: hash, seed: 3}\n"
    )
    recipe = load_recipe(file)
    assert recipe.name == "mine" and recipe.sources[0].root is None
    assert recipe.split.mode == "hash" and recipe.split.seed == 3
    # `split.by` is gone (copies do not exist yet when the split runs): a clear error
    file.write_text(file.read_text().replace("seed: 3", "by: dup_group"))
    with pytest.raises(RecipeError, match=r"unknown key 'split\.by' \(known: fractions, mode"):
        load_recipe(file)
    file.write_text("name: mine\ntaxonomy: bigdet-v1\nsources:\n  - {name: coco, fromat: coco}\n")
    with pytest.raises(RecipeError, match=r"unknown key 'sources\[0\]\.fromat'"):
        load_recipe(file)
    with pytest.raises(RecipeError, match="unknown recipe 'nope'"):
        load_recipe("nope")
