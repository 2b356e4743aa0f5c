"""validate() catches each kind of violation; diff() reports each kind of change."""

from __future__ import annotations

import dataclasses

import polars as pl
import pytest
from taxonomy_fixtures import CLASSES, MAPPING, OPENIMAGES_PARENTS, make_dataset, make_taxonomy

from detforge import schema
from detforge.taxonomy import UnifiedClass, diff, validate


def source_categories(rows, parents=OPENIMAGES_PARENTS):
    """Category tables of (source, source_label, name) rows; ``parents``: is_a edges."""
    rows = [(s, sl, name, [parents[sl]] if sl in parents else []) for s, sl, name in rows]
    frame = pl.DataFrame(rows, schema=["source", "source_label", "name", "parents"], orient="row")
    return schema.conform(frame, "source_categories")


def problems_of(tax, cats=None, objects=None) -> str:
    return "\n".join(validate(tax, cats, objects).problems)


def test_clean_taxonomy_validates(toy):
    cats = source_categories([(s, sl, sn) for s, sl, sn, *_ in MAPPING])
    report = validate(toy, cats)
    assert report.ok, report.problems
    cov = report.coverage.filter(pl.col("source") == "objects365").row(0, named=True)
    assert (cov["classes"], cov["mapped"], cov["merged"], cov["dropped"], cov["missing"]) == (
        7,
        3,
        3,
        1,
        0,
    )
    assert cov["unified_classes"] == 5


def with_classes(classes):
    return make_taxonomy(classes=classes)


@pytest.mark.parametrize(
    ("tax", "expected"),
    [
        (with_classes([*CLASSES[:6], UnifiedClass(6, "car")]), "classes: duplicate name"),
        (with_classes([*CLASSES[:6], UnifiedClass(9, "sedan")]), "id is not the 0-based position"),
        (
            with_classes([*CLASSES[:6], UnifiedClass(6, "sedan", parents=(42,))]),
            "parents names an unknown id",
        ),
        (
            with_classes([UnifiedClass(0, "vehicle", parents=(6,)), *CLASSES[1:]]),
            "parents edges form a cycle: ",
        ),
        (
            with_classes([*CLASSES[:4], UnifiedClass(4, "wheel", part_of=(4,)), *CLASSES[5:]]),
            "part_of names the class itself",
        ),
        (
            make_taxonomy(mapping=[*MAPPING, ("lvis", "1", "car", "car", "exact")]),
            "more than one row",
        ),
        (make_taxonomy(mapping=[*MAPPING, ("lvis", "9", "x", "car", "same")]), "relation not in"),
        (
            make_taxonomy(mapping=[*MAPPING, ("lvis", "9", "x", "car", "drop")]),
            "label must be empty exactly",
        ),
        (
            make_taxonomy(mapping=[*MAPPING, ("lvis", "9", "x", None, "exact")]),
            "label must be empty exactly",
        ),
        (
            make_taxonomy(mapping=[*MAPPING, ("lvis", "9", "x", "unicorn", "exact")]),
            "label is not a class",
        ),
        (
            make_taxonomy(mapping=[*MAPPING, ("lvis", "9", "automobile", "car", "synonym")]),
            "more than one exact/synonym row of a source for one class (the class is one of "
            "them; the others are merge, or parent where the source files them under it): "
            "'lvis':'1':'car', 'lvis':'9':'car'",
        ),
    ],
)
def test_each_violation(tax, expected):
    assert expected in problems_of(tax)


def test_bad_provenance_and_score(toy):
    mapping = toy.mapping.with_columns(
        pl.when(pl.col("source_label") == "1")
        .then(pl.lit("guess"))
        .otherwise("provenance")
        .alias("provenance"),
        pl.when(pl.col("source_label") == "2").then(pl.lit(3.0)).otherwise("score").alias("score"),
    )
    problems = problems_of(dataclasses.replace(toy, mapping=mapping))
    assert "provenance not in" in problems and "score outside [0, 1]" in problems


def test_against_source_categories(toy):
    rows = [(s, sl, sn) for s, sl, sn, *_ in MAPPING if (s, sl) != ("lvis", "5")]
    rows = [(s, sl, "Shelf" if sn == "Shelf " else sn) for s, sl, sn in rows]
    rows.append(("lvis", "77", "unicycle"))
    problems = problems_of(toy, source_categories(rows))
    assert "source class without a mapping row: 'lvis':'77':'unicycle'" in problems
    assert "mapping row for a class the source does not have: 'lvis':'5':'dog'" in problems
    # a stripped trailing space is a different raw name
    assert (
        "source_name differs from the source's raw name: 'objects365':'4':'Shelf ':'Shelf'"
        in problems
    )
    cov = validate(toy, source_categories(rows)).coverage
    assert cov.filter(pl.col("source") == "lvis")["missing"].item() == 1


