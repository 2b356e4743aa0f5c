"""`detforge taxonomy ...` through Typer's test runner."""

from __future__ import annotations

import json

import polars as pl
import pytest
from taxonomy_fixtures import MAPPING, OPENIMAGES_PARENTS, make_taxonomy
from typer.testing import CliRunner

from detforge.cli import app
from detforge.errors import InputError
from detforge.taxonomy import save

runner = CliRunner()


@pytest.fixture
def toy_dir(tmp_path):
    return save(make_taxonomy(), tmp_path / "toy")


def write_sources(root, skip=()):
    """A data root in the sources' layouts with the toy mapping's classes."""
    rows = [m for m in MAPPING if m[:2] not in skip]
    (root / "objects365").mkdir(parents=True)
    (root / "openimages").mkdir()
    (root / "lvis").mkdir()
    cats = [{"id": int(sl), "name": sn} for s, sl, sn, *_ in rows if s == "objects365"]
    (root / "objects365" / "zhiyuan_objv2_val.json").write_text(json.dumps({"categories": cats}))
    lines = [f"{sl},{sn}" for s, sl, sn, *_ in rows if s == "openimages"]
    (root / "openimages" / "class-descriptions-boxable.csv").write_text("\n".join(lines) + "\n")
    mids = {sl for s, sl, *_ in rows if s == "openimages"}
    children: dict[str, list] = {}
    for child, parent in OPENIMAGES_PARENTS.items():
        if {child, parent} <= mids:
            children.setdefault(parent, []).append({"LabelName": child})
    tree = {
        "LabelName": "/m/0bl9f",
        "Subcategory": [{"LabelName": m, "Subcategory": children.get(m, [])} for m in sorted(mids)],
    }
    (root / "openimages" / "bbox_labels_600_hierarchy.json").write_text(json.dumps(tree))
    cats = [
        {
            "id": int(sl),
            "name": sn,
            "synset": f"{sn}.n.01",
            "synonyms": [sn],
            "def": "",
            "frequency": "f",
        }
        for s, sl, sn, *_ in rows
        if s == "lvis"
    ]
    (root / "lvis" / "lvis_v1_val.json").write_text(json.dumps({"categories": cats}))
    return root


def test_show(toy_dir):
    result = runner.invoke(app, ["taxonomy", "show", str(toy_dir)])
    assert result.exit_code == 0, result.output
    assert "toy: 7 classes, 17 mapping rows" in result.output
    assert "sedan" in result.output and "car" in result.output
    one = runner.invoke(app, ["taxonomy", "show", str(toy_dir), "--class", "car"])
    assert one.exit_code == 0, one.output
    assert "1 car" in one.output and "automobile" in one.output and "Limousine" in one.output


def test_validate_clean_and_violations(toy_dir, tmp_path):
    root = write_sources(tmp_path / "data")
    ok = runner.invoke(app, ["taxonomy", "validate", str(toy_dir), "--sources", str(root)])
    assert ok.exit_code == 0, ok.output
    assert "no violations against 17 source classes" in ok.output
    assert "objects365" in ok.output and "lvis" in ok.output

    (root / "lvis" / "lvis_v1_val.json").unlink()
    bad_root = write_sources(tmp_path / "bad", skip={("objects365", "5")})
    extra = tmp_path / "more.csv"
    extra.write_text("/m/new,Newthing\n")
    bad = runner.invoke(
        app,
        [
            "taxonomy",
            "validate",
            str(toy_dir),
            "--sources",
            str(bad_root),
            "--sources",
            f"openimages={extra}",
        ],
    )
    assert bad.exit_code == 1
    assert "mapping row for a class the source does not have" in bad.output
    assert "source class without a mapping row: 'openimages':'/m/new'" in bad.output


def test_validate_unknown_source_file(toy_dir, tmp_path):
    odd = tmp_path / "mystery.json"
    odd.write_text("{}")
    result = runner.invoke(app, ["taxonomy", "validate", str(toy_dir), "--sources", str(odd)])
    assert isinstance(result.exception, InputError)
    assert "FORMAT=PATH" in str(result.exception)


def test_suggest_writes_csv(toy_dir, tmp_path):
    root = write_sources(tmp_path / "data")
    out = tmp_path / "cands.csv"
    result = runner.invoke(
        app,
        [
            "taxonomy",
            "suggest",
            "--source",
            str(root / "lvis" / "lvis_v1_val.json"),
            "--taxonomy",
            str(toy_dir),
            "--no-embeddings",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    cands = pl.read_csv(out, infer_schema=False)
    top = cands.filter(pl.col("rank") == "1").select("source_name", "label").rows()
    assert ("car_(automobile)", "car") in top and ("shelf", "shelf") in top


def test_diff(toy_dir, tmp_path):
    changed = make_taxonomy(
        mapping=[m if m[:2] != ("lvis", "4") else (*m[:3], "vehicle", "parent") for m in MAPPING]
    )
    other = save(changed, tmp_path / "toy2")
    out = tmp_path / "notes.md"
    result = runner.invoke(app, ["taxonomy", "diff", str(toy_dir), str(other), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "## Source classes re-mapped (1)" in out.read_text()
    assert "| lvis | 4 | puppy | dog | vehicle | merge | parent |" in result.output
