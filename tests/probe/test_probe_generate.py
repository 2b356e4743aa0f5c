"""Probe generation: evidence rules, balance, splits, counterfactuals, hashing."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from detforge.cli import app
from detforge.probes import shortcuts
from detforge.probes.generate import generate
from detforge.probes.probeset import ProbeError, ProbeSet, read_dataset
from detforge.probes.tasks import registry
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


@pytest.fixture(scope="module")
def generated(shapes):
    return generate(shapes[0], seed=0)


def test_absent_only_from_verified_negatives(shapes, generated):
    dataset, _, _ = shapes
    items = generated.items
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
    assert items.filter(pl.col("task") == "foil").is_empty()  # no false statement is verified


def test_counts_exclude_crowd_and_not_exhaustive(shapes, generated):
    dataset, _, _ = shapes
    items = generated.task("counting").filter(pl.col("label") > 0)
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


def _centres(dataset, items):
    centres = bbox_columns(dataset.objects).select(
        "object_id", cx=(pl.col("x1") + pl.col("x2")) / 2, cy=(pl.col("y1") + pl.col("y2")) / 2
    )
    rows = items.with_columns(
        a=pl.col("object_ids").list.get(0), b=pl.col("object_ids").list.get(1)
    )
    return rows.join(centres, left_on="a", right_on="object_id").join(
        centres, left_on="b", right_on="object_id", suffix="_b"
    )


def test_left_right_and_above_below_from_centres(shapes, generated):
    dataset, _, _ = shapes
    lr = _centres(dataset, generated.task("left_right"))
    assert lr.height == generated.task("left_right").height > 10
    dx, dy = (lr["cx_b"] - lr["cx"]).to_numpy(), (lr["cy_b"] - lr["cy"]).to_numpy()
    assert (abs(dx) >= abs(dy)).all() and (abs(dx) > 0.1).all()
    # label 0 = A left of B (B's centre to the right); the mirrored twin swaps it
    expected = np.where(dx > 0, 0, 1)
    flip = lr["flip"].to_numpy()
    assert (lr["label"].to_numpy() == np.where(flip, 1 - expected, expected)).all()
    twins = lr.group_by("image_id", "class_a", "class_b").agg(
        pl.col("flip").sort(), pl.col("label").sum(), pl.col("split").n_unique()
    )
    assert (twins["flip"].list.len() == 2).all() and (twins["label"] == 1).all()
    assert (twins["split"] == 1).all()
    ab = _centres(dataset, generated.task("above_below"))
    assert ab.height > 0 and not ab["flip"].any()
    dx, dy = (ab["cx_b"] - ab["cx"]).to_numpy(), (ab["cy_b"] - ab["cy"]).to_numpy()
    assert (abs(dy) > abs(dx)).all() and (ab["label"].to_numpy() == np.where(dy > 0, 0, 1)).all()
    assert (generated.task("above_below")["caption"].str.contains(" (above|below) the ")).all()


def test_balanced_per_key_source_and_split(generated):
    for name, task in registry().items():
        keys = [*task.balance_key, "source", "split"]
        items = generated.task(name)
        if name == "foil":  # balanced per pair of stated classes
            items = items.with_columns(
                lo=pl.min_horizontal("class_b", "foil_class"),
                hi=pl.max_horizontal("class_b", "foil_class"),
            )
        counts = items.group_by([*keys, "label"]).len()
        spread = counts.group_by(keys).agg(
            least=pl.col("len").min(), most=pl.col("len").max(), k=pl.len()
        )
        assert spread.height > 0, name
        assert (spread["least"] == spread["most"]).all() and (spread["k"] >= 2).all(), name


def test_size_labels_follow_the_area_ratio(shapes, generated):
    dataset, _, _ = shapes
    areas = bbox_columns(dataset.objects).select(
        "object_id", area=(pl.col("x2") - pl.col("x1")) * (pl.col("y2") - pl.col("y1"))
    )
    pairs = generated.task("size").with_columns(
        a=pl.col("object_ids").list.get(0), b=pl.col("object_ids").list.get(1)
    )
    pairs = pairs.join(areas, left_on="a", right_on="object_id").join(
        areas, left_on="b", right_on="object_id", suffix="_b"
    )
    ratio = pairs["area"] / pairs["area_b"]
    assert pairs.height > 10 and ((pairs["label"] == 1) == (ratio >= 1.5)).all()
    assert ((ratio >= 1.5) | (ratio <= 1 / 1.5)).all()


def test_count_foils_share_the_captions_distribution(generated):
    counting = generated.task("counting").with_columns(
        pair=pl.concat_list(
            pl.min_horizontal("label", "foil_label"), pl.max_horizontal("label", "foil_label")
        )
    )
    assert (counting["label"] != counting["foil_label"]).all()
    keys = ["class_a", "source", "split"]
    # foils take only counts the same class has in that source and split
    kept = counting.group_by(keys).agg(pl.col("label").unique().alias("labels"))
    joined = counting.join(kept, on=keys)
    assert joined.select(pl.col("labels").list.contains(pl.col("foil_label")).all()).item()
    # every (caption, foil) pair of counts occurs about as often as its reverse
    ordered = counting.group_by(*keys, "label", "foil_label").len()
    reverse = ordered.rename({"label": "foil_label", "foil_label": "label", "len": "back"})
    both = ordered.join(reverse, on=[*keys, "label", "foil_label"], how="full", coalesce=True)
    gap = both["len"].cast(pl.Int64).fill_null(0) - both["back"].cast(pl.Int64).fill_null(0)
    assert gap.abs().max() <= 1
    assert counting["label"].n_unique() >= 3  # more than 0 and 1 are counted


def test_splits_by_duplicate_group(shapes):
    """Copies of one photo (one dup_group) always land in one split."""
    dataset, _, _ = shapes
    ids = dataset.images["image_id"]
    group = pl.Series(ids.to_numpy()[np.arange(ids.len()) // 3 * 3])  # groups of three
    grouped = dataset.replace(images=dataset.images.with_columns(dup_group=group))
    items = generate(grouped, seed=0).items
    images = grouped.images.select("image_id", "dup_group")
    joined = items.join(images, on="image_id")
    assert (joined["image_group"] == joined["dup_group"]).all()
    per_group = joined.group_by("dup_group").agg(
        pl.col("split").n_unique(), pl.col("image_id").n_unique()
    )
    assert (per_group["split"] == 1).all() and (per_group["image_id"] > 1).any()
    # without dup_group every image is its own group
    assert (
        generate(dataset, seed=0)
        .items.select(pl.col("image_group") == pl.col("image_id"))
        .to_series()
    ).all()


def test_noun_foils_are_counterfactual_twins(shapes, generated):
    dataset, _, _ = shapes
    foils = generated.task("foil")
    boxes = dataset.objects.select("image_id", foil_class="label").unique()
    assert foils.join(boxes, on=["image_id", "foil_class"]).is_empty()
    present = dataset.objects.select("image_id", class_b="label").unique()
    assert foils.join(present, on=["image_id", "class_b"]).height == foils.height
    assert foils["verified"].all() and (foils["caption"] != foils["foil"]).all()
    assert ((foils["label"] == 1) == (foils["text"] == foils["caption"])).all()
    # every item has a twin on another image of its source and split where the two
    # sentences swap roles: each sentence is a caption exactly as often as a foil
    twin = foils.select(
        twin_id="item_id", t_image="image_id", t_caption="caption", t_foil="foil",
        t_source="source", t_split="split", t_twin="twin_id",
    )  # fmt: skip
    pairs = foils.join(twin, on="twin_id")
    assert pairs.height == foils.height and (pairs["t_twin"] == pairs["item_id"]).all()
    assert (pairs["t_caption"] == pairs["foil"]).all() and (
        pairs["t_foil"] == pairs["caption"]
    ).all()
    assert (pairs["t_image"] != pairs["image_id"]).all()
    assert (pairs["t_source"] == pairs["source"]).all() and (
        pairs["t_split"] == pairs["split"]
    ).all()
    stated = foils.group_by("text", "source", "split").agg(pl.col("label").mean())
    assert (stated["label"] == 0.5).all()


def test_left_right_twins_are_mirrors(generated):
    lr = generated.task("left_right")
    twin = lr.select(twin_id="item_id", t_image="image_id", t_flip="flip", t_caption="caption")
    pairs = lr.join(twin, on="twin_id")
    assert pairs.height == lr.height
    assert (pairs["t_image"] == pairs["image_id"]).all() and (
        pairs["t_flip"] != pairs["flip"]
    ).all()
    assert (pairs["t_caption"] == pairs["foil"]).all()


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


def test_no_text_or_source_rule_beats_chance(generated):
    scores = generated.meta["shortcuts"]
    assert set(scores) == set(registry())
    for task, entry in scores.items():
        assert entry["flagged"] == [], (task, entry)
        rules = {r["rule"]: r for r in entry["rules"]}
        assert (
            "source → label (learned on train)" in rules
            and "text → label (learned on train)" in rules
        )
        for row in entry["rules"]:
            if row["n"] >= 50:  # enough items: close to chance, not only within the margin
                assert row["over"] <= 0.05, (task, row)
    assert "the smaller count is true" in {r["rule"] for r in scores["counting"]["rules"]}
    assert "the class with more boxes is true" in {r["rule"] for r in scores["foil"]["rules"]}


def test_shortcut_rules_catch_a_biased_set(generated):
    """The count foils of the old generator (captions mostly 0 and 1, foils any other count)
    and labels that follow the source are flagged."""
    counting = generated.task("counting")
    biased = counting.with_columns(
        foil_label=pl.when(pl.col("label") <= 1)
        .then(pl.col("label") + 2)
        .otherwise(pl.col("label") - 1)
    ).filter(pl.col("label") <= 2)
    rows = {r["rule"]: r for r in shortcuts.score_task(biased, None, "counting")}
    assert (
        rows["the smaller count is true"]["flag"]
        and rows["the smaller count is true"]["score"] > 0.8
    )
    assert rows["label prior (learned on train)"]["flag"]
    existence = generated.task("existence")
    by_source = existence.with_columns(
        label=(pl.col("source") == "shapes").cast(pl.Int32),
        foil_label=(pl.col("source") != "shapes").cast(pl.Int32),
    )
    rows = {r["rule"]: r for r in shortcuts.score_task(by_source, None, "existence")}
    assert rows["source → label (learned on train)"]["flag"]
    assert rows["source → label (learned on train)"]["score"] == 1.0
    lines = shortcuts.warnings({"existence": {"rules": list(rows.values())}})
    assert any("source → label" in line and "existence" in line for line in lines)


def test_generate_cli_prints_rule_scores_and_warns_loudly(shapes, tmp_path, monkeypatch):
    _, out, _ = shapes
    args = ["probe", "generate", str(out), "--out", str(tmp_path / "p"), "--max-per-label", "5"]
    clean = CliRunner().invoke(app, args, terminal_width=200)
    assert clean.exit_code == 0, clean.output
    assert "the smaller count is true" in clean.output and "WARNING" not in clean.output
    info = json.loads((tmp_path / "p" / "probeset.json").read_text())
    assert set(info["shortcuts"]) == set(registry()) and info["version"] == 2
    assert "Text-only and source-only rules" in (tmp_path / "p" / "README.md").read_text()
    monkeypatch.setattr(shortcuts, "MARGIN", -1.0)  # every rule now "beats chance"
    flagged = CliRunner().invoke(
        app, [*args[:4], str(tmp_path / "q"), *args[5:]], terminal_width=200
    )
    assert flagged.exit_code == 0, flagged.output
    assert flagged.output.count("WARNING") >= len(registry())
    assert "text or source alone answers part of this task" in flagged.output


def test_max_items_keeps_whole_balanced_keys(shapes, generated):
    capped = generate(shapes[0], seed=0, max_items=60)
    for name, task in registry().items():
        items = capped.task(name)
        full = generated.task(name)
        assert 0 < items.height <= 60 or full.height <= 60, name
        if name == "foil":
            continue  # balanced per pair of stated classes, checked above
        keys = [*task.balance_key, "source", "split"]
        per_key = (
            items.group_by([*keys, "label"]).len().group_by(keys).agg(pl.col("len").n_unique())
        )
        assert (per_key["len"] == 1).all(), name
    assert capped.meta["settings"]["max_items"] == 60
