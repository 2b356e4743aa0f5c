"""apply(): the map stage's relabelling and federated-annotation rules."""

from __future__ import annotations

import polars as pl
import pytest
from taxonomy_fixtures import CLASSES, MAPPING, image_id, make_dataset, make_taxonomy

from detforge.errors import DetforgeError, InputError
from detforge.taxonomy import UnifiedClass, apply, fingerprint
from detforge.taxonomy.apply import CONFLICT, DROPPED_CLASS, NEGATIVE_NOT_IMPLIED

O365_ALL = [("objects365", str(i)) for i in range(1, 8)]
# an exact class and a merge class of one source beside each other: pillow = pillow ∪ cushion
PILLOW = 7
PILLOW_ROWS = [
    ("lvis", "6", "pillow", "pillow", "exact"),
    ("lvis", "7", "cushion", "pillow", "merge"),
    ("objects365", "8", "Pillow", "pillow", "exact"),
    ("objects365", "9", "Cushion", "pillow", "merge"),
]


@pytest.fixture
def pillows():
    """The toy taxonomy plus ``pillow`` fed by an exact and a merge class per source."""
    return make_taxonomy(
        mapping=MAPPING + PILLOW_ROWS, classes=[*CLASSES, UnifiedClass(PILLOW, "pillow")]
    )


def labels_of(dataset) -> dict[tuple[str, int], str]:
    """{(source image key, unified label): status}."""
    keys = dataset.images.select("image_id", "source_image_id")
    rows = dataset.image_labels.join(keys, on="image_id").select(
        "source_image_id", "label", "status"
    )
    return {(k, label): status for k, label, status in rows.iter_rows()}


def report_row(report: pl.DataFrame, reason: str, source_label: str) -> dict:
    rows = report.filter((pl.col("reason") == reason) & (pl.col("source_label") == source_label))
    assert rows.height == 1, report
    return rows.row(0, named=True)


def test_objects_relabelled_and_drops_counted(toy):
    ds = make_dataset(
        images=[("objects365", "a"), ("objects365", "b")],
        boxes=[
            ("objects365", "a", "1"),
            ("objects365", "a", "5"),
            ("objects365", "a", "5"),
            ("objects365", "b", "5"),
            ("objects365", "b", "3"),
            ("objects365", "b", "4"),
        ],
        spaces=O365_ALL,
    )
    mapped, report = apply(ds, toy)
    # dropped boxes leave objects; the images stay
    assert sorted(mapped.objects["label"].to_list()) == [2, 3, 3]
    assert mapped.images.height == 2
    drop = report_row(report, DROPPED_CLASS, "5")
    assert (drop["boxes"], drop["images"], drop["source_name"]) == (3, 2, "Trash")
    # the other dataset's dropped classes are not listed (source absent)
    assert set(report["source"]) == {"objects365"}
    assert mapped.categories.equals(toy.classes)
    assert mapped.meta["taxonomy"] == "toy"
    assert mapped.meta["taxonomy_fingerprint"] == fingerprint(toy)
    assert mapped.validate() == []


def test_objects365_label_space_exact_merge_not_parent(toy):
    ds = make_dataset(images=[("objects365", "a")], spaces=O365_ALL)
    mapped, _ = apply(ds, toy)
    # person, car (exact), shelf (both merge classes), wheel (synonym); dog only via parent
    assert sorted(mapped.label_spaces["label"].unique().to_list()) == [1, 2, 3, 4]
    shelf_rows = mapped.label_spaces.filter(pl.col("label") == 3)["source_label"].to_list()
    assert sorted(shelf_rows) == ["3", "4"]


def test_merge_exhaustive_only_if_all_merge_classes_are(toy):
    partial = [s for s in O365_ALL if s[1] != "4"]
    ds = make_dataset(images=[("objects365", "a")], spaces=partial)
    mapped, _ = apply(ds, toy)
    assert 3 not in mapped.label_spaces["label"].to_list()


def test_parent_box_makes_not_exhaustive_on_exhaustive_source(toy):
    ds = make_dataset(
        images=[("objects365", "a")],
        boxes=[("objects365", "a", "7"), ("objects365", "a", "2")],
        spaces=O365_ALL,
    )
    mapped, _ = apply(ds, toy)
    # a puppy box says "a dog is here" but other dogs were never boxed; car is exhaustive
    assert labels_of(mapped) == {("a", 5): "not_exhaustive"}


