"""The local checks that must pass before anything is sent to a hub."""

from __future__ import annotations

from detforge.exports.hub_checks import check_layout
from tests.upload.conftest import CARD_BODY, make_layout


def _failed(checks):
    return {c.name: c.detail for c in checks if not c.ok}


def test_good_layout_passes_every_check(hub_layout):
    checks = check_layout(hub_layout)
    assert _failed(checks) == {}
    names = {c.name for c in checks}
    assert {"card YAML parses", "configs", "licenses", "citations", "task_categories",
            "size_categories", "taxonomy files", "images embedded",
            "load_dataset"} <= names  # fmt: skip
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


def _without_line(text: str, start: str) -> str:
    lines = text.splitlines(keepends=True)
    kept = [line for line in lines if not line.startswith(start)]
    assert len(kept) == len(lines) - 1, f"exactly one line starts with {start!r}"
    return "".join(kept)


def test_missing_source_license_and_citation_fail(hub_layout):
    card = (hub_layout / "README.md").read_text()
    assert CARD_BODY in card
    broken = _without_line(card, "| openimages |")
    broken = _without_line(broken, "@article{kuznetsova2020open,")
    # the words are still elsewhere in the card: only the structured places count
    broken += "\nOpen Images (openimages) annotations are CC BY 4.0.\n"
    (hub_layout / "README.md").write_text(broken)
    failed = _failed(check_layout(hub_layout, load=False))
    assert "openimages" in failed["licenses"] and "## Licenses" in failed["licenses"]
    assert "openimages" in failed["citations"]
    assert set(failed) == {"licenses", "citations"}


def test_license_row_must_name_the_license(hub_layout):
    card = (hub_layout / "README.md").read_text()
    row = next(line for line in card.splitlines() if line.startswith("| objects365 |"))
    (hub_layout / "README.md").write_text(card.replace(row, "| objects365 | ask the authors | |"))
    assert "objects365" in _failed(check_layout(hub_layout, load=False))["licenses"]


def test_images_referenced_by_path_fail(tmp_path):
    layout = make_layout(tmp_path / "paths", embed=False)
    failed = _failed(check_layout(layout))
    detail = failed["images embedded"]
    assert "train: 3 of 3 images have no bytes" in detail and "val: 2 of 2" in detail
    assert str(layout / "images" / "train-0.png") in detail
    assert "embed_images=true" in detail
    assert set(failed) == {"images embedded"}


def test_images_check_reads_the_column_when_the_footer_has_no_counts(tmp_path):
    import pyarrow.parquet as pq

    layout = make_layout(tmp_path / "nostats", embed=False)
    for shard in (layout / "data").glob("*.parquet"):
        table = pq.read_table(shard)
        pq.write_table(table, shard, write_statistics=False)
        assert not pq.read_metadata(shard).row_group(0).column(0).is_stats_set
    assert "3 of 3 images have no bytes" in _failed(check_layout(layout))["images embedded"]


def test_row_count_disagreeing_with_card_fails(tmp_path):
    layout = make_layout(
        tmp_path / "c", dataset_info={"splits": [{"name": "train", "num_examples": 99}]}
    )
    failed = _failed(check_layout(layout))
    assert "card says 99" in failed["load_dataset"]


def test_missing_taxonomy_files_fail(hub_layout):
    (hub_layout / "taxonomy" / "mapping.csv").unlink()
    assert "taxonomy/mapping.csv" in _failed(check_layout(hub_layout, load=False))["taxonomy files"]
