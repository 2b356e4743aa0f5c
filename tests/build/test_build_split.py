"""Hash splits: a function of the key and seed only, close to the asked fractions."""

from __future__ import annotations

import polars as pl
import pytest

from detforge.builders.recipe import SplitSpec
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


def test_split_by_dup_group_keeps_copies_together() -> None:
    images = pl.DataFrame(
        {
            "image_id": list(range(1, 401)),
            "source": "s",
            "source_image_id": "x",
            "file_name": "f",
            "width": 1,
            "height": 1,
            "split": "train",
            "dup_group": [1 + (i // 4) * 4 for i in range(400)],
        }
    )
    dataset = DetDataset(images=images)
    spec = SplitSpec(mode="hash", by="dup_group", fractions={"train": 0.5, "val": 0.5})
    out = split(dataset, spec).images
    assert out.group_by("dup_group").agg(pl.col("split").n_unique())["split"].max() == 1
    assert set(out["split"]) == {"train", "val"}
    assert split(dataset, SplitSpec()).images["split"].to_list() == ["train"] * 400
