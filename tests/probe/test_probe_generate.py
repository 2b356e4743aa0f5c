"""Probe generation: evidence rules, balance, splits, counterfactuals, hashing."""

from __future__ import annotations

import polars as pl
import pytest

from detforge.probes.generate import generate
from detforge.probes.probeset import ProbeError, ProbeSet, read_dataset
from detforge.schema import bbox_columns


def _evidence(dataset):
    """(image, label) pairs that are verified absent, recomputed from the raw tables."""
    boxes = dataset.objects.select("image_id", "label").unique()
    negative = dataset.image_labels.filter(pl.col("status") == "negative").select(
        "image_id", "label"
    )
    exhaustive = (
        dataset.images.select("image_id", "source")
        .join(dataset.label_spaces.select("source", "label"), on="source")
        .select("image_id", "label")
    )
    return (
        pl.concat([negative, exhaustive]).unique().join(boxes, on=["image_id", "label"], how="anti")
    )


def test_absent_only_from_verified_negatives(shapes):
    dataset, _, _ = shapes
    items = generate(dataset, seed=0).items
    verified = _evidence(dataset).with_columns(ok=pl.lit(True))
    absent = pl.concat(
        [
            items.filter((pl.col("task") == "existence") & (pl.col("label") == 0)).select(
                "image_id", label="class_a"
            ),
            items.filter((pl.col("task") == "counting") & (pl.col("label") == 0)).select(
                "image_id", label="class_a"
            ),
            items.filter((pl.col("task") == "foil") & pl.col("verified")).select(
                "image_id", label="foil_class"
            ),
        ]
    )
    assert absent.height > 50
    checked = absent.join(verified, on=["image_id", "label"], how="left")
    assert checked["ok"].fill_null(False).all()
    # tagged images have no label space: their absences come from negative image labels only
    tagged = items.filter(
        (pl.col("source") == "tagged") & (pl.col("task") == "existence") & (pl.col("label") == 0)
    )
    assert tagged.height > 0 and (tagged["evidence"] == "negative_label").all()


def test_without_evidence_nothing_is_absent(shapes):
    dataset, _, _ = shapes
    bare = dataset.replace(
        image_labels=dataset.image_labels.clear(), label_spaces=dataset.label_spaces.clear()
    )
    items = generate(bare, seed=0).items
    assert items.filter(pl.col("task") == "existence").is_empty()  # one label per class: unbalanced
    assert items.filter((pl.col("task") == "counting") & (pl.col("label") == 0)).is_empty()
    assert not items.filter(pl.col("task") == "foil")["verified"].any()


def test_counts_exclude_crowd_and_not_exhaustive(shapes):
    dataset, _, _ = shapes
    items = generate(dataset, seed=0).task("counting").filter(pl.col("label") > 0)
    objects = dataset.objects
    stats = objects.group_by("image_id", "label").agg(
        n=(~pl.col("is_crowd")).sum(), crowd=pl.col("is_crowd").any()
    )
    joined = items.join(stats, left_on=["image_id", "class_a"], right_on=["image_id", "label"])
    assert joined.height == items.height > 20
    assert not joined["crowd"].any()
    assert (joined["label"] == joined["n"].clip(upper_bound=4)).all()
    not_exhaustive = dataset.image_labels.filter(pl.col("status") == "not_exhaustive")
    assert items.join(
        not_exhaustive, left_on=["image_id", "class_a"], right_on=["image_id", "label"]
    ).is_empty()
    assert (dataset.objects["is_crowd"]).any()  # the fixture does have crowd boxes


def test_spatial_from_centres_and_flip_counterfactual(shapes):
    dataset, _, _ = shapes
    items = generate(dataset, seed=0, margin=0.1).task("spatial")
    centres = bbox_columns(dataset.objects).select(
        "object_id", cx=(pl.col("x1") + pl.col("x2")) / 2, cy=(pl.col("y1") + pl.col("y2")) / 2
    )
    rows = items.with_columns(
        a=pl.col("object_ids").list.get(0), b=pl.col("object_ids").list.get(1)
    )
    rows = rows.join(centres, left_on="a", right_on="object_id").join(
        centres, left_on="b", right_on="object_id", suffix="_b"
    )
    assert rows.height == items.height > 10
    dx = (rows["cx_b"] - rows["cx"]).to_numpy()
    dy = (rows["cy_b"] - rows["cy"]).to_numpy()
    label, flip = rows["label"].to_numpy(), rows["flip"].to_numpy()
    expected = [
        (0 if x > 0 else 1) if abs(x) >= abs(y) else (2 if y > 0 else 3)
        for x, y in zip(dx, dy, strict=True)
    ]
    swapped = [{0: 1, 1: 0}.get(e, e) if f else e for e, f in zip(expected, flip, strict=True)]
    assert list(label) == swapped
    assert (abs(dx) > 0.1).sum() + (abs(dy) > 0.1).sum() >= len(dx)
    assert items["flip"].any() and not items.filter(pl.col("flip"))["label"].is_in([2, 3]).any()


