"""Hierarchy helpers on a small DAG."""

from __future__ import annotations

import polars as pl
import pytest
from taxonomy_fixtures import CLASSES, MAPPING, make_dataset, make_taxonomy

from detforge.errors import DetforgeError
from detforge.taxonomy import (
    UnifiedClass,
    ancestors,
    apply,
    collapse,
    collapse_to_parent,
    descendants,
    expand_to_ancestors,
    find_cycle,
)

# a DAG: roots animal and food; dog has two parents (pet, mammal); tail is part_of dog
DAG = [
    UnifiedClass(0, "animal"),
    UnifiedClass(1, "pet", parents=(0,)),
    UnifiedClass(2, "dog", parents=(1, 3)),
    UnifiedClass(3, "mammal", parents=(0,)),
    UnifiedClass(4, "food"),
    UnifiedClass(5, "tail", part_of=(2,)),
]


@pytest.fixture
def dag():
    return make_taxonomy(mapping=[("s", "1", "Dog", "dog", "exact")], classes=DAG, name="dag")


def test_ancestors_descendants(dag):
    assert ancestors(dag, "dog") == {0, 1, 3}
    assert descendants(dag, "animal") == {1, 2, 3}
    assert ancestors(dag, "food") == set()
    assert ancestors(dag, "tail") == set()
    assert ancestors(dag, "tail", edge="part_of") == {2}
    assert descendants(dag, "dog", edge="part_of") == {5}


def test_cycle_detection(dag):
    assert find_cycle(dag.classes) is None
    cyclic = make_taxonomy(
        mapping=[],
        classes=[
            UnifiedClass(0, "a", parents=(2,)),
            UnifiedClass(1, "b", parents=(0,)),
            UnifiedClass(2, "c", parents=(1,)),
        ],
    )
    cycle = find_cycle(cyclic.classes)
    assert cycle is not None and set(cycle) == {0, 1, 2} and cycle[0] == cycle[-1]
    with pytest.raises(DetforgeError, match="cycle"):
        expand_to_ancestors(pl.DataFrame({"object_id": [1], "label": [0]}), cyclic)


def test_expand_to_ancestors(dag):
    objects = pl.DataFrame(
        {"object_id": [10, 11, 12], "label": [2, 4, None]},
        schema={"object_id": pl.Int64, "label": pl.Int32},
    )
    expanded = expand_to_ancestors(objects, dag)
    assert expanded.rows() == [(10, 0), (10, 1), (10, 2), (10, 3), (11, 4)]


def test_collapse_to_parent_objects(dag):
    objects = pl.DataFrame({"label": [2, 5, 4, 1]}, schema={"label": pl.Int32})
    # depth 1: animal, pet, mammal, food are kept; dog → its nearest kept parent (pet, id 1 < 3)
    assert collapse_to_parent(objects, dag, 1)["label"].to_list() == [1, 5, 4, 1]
    assert collapse_to_parent(objects, dag, {"animal"})["label"].to_list() == [0, 5, 4, 0]
    assert collapse_to_parent(objects, dag, 0)["label"].to_list() == [0, 5, 4, 0]


def test_collapse_dataset_keeps_federated_rules():
    tax = make_taxonomy()  # sedan is_a car is_a vehicle
    assert {c.name for c in CLASSES} >= {"vehicle", "car"}
    ds = make_dataset(
        images=[("lvis", "l1")],
        boxes=[("lvis", "l1", "1")],  # car_(automobile), exact to car
    )
    mapped = collapse_to_parent(ds, tax, {"vehicle"})
    # the car box is now a vehicle box, and vehicle is not exhaustive there
    assert mapped.objects["label"].to_list() == [0]
    assert mapped.image_labels.select("label", "status").rows() == [(0, "not_exhaustive")]
    assert 1 not in mapped.categories["id"].to_list()
    assert mapped.validate() == []
    assert mapped.categories.filter(pl.col("name") == "wheel")["part_of"].to_list() == [[]]
    assert (
        collapse(tax, {"vehicle"})
        .mapping.filter(pl.col("source") == "lvis")["relation"]
        .to_list()[0]
        == "parent"
    )
    with pytest.raises(DetforgeError, match="already mapped"):
        collapse_to_parent(apply(ds, tax)[0], tax, {"vehicle"})


def test_collapse_beside_the_targets_own_class_is_merge():
    # LVIS also has a vehicle class: its car class is boxed apart from it, so after the
    # collapse "no vehicle" alone is no negative of vehicle
    tax = make_taxonomy(mapping=[*MAPPING, ("lvis", "6", "vehicle", "vehicle", "exact")])
    collapsed = collapse(tax, {"vehicle"}).mapping
    relations = dict(collapsed.select("source_label", "relation").iter_rows())
    assert (relations["1"], relations["6"]) == ("merge", "exact")
    assert (relations["/m/car"], relations["/m/sedan"]) == ("parent", "parent")  # no OI vehicle
    ds = make_dataset(
        images=[("lvis", "l1"), ("lvis", "l2")],
        labels=[
            ("lvis", "l1", "6", "negative"),
            ("lvis", "l2", "6", "negative"),
            ("lvis", "l2", "1", "negative"),
        ],
    )
    mapped = collapse_to_parent(ds, tax, {"vehicle"})
    keys = mapped.images.select("image_id", "source_image_id")
    got = mapped.image_labels.join(keys, on="image_id").select("source_image_id", "status")
    assert got.rows() == [("l2", "negative")]
