"""`probe generate` on the built-in sample, built the way a user builds it (seeds 0, 1, 2):
natural captions, relative size from the planted photos, no text or source rule above chance."""

from __future__ import annotations

import json

import polars as pl
import pytest
from typer.testing import CliRunner

from detforge import schema
from detforge.cli import app
from detforge.dataset import DetDataset
from detforge.probes.probeset import SPLITS, ProbeSet

SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def sample_probes(tmp_path_factory):
    """(built dataset, planted cases, probe sets by seed) of the sample."""
    out = tmp_path_factory.mktemp("sample-build") / "out"
    runner = CliRunner()
    built = runner.invoke(app, ["build-dataset", "--out", str(out)])
    assert built.exit_code == 0, built.output
    sets = {}
    for seed in SEEDS:
        target = out / f"probes{seed}"
        made = runner.invoke(
            app, ["probe", "generate", str(out), "--out", str(target), "--seed", str(seed)]
        )
        assert made.exit_code == 0, made.output
        assert "WARNING" not in made.output, made.output
        sets[seed] = ProbeSet.read(target)
    planted = json.loads((out / ".sample" / "planted.json").read_text())["cases"]
    return DetDataset.read(out / "tables"), {case["case"]: case for case in planted}, sets


def test_tasks_and_splits(sample_probes):
    _, _, sets = sample_probes
    present = set(sets[0].items.select("task", "split").unique().iter_rows())
    for task in ("existence", "counting", "left_right", "size"):
        assert {(task, s) for s in SPLITS} <= present, task
    for probes in sets.values():
        assert probes.task("foil").height > 0
        # several sources contribute, each balanced on its own
        assert probes.task("existence")["source"].n_unique() >= 2


def test_captions_are_plain_english(sample_probes):
    _, _, sets = sample_probes
    for probes in sets.values():
        texts = pl.concat([probes.items["caption"], probes.items["foil"], probes.items["text"]])
        assert not texts.str.contains(r"[()_]").any()
        assert not texts.str.contains(r"buss|persons|\)s").any()
        counting = probes.task("counting")
        plural = counting.filter(pl.col("label") >= 2)["caption"]
        assert plural.str.contains(r"^There are (two|three|four or more) ").all()


def test_no_rule_beats_chance_on_the_sample(sample_probes):
    _, _, sets = sample_probes
    for seed, probes in sets.items():
        for task, entry in probes.meta["shortcuts"].items():
            assert entry["flagged"] == [], (seed, task, entry)


def test_size_items_come_from_the_planted_photos(sample_probes):
    dataset, cases, sets = sample_probes
    planted = {
        schema.stable_id(ref["source"], ref["source_image_id"])
        for ref in cases["relative_size"]["images"]
    }
    size = sets[0].task("size")
    assert set(size["image_id"]) <= planted
    # both answers for the same ordered pair in every split: the balance a size item needs
    labels = size.group_by("split", "class_a", "class_b").agg(pl.col("label").unique().sort())
    assert set(labels["split"]) == set(SPLITS)
    assert all(v.to_list() == [0, 1] for v in labels["label"])
    boxes = schema.bbox_columns(dataset.objects).select(
        "object_id", area=(pl.col("x2") - pl.col("x1")) * (pl.col("y2") - pl.col("y1"))
    )
    area = dict(boxes.iter_rows())
    for row in size.iter_rows(named=True):
        a, b = (area[i] for i in row["object_ids"])
        assert (a / b >= 6) if row["label"] == 1 else (b / a >= 6), row