def test_balanced_per_class_and_pair(shapes):
    dataset, _, _ = shapes
    items = generate(dataset, seed=0).items
    for task, keys in (
        ("existence", ["class_a"]),
        ("counting", ["class_a"]),
        ("size", ["class_a", "class_b"]),
    ):
        counts = items.filter(pl.col("task") == task).group_by([*keys, "label"]).len()
        spread = counts.group_by(keys).agg(
            lo=pl.col("len").min(), hi=pl.col("len").max(), k=pl.len()
        )
        assert (
            spread.height > 0 and (spread["lo"] == spread["hi"]).all() and (spread["k"] >= 2).all()
        ), task
    sizes = items.filter(pl.col("task") == "size")
    areas = bbox_columns(dataset.objects).select(
        "object_id", area=(pl.col("x2") - pl.col("x1")) * (pl.col("y2") - pl.col("y1"))
    )
    pairs = sizes.with_columns(
        a=pl.col("object_ids").list.get(0), b=pl.col("object_ids").list.get(1)
    )
    pairs = pairs.join(areas, left_on="a", right_on="object_id").join(
        areas, left_on="b", right_on="object_id", suffix="_b"
    )
    ratio = pairs["area"] / pairs["area_b"]
    assert ((pairs["label"] == 1) == (ratio >= 1.5)).all() and (
        (ratio >= 1.5) | (ratio <= 1 / 1.5)
    ).all()


def test_splits_by_image_and_foils_absent(shapes):
    dataset, _, _ = shapes
    items = generate(dataset, seed=0).items
    assert (items.group_by("image_id").agg(pl.col("split").n_unique())["split"] == 1).all()
    assert items["item_id"].is_unique().all()
    assert set(items["split"]) == {"train", "val", "test"}
    foils = items.filter(pl.col("task") == "foil")
    boxes = dataset.objects.select("image_id", foil_class="label").unique()
    assert foils.join(boxes, on=["image_id", "foil_class"]).is_empty()
    parents = dataset.categories.select(pl.col("id").cast(pl.Int32), "parents").explode("parents")
    shared = (
        foils.join(parents, left_on="class_b", right_on="id")
        .join(parents, left_on="foil_class", right_on="id", suffix="_f")
        .filter(pl.col("parents") == pl.col("parents_f"))
    )
    assert shared["item_id"].n_unique() > foils.height // 2  # siblings are preferred
    assert (foils["caption"] != foils["foil"]).all()
    assert ((foils["label"] == 1) == (foils["text"] == foils["caption"])).all()


def test_deterministic_hashed_and_round_trip(shapes, tmp_path):
    dataset, out, _ = shapes
    a, b = generate(dataset, seed=3), generate(read_dataset(out), seed=3)
    assert a.content_hash == b.content_hash and a.items.equals(b.items)
    assert generate(dataset, seed=4).content_hash != a.content_hash
    assert read_dataset(out / "tables").images.height == dataset.images.height
    a.write(tmp_path / "p")
    back = ProbeSet.read(tmp_path / "p")
    assert back.items.equals(a.items) and back.categories_hash == a.categories_hash
    assert "configs:" in (tmp_path / "p" / "README.md").read_text()
    other = dataset.categories.with_columns(name=pl.col("name") + "x")
    with pytest.raises(ProbeError, match="another taxonomy"):
        back.check_taxonomy(other, "elsewhere")
    other.write_parquet(tmp_path / "p" / "categories.parquet")
    with pytest.raises(ProbeError, match="categories_hash"):
        ProbeSet.read(tmp_path / "p")


def test_unknown_task_is_an_error(shapes):
    with pytest.raises(ProbeError, match="unknown task"):
        generate(shapes[0], tasks=["colour"])