def test_negatives_translate_only_through_the_covering_classes(toy):
    ds = make_dataset(
        images=[("openimages", k) for k in ("i1", "i2")] + [("lvis", k) for k in ("l1", "l2")],
        labels=[
            ("openimages", "i1", "/m/sedan", "negative"),  # no limousine != no car
            ("openimages", "i1", "/m/man", "negative"),  # no man != no person
            ("openimages", "i2", "/m/car", "negative"),
            ("lvis", "l1", "5", "negative"),  # synonym ...
            ("lvis", "l1", "4", "negative"),  # ... and the puppies LVIS boxes apart
            ("lvis", "l2", "5", "negative"),  # puppies never looked for
        ],
    )
    mapped, report = apply(ds, toy)
    assert labels_of(mapped) == {("i2", 1): "negative", ("l1", 5): "negative"}
    lost = report.filter(pl.col("reason") == NEGATIVE_NOT_IMPLIED)
    assert sorted(lost["source_label"].to_list()) == ["/m/man", "/m/sedan", "5"]
    assert lost["image_labels"].to_list() == [1, 1, 1]


def test_merge_negatives_need_every_merge_class(toy):
    ds = make_dataset(
        images=[("lvis", "l1"), ("lvis", "l2")],
        labels=[
            ("lvis", "l1", "2", "negative"),
            ("lvis", "l1", "3", "negative"),  # both merge classes absent: no shelf
            ("lvis", "l2", "2", "negative"),  # a bookcase may still be there
        ],
    )
    mapped, report = apply(ds, toy)
    assert labels_of(mapped) == {("l1", 3): "negative"}
    lost = report_row(report, NEGATIVE_NOT_IMPLIED, "2")
    assert (lost["image_labels"], lost["images"]) == (1, 1)


def test_positives(toy):
    ds = make_dataset(
        images=[("openimages", k) for k in ("i3", "i4", "i6")],
        labels=[
            ("openimages", "i3", "/m/sedan", "positive"),  # a car is there, not all boxed
            ("openimages", "i4", "/m/car", "positive"),
            ("openimages", "i6", "/m/man", "positive"),
            ("openimages", "i6", "/m/person", "positive"),  # two rows collapse to one
        ],
    )
    mapped, _ = apply(ds, toy)
    assert labels_of(mapped) == {
        ("i3", 1): "not_exhaustive",
        ("i4", 1): "positive",
        ("i6", 2): "positive",
    }
    assert mapped.image_labels.filter(pl.col("label") == 2)["source_label"].to_list() == ["/m/man"]


def test_conflict_keeps_presence_and_is_reported(toy):
    ds = make_dataset(
        images=[("openimages", "i5")],
        boxes=[("openimages", "i5", "/m/sedan")],
        labels=[("openimages", "i5", "/m/car", "negative")],
    )
    mapped, report = apply(ds, toy)
    assert labels_of(mapped) == {("i5", 1): "not_exhaustive"}
    conflict = report_row(report, CONFLICT, "/m/car")
    assert (conflict["label_name"], conflict["images"]) == ("car", 1)


def test_lvis_federated_fields(toy):
    ds = make_dataset(
        images=[("lvis", k) for k in ("l1", "l2", "l3", "l4", "l7")],
        boxes=[
            ("lvis", "l1", "1"),
            ("lvis", "l2", "1"),
            ("lvis", "l3", "2"),
            ("lvis", "l4", "2"),
            ("lvis", "l7", "4"),
        ],
        labels=[
            ("lvis", "l2", "1", "not_exhaustive"),
            ("lvis", "l4", "3", "negative"),
        ],
    )
    mapped, _ = apply(ds, toy)
    assert labels_of(mapped) == {
        # l1: a car box on its exact class: annotated by the federated rule, no row needed
        ("l2", 1): "not_exhaustive",
        ("l3", 3): "not_exhaustive",  # shelf boxed, bookcase unknown
        # l4: shelf boxed + bookcase verified absent: shelf complete, no row
        ("l7", 5): "not_exhaustive",  # puppy box: dog present, not exhaustive
    }
    assert mapped.label_spaces.height == 0


def test_dropped_class_image_labels_counted(toy):
    ds = make_dataset(
        images=[("openimages", "i1")],
        labels=[("openimages", "i1", "/m/drop", "positive")],
    )
    mapped, report = apply(ds, toy)
    assert mapped.image_labels.height == 0
    drop = report_row(report, DROPPED_CLASS, "/m/drop")
    assert (drop["boxes"], drop["images"], drop["image_labels"]) == (0, 1, 1)


def test_missing_mapping_rows_raise(toy):
    ds = make_dataset(
        images=[("openimages", "i1")],
        boxes=[("openimages", "i1", "/m/zzz"), ("openimages", "i1", "/m/yyy")],
    )
    with pytest.raises(
        InputError, match=r"2 source class\(es\).*openimages:/m/yyy, openimages:/m/zzz"
    ):
        apply(ds, toy)


def test_mapping_twice_is_refused(toy):
    ds = make_dataset(images=[("lvis", "l1")], boxes=[("lvis", "l1", "1")])
    mapped, _ = apply(ds, toy)
    with pytest.raises(DetforgeError, match="already mapped"):
        apply(mapped, toy)


