"""Taxonomy CSV I/O: verbatim strings, round trip, clear errors."""

from __future__ import annotations

import polars as pl
import pytest
from taxonomy_fixtures import make_taxonomy

from detforge.errors import InputError
from detforge.taxonomy import TaxonomyError, available, fingerprint, load, save
from detforge.taxonomy.io import CLASSES_COLUMNS, MAPPING_COLUMNS


def test_round_trip_keeps_raw_strings(tmp_path):
    tax = make_taxonomy()
    save(tax, tmp_path / "toy")
    again = load(tmp_path / "toy")
    assert again.name == "toy"
    assert again.classes.equals(tax.classes)
    assert again.mapping.equals(tax.mapping)
    # the trailing space of a raw source name survives the CSV
    assert "Shelf " in again.mapping["source_name"].to_list()
    assert again.get("car").parents == (0,)
    assert again.get("wheel").part_of == (1,)
    assert again.class_id("automobile") == 1


def test_quoted_fields_and_lists(tmp_path):
    d = tmp_path / "t"
    d.mkdir()
    (d / "classes.csv").write_text(
        ",".join(CLASSES_COLUMNS)
        + '\n0,thing,,,"a thing, any",,,\n1,cup,mug|beaker,cup.n.01,,thing,,f\n'
    )
    (d / "mapping.csv").write_text(
        ",".join(MAPPING_COLUMNS)
        + '\nsrc,7,"Cup, tea ",cup,exact,manual,0.5,\nsrc,8, x,,drop,manual,,"why, so"\n'
    )
    tax = load(d)
    assert tax.classes["definition"].to_list() == ["a thing, any", None]
    assert tax.get("cup").synonyms == ("mug", "beaker")
    assert tax.mapping["source_name"].to_list() == ["Cup, tea ", " x"]
    assert tax.mapping["label"].to_list() == [1, None]
    assert tax.mapping["note"].to_list() == [None, "why, so"]


@pytest.mark.parametrize(
    ("classes", "mapping", "match"),
    [
        (
            "0,a,,,,,,\n1,b,,,,zzz,,\n",
            None,
            r"classes.csv, record line 3, field 'parents': unknown class name 'zzz'",
        ),
        ("0,a,,,,,,\n2,b,,,,,,\n", None, r"record line 3, field 'id'"),
        ("0,a,,,,,,\n1,a,,,,,,\n", None, r"field 'name': duplicate class name 'a'"),
        (
            "0,a,,,,,,\n",
            "s,1,x,nope,exact,manual,,\n",
            r"mapping.csv, record line 2, field 'label': unknown class name 'nope'",
        ),
        ("0,a,,,,,,\n", "s,1,x,a,exact,manual,high,\n", r"field 'score': not a number: 'high'"),
    ],
)
def test_bad_rows_name_file_row_field(tmp_path, classes, mapping, match):
    (tmp_path / "classes.csv").write_text(",".join(CLASSES_COLUMNS) + "\n" + classes)
    if mapping is not None:
        (tmp_path / "mapping.csv").write_text(",".join(MAPPING_COLUMNS) + "\n" + mapping)
    with pytest.raises(InputError, match=match):
        load(tmp_path)


def test_bad_header(tmp_path):
    (tmp_path / "classes.csv").write_text("id,name\n0,a\n")
    with pytest.raises(InputError, match="header"):
        load(tmp_path)


def test_shipped_and_unknown():
    assert "bigdet-v1" in available()
    tax = load("bigdet-v1")
    assert len(tax) == 600 and tax.names[0] == "accordion"
    with pytest.raises(TaxonomyError, match="no taxonomy 'nope'"):
        load("nope")
    with pytest.raises(TaxonomyError, match="no class"):
        tax.class_id("no such class")


def test_label_filled_from_name():
    tax = make_taxonomy()
    row = tax.mapping.filter(pl.col("source_name") == "Limousine").row(0, named=True)
    assert (row["label"], row["label_name"]) == (1, "car")


def test_fingerprint_follows_content_not_file_spelling(tmp_path):
    tax = make_taxonomy()
    first = fingerprint(tax)
    assert len(first) == 64 and fingerprint(make_taxonomy()) == first
    # written and read back, with CRLF line endings: the same content, the same fingerprint
    folder = save(tax, tmp_path / "toy")
    for name in ("classes.csv", "mapping.csv"):
        path = folder / name
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert fingerprint(load(folder)) == first
    # one mapping row changed: another revision
    changed = tax.replace(
        mapping=tax.mapping.with_columns(
            pl.when(pl.col("source_name") == "Puppy")
            .then(pl.lit("drop"))
            .otherwise("relation")
            .alias("relation")
        )
    )
    assert fingerprint(changed) != first
    # one is_a edge added: another revision
    edged = tax.replace(
        classes=tax.classes.with_columns(
            pl.when(pl.col("name") == "dog")
            .then(pl.lit([0], pl.List(pl.Int32)))
            .otherwise("parents")
            .alias("parents")
        )
    )
    assert fingerprint(edged) != first
