"""The shipped bigdet-v1 taxonomy against the real source category files and the sample.

These read the SHIPPED ``detforge/taxonomy/data/bigdet-v1/mapping.csv``.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from taxonomy_fixtures import make_dataset

from detforge.dataset import DetDataset
from detforge.sources import READERS
from detforge.taxonomy import ancestors, apply, load, measure, suggest, validate
from detforge.taxonomy.apply import CONFLICT, NEGATIVE_NOT_IMPLIED
from detforge.taxonomy.io import DATA_DIR
from detforge.taxonomy.suggest import exact_name

SOURCE_FILES = {
    "objects365": "objects365_v2_categories.json",
    "openimages": "class-descriptions-boxable.csv",
    "lvis": "lvis_v1_categories.json",
}
COUNTS = {"objects365": 365, "openimages": 601, "lvis": 1203}


@pytest.fixture(scope="module")
def bigdet():
    mapping = DATA_DIR / "bigdet-v1" / "mapping.csv"
    assert mapping.is_file(), f"{mapping} is not shipped yet"
    return load("bigdet-v1")


@pytest.fixture(scope="module")
def real_categories(shared_data: Path) -> pl.DataFrame:
    return pl.concat(
        READERS[fmt].read_categories(shared_data / "taxonomy" / name)
        for fmt, name in SOURCE_FILES.items()
    )


def test_names_and_ids_are_bigdetections(shared_data):
    expected = (shared_data / "taxonomy/bigdetection/bigdetection_classes.txt").read_text().split()
    tax = load("bigdet-v1")
    assert tax.names == expected
    assert tax.classes["id"].to_list() == list(range(600))


def test_every_source_class_covered_exactly_once(bigdet, real_categories):
    report = validate(bigdet, real_categories)
    assert report.ok, "\n".join(report.problems)
    cov = report.coverage.select("source", "classes", "missing").rows()
    assert cov == [(s, COUNTS[s], 0) for s in sorted(COUNTS)]
    assert bigdet.mapping.height == sum(COUNTS.values())


def test_objects365_raw_names_verbatim(bigdet):
    o365 = dict(
        bigdet.mapping.filter(pl.col("source") == "objects365")
        .select("source_label", "source_name")
        .iter_rows()
    )
    assert (o365["365"], o365["197"], o365["38"]) == (
        "Table Tennis ",
        "Cigar/Cigarette ",
        "Moniter/TV",
    )


def test_apply_on_sample(bigdet, sample_root):
    parts = [
        READERS[s].read(sample_root / s, split)
        for s in ("objects365", "openimages", "lvis")
        for split in ("train", "val")
    ]
    ds = DetDataset.concat(parts)
    ds = ds.replace(source_categories=ds.source_categories.unique(["source", "source_label"]))
    mapped, report = apply(ds, bigdet)
    assert mapped.validate() == []

    def label_of(source, source_label):
        rows = mapped.objects.filter(
            (pl.col("source") == source) & (pl.col("source_label") == source_label)
        )
        assert rows.height, (source, source_label)
        return set(rows["label"].to_list())

    # planted name variants land in one class
    car = bigdet.class_id("car_(automobile)")
    assert (
        label_of("objects365", "6")
        == label_of("openimages", "/m/0k4j")
        == label_of("lvis", "207")
        == {car}
    )
    person = {bigdet.class_id("person")}
    for source, source_label in [
        ("objects365", "1"),
        ("openimages", "/m/01g317"),
        ("openimages", "/m/04yx4"),
        ("openimages", "/m/03bt1vf"),
        ("lvis", "793"),
    ]:
        assert label_of(source, source_label) == person
    # federated fields: LVIS image 43782 has car not exhaustive, a wheel box and dog
    # verified absent; LVIS boxes wagon wheels, puppies and shepherd dogs apart from wheel
    # and dog, and they were not looked for there: wheel is not exhaustive, dog no negative
    keys = mapped.images.select("image_id", "source", "source_image_id")
    labels = mapped.image_labels.join(keys, on=["image_id", "source"])
    l2 = dict(
        labels.filter(pl.col("source_image_id") == "43782").select("label", "status").iter_rows()
    )
    assert l2 == {car: "not_exhaustive", bigdet.class_id("wheel"): "not_exhaustive"}
    # Objects365 is exhaustive over every class whose exact/synonym and merge rows are all
    # in its label space (the sample's short category list has Car but not SUV)
    covering = bigdet.mapping.filter(
        (pl.col("source") == "objects365") & pl.col("relation").is_in(["exact", "synonym", "merge"])
    )
    in_space = ds.label_spaces.unique().with_columns(pl.lit(True).alias("in_space"))
    complete = (
        covering.join(in_space, on=["source", "source_label"], how="left")
        .group_by("label")
        .agg(pl.col("in_space").fill_null(False).all().alias("all_in_space"))
    )
    spaces = set(mapped.label_spaces.filter(pl.col("source") == "objects365")["label"].to_list())
    assert spaces == set(complete.filter("all_in_space")["label"].to_list())
    assert car not in spaces and bigdet.class_id("person") in spaces
    # every box is kept or counted as dropped
    dropped = report.filter(pl.col("reason") == "class dropped")
    assert dropped["boxes"].sum() == ds.objects.height - mapped.objects.height


def test_suggest_beats_exact_name_matching(bigdet, real_categories):
    lexical = measure(suggest(real_categories, bigdet, 3, embeddings=False), bigdet.mapping)
    baseline = measure(exact_name(real_categories, bigdet), bigdet.mapping)
    for (source, _, top1, _), (_, _, base1, _) in zip(
        lexical.iter_rows(), baseline.iter_rows(), strict=True
    ):
        assert top1 >= base1, source


@pytest.mark.slow
def test_suggest_with_embeddings_on_a_subset(bigdet, real_categories):
    # every 20th mapped source class, against its reviewed classes plus every 10th class
    reviewed = bigdet.mapping.filter(pl.col("label").is_not_null()).gather_every(20)
    cats = real_categories.join(
        reviewed.select("source", "source_label"), on=["source", "source_label"]
    )
    keep = set(reviewed["label"].to_list()) | set(range(0, 600, 10))
    small = bigdet.replace(classes=bigdet.classes.filter(pl.col("id").is_in(sorted(keep))))
    full = measure(suggest(cats, small, 3), reviewed)
    base = measure(exact_name(cats, small), reviewed)
    for (source, rows, top1, top3), (_, _, base1, _) in zip(
        full.iter_rows(), base.iter_rows(), strict=True
    ):
        assert rows > 5
        assert top1 >= base1 and top3 > base1, (source, top1, top3, base1)


def test_cli_validate_sample_coverage(bigdet, sample_root):
    from typer.testing import CliRunner

    from detforge.cli import app

    args = ["taxonomy", "validate", "bigdet-v1", "--sources", str(sample_root)]
    result = CliRunner().invoke(app, [*args, "--subset", "--boxes"])
    assert result.exit_code == 0, result.output
    assert "objects365: boxes kept" in result.output and "no violations" in result.output
    # without --subset, the sample's short category lists leave rows without a class
    strict = CliRunner().invoke(app, args)
    assert strict.exit_code == 1
    assert "mapping row for a class the source does not have" in strict.output


def test_coco80_covers_every_source_class(shared_data, real_categories):
    coco = READERS["coco"].read_categories(shared_data / "taxonomy" / "coco_categories.json")
    tax = load("coco80")
    assert tax.names == [c for c in coco["name"].to_list()]
    report = validate(tax, pl.concat([real_categories, coco]))
    assert report.ok, "\n".join(report.problems)
    assert report.coverage["missing"].sum() == 0
    assert tax.mapping.height == sum(COUNTS.values()) + 80


# Rows decided by the mapping audit (docs/taxonomy-review/bigdet-v1.md, "Audit"):
# (source, source_label) -> (class name or None, relation)
AUDITED = {
    # homonyms: Objects365's peppers are the vegetable, LVIS pepper the spice
    ("objects365", "159"): ("vegetables", "parent"),
    ("lvis", "789"): ("pepper", "exact"),
    ("lvis", "243"): ("vegetables", "parent"),  # chili_(vegetable)
    ("lvis", "87"): ("bell_pepper", "exact"),
    ("openimages", "/m/0jg57"): ("bell_pepper", "exact"),
    ("openimages", "/m/04169hn"): ("heater", "merge"),  # Wood-burning stove: a heater
    ("objects365", "269"): ("stove", "parent"),  # Induction Cooker ...
    ("lvis", "572"): ("stove", "merge"),  # ... and hotplate: one decision (beside LVIS stove)
    # broader than cooking_utensil (knives, forks, spoons, straws, openers)
    ("openimages", "/m/03hlz0c"): (None, "drop"),
    # merge rows beside an exact row of the same source
    ("lvis", "351"): ("pillow", "merge"),  # cushion
    ("lvis", "804"): ("pillow", "exact"),
    # OpenImages' own hierarchy puts Man under Person: a narrower kind
    ("openimages", "/m/04yx4"): ("person", "parent"),
    # one relation per concept across sources
    ("openimages", "/m/099ssp"): ("plate", "merge"),
    ("lvis", "819"): ("plate", "merge"),
    ("openimages", "/m/054fyh"): ("water_jug", "merge"),
    ("lvis", "814"): ("water_jug", "merge"),
    ("openimages", "/m/01krhy"): (None, "drop"),
    ("lvis", "1087"): (None, "drop"),
    ("openimages", "/m/01b7fy"): ("earphone", "synonym"),  # Headphones = LVIS earphone
    ("objects365", "126"): ("headset", "synonym"),  # Head Phone: over-ear only
    ("openimages", "/m/02zvsm"): ("pie", "parent"),  # Tart
    ("lvis", "859"): ("pie", "merge"),  # quiche
    # missed kinds (merge: beside the LVIS class of their target)
    ("lvis", "520"): ("plastic_bag", "merge"),
    ("lvis", "949"): ("plastic_bag", "merge"),
    ("lvis", "220"): ("box", "merge"),
    ("lvis", "412"): ("tripod", "merge"),
    ("lvis", "92"): ("napkin", "merge"),
    ("lvis", "1131"): (None, "drop"),  # turtleneck: a sweater, like the dropped sweaters
    # kinds beside a covering class of their source that the source does not file under it
    ("openimages", "/m/01bqk0"): ("wheel", "merge"),  # Bicycle wheel, not under Wheel
    ("openimages", "/m/03hj559"): ("bowl", "merge"),  # Mixing bowl
    ("openimages", "/m/058qzx"): ("knife", "merge"),  # Kitchen knife
    ("openimages", "/m/0cnyhnx"): ("cow", "merge"),  # Bull, beside Cattle
    ("openimages", "/m/03ldnb"): ("fan", "merge"),  # Ceiling fan, beside Mechanical fan
    ("openimages", "/m/0d4w1"): ("cupboard", "merge"),  # Closet, beside Cupboard
    ("lvis", "1152"): ("wheel", "merge"),  # wagon_wheel: LVIS has no hierarchy
    ("objects365", "35"): ("car_(automobile)", "merge"),  # SUV, beside Car
    # ... and kinds their source files under the covering class stay parent
    ("openimages", "/m/019jd"): ("boat", "parent"),  # Boat, under Watercraft (synonym)
    ("openimages", "/m/01rzcn"): ("boat", "synonym"),
    ("openimages", "/m/02fq_6"): ("hat", "parent"),  # Fedora, under Hat
    ("openimages", "/m/015wgc"): ("pastry", "parent"),  # Croissant, under Pastry
}


def test_audited_rows(bigdet):
    rows = {
        (s, sl): (label, rel)
        for s, sl, label, rel in bigdet.mapping.select(
            "source", "source_label", "label_name", "relation"
        ).iter_rows()
    }
    assert {key: rows[key] for key in AUDITED} == AUDITED
    # the spice class takes no vegetable, cooking_utensil no generic kitchen utensil
    assert bigdet.feeding("pepper")["source_name"].to_list() == ["pepper"]
    assert "Kitchen utensil" not in bigdet.get("cooking_utensil").synonyms
    assert "Headphones" in bigdet.get("earphone").synonyms


def test_audited_is_a_edges(bigdet):
    def up(name: str) -> set[str]:
        return {bigdet.names[i] for i in ancestors(bigdet, name)}

    assert {"pie", "pastry"} <= up("egg_tart")
    assert {"table"} <= up("desk") and {"earphone"} <= up("headset")
    assert {"handle"} <= up("doorknob") and {"tower", "building"} <= up("lighthouse")
    assert up("cantaloup") == {"melon", "fruit"}
    # WordNet pairs that do not hold for the classes as defined stay apart
    assert "cake" not in up("cookie") and "pot" not in up("teapot")
    assert "toy" in up("balloon") and "balloon" not in up("hot-air_balloon")


def test_lvis_no_pillow_is_no_negative_of_pillow_and_cushion(bigdet):
    # a planted LVIS image: "no pillow" verified, nothing said about cushions (merged into
    # pillow); a second one with both verified absent
    images = [("lvis", "p1"), ("lvis", "p2")]
    labels = [
        ("lvis", "p1", "804", "negative"),
        ("lvis", "p2", "804", "negative"),
        ("lvis", "p2", "351", "negative"),
    ]
    mapped, _ = apply(make_dataset(images=images, labels=labels), bigdet)
    pillow = bigdet.class_id("pillow")
    keys = mapped.images.select("image_id", "source_image_id")
    got = mapped.image_labels.join(keys, on="image_id").select("source_image_id", "label", "status")
    assert got.rows() == [("p2", pillow, "negative")]


def statuses(mapped: DetDataset, label: int) -> dict[str, str]:
    """{source image key: status} of ``label``."""
    keys = mapped.images.select("image_id", "source_image_id")
    rows = mapped.image_labels.filter(pl.col("label") == label).join(keys, on="image_id")
    return dict(rows.select("source_image_id", "status").iter_rows())


def test_openimages_no_wheel_says_nothing_about_bicycle_wheels(bigdet):
    # OpenImages does not file Bicycle wheel under Wheel, so "no Wheel" (negatives run down
    # its hierarchy only) and an exhaustive Wheel say nothing about bicycle wheels
    wheel, bicycle_wheel, person = "/m/083wq", "/m/01bqk0", "/m/01g317"
    ds = make_dataset(
        images=[("openimages", k) for k in ("o1", "o2", "o3", "o4", "o5")],
        boxes=[("openimages", "o2", bicycle_wheel), ("openimages", "o4", wheel)],
        labels=[
            ("openimages", "o1", wheel, "negative"),  # nothing said about bicycle wheels
            ("openimages", "o2", wheel, "negative"),  # bicycle wheels boxed: complete
            ("openimages", "o3", wheel, "negative"),
            ("openimages", "o3", bicycle_wheel, "negative"),  # both absent: no wheel
            ("openimages", "o4", wheel, "positive"),  # bicycle wheels not looked for
            ("openimages", "o5", person, "negative"),  # Man, Woman, ... are under Person
        ],
    )
    mapped, report = apply(ds, bigdet)
    assert statuses(mapped, bigdet.class_id("wheel")) == {"o3": "negative", "o4": "not_exhaustive"}
    assert statuses(mapped, bigdet.class_id("person")) == {"o5": "negative"}
    lost = report.filter(pl.col("reason") == NEGATIVE_NOT_IMPLIED)
    assert lost.select("source_label", "images").rows() == [(wheel, 2)]
    assert report.filter(pl.col("reason") == CONFLICT).height == 0  # o2 is no conflict


def test_lvis_kinds_beside_their_class_make_part_of_it(bigdet):
    # LVIS has no hierarchy and boxes polo shirts, jerseys, blouses ... apart from shirts:
    # "no shirt" is a negative of shirt only where every one of them was verified absent
    lvis = bigdet.feeding("shirt").filter(pl.col("source") == "lvis")
    assert set(lvis["relation"]) == {"exact", "merge"} and lvis.height > 2
    exact = lvis.filter(pl.col("relation") == "exact")["source_label"].item()
    labels = [("lvis", "s1", exact, "negative")]
    labels += [("lvis", "s2", sl, "negative") for sl in lvis["source_label"]]
    mapped, _ = apply(make_dataset(images=[("lvis", "s1"), ("lvis", "s2")], labels=labels), bigdet)
    assert statuses(mapped, bigdet.class_id("shirt")) == {"s2": "negative"}