def relation(mapping, key, new):
    return [(*m[:4], new) if m[:2] == key else m for m in mapping]


def test_parent_rows_must_sit_under_the_covering_class_in_the_source():
    rows = [(s, sl, sn) for s, sl, sn, *_ in MAPPING]
    # OpenImages files Man under Person and Limousine under Car: parent rows beside them
    assert problems_of(make_taxonomy(), source_categories(rows)) == ""
    # without that hierarchy (or as LVIS, which has none) they are parts of the class
    flat = problems_of(make_taxonomy(), source_categories(rows, parents={"/m/man": "/m/person"}))
    assert flat == (
        "mapping: parent row beside a covering (exact/synonym/merge) row of its source for the "
        "same class, not under it in the source's hierarchy (make it merge): "
        "'openimages':'/m/sedan':'Limousine':'Car'"
    )
    lvis = problems_of(
        make_taxonomy(mapping=relation(MAPPING, ("lvis", "4"), "parent")), source_categories(rows)
    )
    assert "(make it merge): 'lvis':'4':'puppy':'dog'" in lvis
    # a covering class under another covering class of the same class is a narrower kind
    nested = problems_of(
        make_taxonomy(mapping=relation(MAPPING, ("openimages", "/m/man"), "merge")),
        source_categories(rows),
    )
    assert nested == (
        "mapping: covering row under another covering row of its source for the same class in "
        "the source's hierarchy (make it parent): 'openimages':'/m/man':'Man':'Person'"
    )
    # a parent row of a class its source has no covering row for sits under nothing
    only_kind = [m for m in MAPPING if m[:2] != ("openimages", "/m/car")]
    rows = [r for r in rows if r[:2] != ("openimages", "/m/car")]
    man_only = source_categories(rows, parents={"/m/man": "/m/person"})
    assert problems_of(make_taxonomy(mapping=only_kind), man_only) == ""


def test_objects_coverage(toy):
    ds = make_dataset(
        images=[("objects365", "a")],
        boxes=[("objects365", "a", "1"), ("objects365", "a", "5"), ("objects365", "a", "99")],
    )
    report = validate(toy, objects=ds.objects)
    assert "objects: source class without a mapping row: 'objects365':'99'" in "\n".join(
        report.problems
    )
    cov = report.coverage.filter(pl.col("source") == "objects365").row(0, named=True)
    assert (cov["boxes_kept"], cov["boxes_dropped"]) == (1, 2)


def test_diff(toy):
    classes = [
        UnifiedClass(0, "vehicle"),
        UnifiedClass(1, "car", parents=(0,)),
        UnifiedClass(2, "human"),  # renamed from person
        UnifiedClass(3, "wheel"),  # moved from id 4
        UnifiedClass(4, "shelf"),  # moved from id 3
        UnifiedClass(5, "dog"),
        UnifiedClass(6, "truck"),  # renamed from sedan
        UnifiedClass(7, "bus"),  # added
    ]
    mapping = [
        (s, sl, sn, {"person": "human", "sedan": "truck"}.get(label, label), rel)
        for s, sl, sn, label, rel in MAPPING
        if (s, sl) != ("lvis", "5")
    ]
    mapping = [(*m[:3], "car", "parent") if m[:2] == ("lvis", "4") else m for m in mapping]
    mapping.append(("coco", "3", "car", "car", "exact"))
    new = make_taxonomy(mapping=mapping, classes=classes, name="toy2")
    d = diff(toy, new)
    assert d.added.rows() == [(7, "bus")]
    assert d.removed.rows() == []
    assert d.renamed.rows() == [(2, "person", "human"), (6, "sedan", "truck")]
    assert diff(new, toy).removed.rows() == [(7, "bus")]
    assert sorted(d.moved.rows()) == [("shelf", 3, 4), ("wheel", 4, 3)]
    remapped = {r[1]: r[3:] for r in d.remapped.iter_rows()}
    assert remapped["4"] == ("dog", "car", "merge", "parent")
    assert "/m/person" not in remapped  # its class was renamed, not re-mapped
    assert set(remapped) == {"4"}
    assert d.mapping_added.select("source", "source_label").rows() == [("coco", "3")]
    assert d.mapping_removed.select("source", "source_label").rows() == [("lvis", "5")]
    md = d.to_markdown()
    assert "## Classes renamed (same id) (2)" in md and "| 2 | person | human |" in md
    assert diff(toy, toy).empty and "No changes." in diff(toy, toy).to_markdown()
