"""`probe generate` on the built-in sample, built the way a user builds it: every task,
relative size included, has items in every probe split."""

from __future__ import annotations

import json

import polars as pl
import pytest
from typer.testing import CliRunner

from detforge import schema
from detforge.cli import app
from detforge.dataset import DetDataset
from detforge.probes.probeset import SPLITS, TASKS, ProbeSet


@pytest.fixture(scope="module")
def sample_probes(tmp_path_factory):
    """(built dataset, planted cases, probe set) of the sample: build-dataset, probe generate."""
    out = tmp_path_factory.mktemp("sample-build") / "out"
    runner = CliRunner()
    built = runner.invoke(app, ["build-dataset", "--out", str(out)])
    assert built.exit_code == 0, built.output
    made = runner.invoke(app, ["probe", "generate", str(out), "--out", str(out / "probes")])
    assert made.exit_code == 0, made.output
    assert "no items for" not in made.output
    planted = json.loads((out / ".sample" / "planted.json").read_text())["cases"]
    return (
        DetDataset.read(out / "tables"),
        {case["case"]: case for case in planted},
        ProbeSet.read(out / "probes"),
    )


def test_every_task_in_every_split(sample_probes):
    _, _, probes = sample_probes
    present = set(probes.items.select("task", "split").unique().iter_rows())
    assert present == {(task, split) for task in TASKS for split in SPLITS}


def test_size_items_come_from_the_planted_photos(sample_probes):
    dataset, cases, probes = sample_probes
    planted = {
        schema.stable_id(ref["source"], ref["source_image_id"])
        for ref in cases["relative_size"]["images"]
    }
    size = probes.task("size")
    assert set(size["image_id"]) <= planted
    # both answers for the same ordered pair in every split: the balance a size item needs
    labels = size.group_by("split", "class_a", "class_b").agg(pl.col("label").unique().sort())
    assert set(labels["split"]) == set(SPLITS)
    assert all(v.to_list() == [0, 1] for v in labels["label"])
    # each label is the two boxes' real area order, by a clear margin
    boxes = schema.bbox_columns(dataset.objects).select(
        "object_id", area=(pl.col("x2") - pl.col("x1")) * (pl.col("y2") - pl.col("y1"))
    )
    area = dict(boxes.iter_rows())
    for row in size.iter_rows(named=True):
        a, b = (area[i] for i in row["object_ids"])
        assert (a / b >= 6) if row["label"] == 1 else (b / a >= 6), row
