"""The local checks that must pass before anything is sent to a hub."""

from __future__ import annotations

from detforge.builders.hub_checks import check_layout
from tests.upload.conftest import CARD_BODY, make_layout


def _failed(checks):
    return {c.name: c.detail for c in checks if not c.ok}


def test_good_layout_passes_every_check(hub_layout):
    checks = check_layout(hub_layout)
    assert _failed(checks) == {}
    names = {c.name for c in checks}
    assert {"card YAML parses", "configs", "licenses", "citations", "task_categories",
            "size_categories", "taxonomy files", "load_dataset"} <= names  # fmt: skip
    load = next(c for c in checks if c.name == "load_dataset")
    assert "train: 3 rows" in load.detail and "val: 2 rows" in load.detail


def test_card_without_front_matter_fails(hub_layout):
    (hub_layout / "README.md").write_text("# no yaml here\n")
    assert "card YAML parses" in _failed(check_layout(hub_layout))


def test_broken_yaml_fails_with_reason(hub_layout):
    (hub_layout / "README.md").write_text("---\nlicense: [unclosed\n---\nbody\n")
    failed = _failed(check_layout(hub_layout))
    assert "does not parse" in failed["card YAML parses"]


def test_missing_keys_each_fail(tmp_path):
    layout = make_layout(tmp_path / "a", task_categories=None, size_categories=None, license=None)
    failed = _failed(check_layout(layout, load=False))
    assert {"task_categories", "size_categories", "licenses"} <= set(failed)


def test_missing_configs_fail(tmp_path):
    layout = make_layout(tmp_path / "b", configs=None)
    assert "configs" in _failed(check_layout(layout))


def test_missing_source_license_and_citation_fail(hub_layout):
    card = (hub_layout / "README.md").read_text()
    broken = card.replace("- Open Images annotations: CC BY 4.0.\n", "").replace(
        "@article{kuznetsova2020open, title={The Open Images Dataset V4}}\n", ""
    )
    assert broken != card and CARD_BODY in card
    (hub_layout / "README.md").write_text(broken)
    failed = _failed(check_layout(hub_layout, load=False))
    assert "openimages" in failed["licenses"]
    assert "openimages" in failed["citations"]


def test_row_count_disagreeing_with_card_fails(tmp_path):
    layout = make_layout(
        tmp_path / "c", dataset_info={"splits": [{"name": "train", "num_examples": 99}]}
    )
    failed = _failed(check_layout(layout))
    assert "card says 99" in failed["load_dataset"]


def test_missing_taxonomy_files_fail(hub_layout):
    (hub_layout / "taxonomy" / "mapping.csv").unlink()
    assert "taxonomy/mapping.csv" in _failed(check_layout(hub_layout, load=False))["taxonomy files"]
