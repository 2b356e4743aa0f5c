"""Hash splits: a function of the key and seed only, close to the asked fractions; and a hash
re-split of the sample never leaves a copy of an evaluation image in training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from detforge.builders.dedup import hash_images
from detforge.builders.dedup.hashing import image_paths
from detforge.builders.pipeline import build
from detforge.builders.recipe import RecipeError, SplitSpec, load_recipe
from detforge.builders.split import hash_splits, split
from detforge.dataset import DetDataset


def test_hash_split_depends_only_on_key_and_seed() -> None:
    keys = pl.Series("image_id", range(0, 200_000, 7), dtype=pl.Int64)
    fractions = {"train": 0.8, "val": 0.15, "test": 0.05}
    first = hash_splits(keys, fractions, seed=0)
    shares = first.value_counts(normalize=True).sort("split")
    assert dict(zip(shares["split"], shares["proportion"], strict=True)) == {
        "test": pytest.approx(0.05, abs=0.01),
        "train": pytest.approx(0.8, abs=0.01),
        "val": pytest.approx(0.15, abs=0.01),
    }
    # a subset of the keys gets the same splits (adding images never moves others)
    assert (
        hash_splits(keys.slice(100, 500), fractions, 0).to_list() == first.slice(100, 500).to_list()
    )
    assert hash_splits(keys, fractions, seed=1).to_list() != first.to_list()


def test_split_modes_on_a_dataset() -> None:
    images = pl.DataFrame(
        {
            "image_id": list(range(1, 401)),
            "source": "s",
            "source_image_id": "x",
            "file_name": "f",
            "width": 1,
            "height": 1,
            "split": "train",
        }
    )
    dataset = DetDataset(images=images)
    spec = SplitSpec(mode="hash", fractions={"train": 0.5, "val": 0.5})
    out = split(dataset, spec).images
    assert out["split"].to_list() == hash_splits(images["image_id"], spec.fractions, 0).to_list()
    assert set(out["split"]) == {"train", "val"}
    assert split(dataset, SplitSpec()).images["split"].to_list() == ["train"] * 400


def test_split_by_is_no_longer_a_recipe_key() -> None:
    with pytest.raises(RecipeError, match=r"unknown key 'split\.by'"):
        load_recipe("bigdet", ["split.by=image_id"])


def _hashes(images: pl.DataFrame, roots: dict[str, str]) -> pl.DataFrame:
    return hash_images(image_paths(images, roots).to_list(), workers=1)


def test_hash_resplit_of_the_sample_keeps_eval_copies_out_of_train(
    sample_root: Path, tmp_path: Path
) -> None:
    """LVIS val annotates COCO val2017 photos: a hash re-split moves some of them (and the
    other sources' val images) into train, where decontamination must still catch them."""
    recipe = load_recipe(
        "bigdet",
        [
            "split.mode=hash",
            "split.fractions={train: 0.5, val: 0.5}",
            "exports.hub.enabled=false",
            "exports.coco=false",
            "exports.tables=false",
        ],
    )
    result = build(recipe, tmp_path, root=sample_root, workers=1)
    images = result.dataset.images
    train = _hashes(images.filter(pl.col("split") == "train"), result.dataset.roots)
    val = _hashes(images.filter(pl.col("split") != "train"), result.dataset.roots)
    holdout = json.loads((sample_root / "coco/annotations/instances_val2017.json").read_text())
    held = hash_images(
        [str(sample_root / "coco/val2017" / i["file_name"]) for i in holdout["images"]],
        workers=1,
    )
    evals = pl.concat([val, held])
    assert train.height > 0 and val.height > 0 and held.height > 0
    assert train["error"].null_count() == train.height  # every image was checkable
    assert evals["error"].null_count() == evals.height
    # no exact copy, and (brute force, all pairs) no near copy within the recipe's radius
    assert set(train["sha256"]) & set(evals["sha256"]) == set()
    a = train["phash"].to_numpy()[:, None]
    b = evals["phash"].to_numpy()[None, :]
    distance = np.bitwise_count(np.bitwise_xor(a, b))
    assert int(distance.min()) > recipe.dedup.phash_distance
    # the re-split did move holdout photos (LVIS val) into train, and they were removed
    report = result.reports["contamination"]
    assert report.filter(pl.col("matched_set") == "coco_val2017").height > 0