def test_deterministic(toy):
    ds = make_dataset(
        images=[("openimages", "i1"), ("lvis", "l1")],
        boxes=[("openimages", "i1", "/m/sedan"), ("lvis", "l1", "3")],
        labels=[("openimages", "i1", "/m/man", "positive"), ("lvis", "l1", "5", "negative")],
    )
    first = apply(ds, toy)
    second = apply(ds, make_taxonomy())
    assert first[0].image_labels.equals(second[0].image_labels)
    assert first[1].equals(second[1])
    assert image_id("lvis", "l1") in first[0].image_labels["image_id"].to_list()


def test_merge_beside_exact_needs_every_class_of_the_source(pillows):
    # LVIS pillow (exact) and cushion (merge) both feed pillow: "no pillow" alone says
    # nothing about cushions, so it is no negative of the unified class
    ds = make_dataset(
        images=[("lvis", k) for k in ("p1", "p2", "p3", "p4", "p5", "p6")],
        boxes=[
            ("lvis", "p3", "7"),
            ("lvis", "p4", "6"),
            ("lvis", "p5", "6"),
            ("lvis", "p6", "7"),
        ],
        labels=[
            ("lvis", "p1", "6", "negative"),
            ("lvis", "p2", "6", "negative"),
            ("lvis", "p2", "7", "negative"),  # both verified absent: no pillow at all
            ("lvis", "p3", "6", "negative"),  # no pillow, cushions boxed: complete
            ("lvis", "p5", "7", "negative"),  # pillows boxed, no cushion: complete
            ("lvis", "p6", "6", "negative"),
            ("lvis", "p6", "7", "negative"),  # contradicted by the cushion box
        ],
    )
    mapped, report = apply(ds, pillows)
    assert labels_of(mapped) == {
        ("p2", PILLOW): "negative",
        ("p4", PILLOW): "not_exhaustive",  # a pillow box says nothing about cushions
        ("p6", PILLOW): "not_exhaustive",
    }
    negative = mapped.image_labels.filter(pl.col("status") == "negative")
    assert negative["source_label"].to_list() == ["6"]  # the exact class names the row
    # "no pillow" on p1 and p3 became no negative of the unified class (p3: cushions boxed)
    lost = report_row(report, NEGATIVE_NOT_IMPLIED, "6")
    assert (lost["image_labels"], lost["images"], lost["relation"]) == (2, 2, "exact")
    conflict = report_row(report, CONFLICT, "6")
    assert conflict["images"] == 1
    assert report.filter(pl.col("reason") == CONFLICT).height == 1  # p3 is no conflict


def test_merge_beside_exact_label_space_needs_every_class(pillows):
    only_exact = make_dataset(images=[("objects365", "a")], spaces=[("objects365", "8")])
    assert PILLOW not in apply(only_exact, pillows)[0].label_spaces["label"].to_list()
    both = make_dataset(
        images=[("objects365", "a")],
        boxes=[("objects365", "a", "9")],
        spaces=[("objects365", "8"), ("objects365", "9")],
    )
    mapped, _ = apply(both, pillows)
    assert sorted(mapped.label_spaces.filter(pl.col("label") == PILLOW)["source_label"]) == [
        "8",
        "9",
    ]
    assert mapped.image_labels.height == 0  # exhaustive: the box needs no row


def test_merge_set_completed_by_label_space_and_negative(pillows):
    # Pillow exhaustive through the label space, Cushion verified absent on one image
    ds = make_dataset(
        images=[("objects365", "a"), ("objects365", "b")],
        labels=[("objects365", "a", "9", "negative")],
        spaces=[("objects365", "8")],
    )
    mapped, report = apply(ds, pillows)
    assert labels_of(mapped) == {("a", PILLOW): "negative"}
    assert report.filter(pl.col("reason") == NEGATIVE_NOT_IMPLIED).height == 0


def test_two_covering_classes_of_a_source_each_cover_a_part():
    # a mapping with two exact/synonym classes of one source for one class (validate flags
    # it): each is a part of the class, never the whole, so both must be covered
    tax = make_taxonomy(
        mapping=[
            *MAPPING,
            ("openimages", "/m/pillow", "Pillow", "pillow", "exact"),
            ("openimages", "/m/cushion", "Cushion", "pillow", "synonym"),
        ],
        classes=[*CLASSES, UnifiedClass(PILLOW, "pillow")],
    )
    ds = make_dataset(
        images=[("openimages", k) for k in ("i1", "i2", "i3")],
        boxes=[("openimages", "i3", "/m/pillow")],
        labels=[
            ("openimages", "i1", "/m/pillow", "negative"),
            ("openimages", "i2", "/m/pillow", "negative"),
            ("openimages", "i2", "/m/cushion", "negative"),
            ("openimages", "i3", "/m/pillow", "positive"),
        ],
    )
    mapped, report = apply(ds, tax)
    assert labels_of(mapped) == {("i2", PILLOW): "negative", ("i3", PILLOW): "not_exhaustive"}
    assert report_row(report, NEGATIVE_NOT_IMPLIED, "/m/pillow")["images"] == 1
