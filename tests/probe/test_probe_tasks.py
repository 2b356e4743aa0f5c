"""Caption English and the task registry: a new task is one module."""

from __future__ import annotations

import polars as pl
import pytest

from detforge.probes import tasks as registry_module
from detforge.probes.captions import class_names, display_name, noun_forms, question
from detforge.probes.generate import generate
from detforge.taxonomy import load


@pytest.mark.parametrize(
    ("name", "display"),
    [
        ("car_(automobile)", "car"),
        ("bus_(vehicle)", "bus"),
        ("football_(American)", "football"),
        ("ping-pong_ball", "ping-pong ball"),
        ("Cabinet/shelf", "cabinet or shelf"),
        ("iPod", "iPod"),
        ("Moniter/TV", "moniter or TV"),
        ("Table Tennis ", "table tennis"),
    ],
)
def test_display_names(name, display):
    assert display_name(name) == display


@pytest.mark.parametrize(
    ("display", "a", "plural"),
    [
        ("bus", "a bus", "buses"),
        ("person", "a person", "people"),
        ("apple", "an apple", "apples"),
        ("knife", "a knife", "knives"),
        ("strawberry", "a strawberry", "strawberries"),
        ("hot-air balloon", "a hot-air balloon", "hot-air balloons"),
        ("scissors", "a pair of scissors", "pairs of scissors"),
        ("short pants", "a pair of short pants", "pairs of short pants"),
        ("sneakers", "a sneaker", "sneakers"),
        ("french fries", "a french fry", "french fries"),
        ("asparagus", "an asparagus", "asparaguses"),
        ("rays and skates", "a ray or skate", "rays or skates"),
    ],
)
def test_articles_and_plurals(display, a, plural):
    forms = noun_forms(display)
    assert (forms["a"], forms["plural"]) == (a, plural)


def test_every_bigdet_class_reads_as_english():
    names = class_names(load("bigdet-v1").classes)
    assert names.height == 600
    for column in ("noun", "a", "plural"):
        assert not names[column].str.contains(r"[()_]").any(), column
    assert not names["plural"].str.contains(r"ss$|\)s$").any()
    row = dict(zip(names["noun"], names["plural"], strict=True))
    assert row["bus"] == "buses" and row["car"] == "cars" and row["mouse"] == "mice"


def test_questions_are_grammatical():
    assert question("There is a dog.") == "Is it true that there is a dog?"
    assert question("The bus is larger than the cat.") == (
        "Is it true that the bus is larger than the cat?"
    )


def test_registry_declares_every_task_in_one_module():
    tasks = registry_module.registry()
    assert list(tasks) == ["existence", "counting", "left_right", "above_below", "size", "foil"]
    for name, task in tasks.items():
        assert task.name == name and task.version >= 1 and task.summary
        assert len(task.labels) >= 2 and task.balance_key
    assert len({t.code for t in tasks.values()}) == len(tasks)


COLOUR_TASK = '''
"""A task added by one file: is a class boxed more than once on the image?"""

import polars as pl

from detforge.probes.captions import sentence, with_names
from detforge.probes.tasks import Task


def make(facts, settings):
    return facts.per.filter(~pl.col("any_crowd")).select(
        "image_id",
        "object_ids",
        class_a="label",
        label=(pl.col("n") > 1).cast(pl.Int32),
        evidence=pl.lit("box"),
        verified=pl.lit(True),
    )


def write(items, facts, settings):
    named = with_names(items, facts.names, "class_a")
    many = sentence("There are several ", pl.col("class_a_plural"), ".")
    one = sentence("There is a single ", pl.col("class_a_noun"), ".")
    return named.with_columns(
        text=pl.col("class_a_noun"),
        caption=pl.when(pl.col("label") == 1).then(many).otherwise(one),
        foil=pl.when(pl.col("label") == 1).then(one).otherwise(many),
        foil_label=1 - pl.col("label"),
    )


TASK = Task(
    name="several",
    labels=("one", "several"),
    version=1,
    summary="one or several boxes of a class",
    make=make,
    write=write,
    balance_key=("class_a",),
    order=9,
)
'''


def test_a_new_task_is_one_module(shapes, tmp_path, monkeypatch):
    extra = tmp_path / "more"
    extra.mkdir()
    (extra / "several.py").write_text(COLOUR_TASK)
    monkeypatch.setattr(registry_module, "__path__", [*registry_module.__path__, str(extra)])
    registry_module.registry.cache_clear()
    try:
        assert "several" in registry_module.names()
        probes = generate(shapes[0], seed=0, tasks=["several"], max_per_label=20)
        items = probes.items
        assert items.height > 20 and set(items["label_name"]) == {"one", "several"}
        assert probes.meta["task_versions"] == {"several": 1}
        assert "several" in probes.meta["shortcuts"]
        counts = items.group_by("class_a", "source", "split", "label").len()
        assert (
            counts.group_by("class_a", "source", "split").agg(pl.col("len").n_unique())["len"].max()
            == 1
        )  # balanced like every registered task
    finally:
        registry_module.registry.cache_clear()
