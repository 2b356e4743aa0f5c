"""The report stage: dedup/decontamination reports beside report.md (read by detforge browse
without the stage cache), and a report that says when images could not be checked."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from detforge.builders.pipeline import build
from detforge.builders.recipe import load_recipe
from detforge.inspection.frames import build_reports


def _build(root: Path, out: Path):
    recipe = load_recipe(root / "tiny.yaml", ["exports.hub.enabled=false", "exports.coco=false"])
    return build(recipe, out, root=root, workers=1)


def test_report_folder_holds_the_stage_reports(tiny_build: Path) -> None:
    report = tiny_build / "report"
    dups = pl.read_parquet(report / "dup_groups.parquet")
    removed = pl.read_parquet(report / "contamination.parquet")
    stage = {
        name: pl.read_parquet(next(tiny_build.glob(f".stages/{prefix}-*/reports/{name}.parquet")))
        for name, prefix in (("dup_groups", "dedup"), ("contamination", "decontaminate"))
    }
    assert_frame_equal(dups, stage["dup_groups"])
    assert_frame_equal(removed, stage["contamination"])
    assert sorted(removed["source_image_id"]) == ["100", "101"]
    text = (report / "report.md").read_text()
    assert "### Hashing coverage\n\nEvery image was hashed and fully searched." in text


def test_browse_reads_the_reports_without_the_stage_cache(tiny_root: Path, tmp_path: Path):
    out = tmp_path / "out"
    result = _build(tiny_root, out)
    shutil.rmtree(out / ".stages")
    found = build_reports(out)
    assert set(found) == {"dup_groups", "contamination"}
    assert_frame_equal(found["contamination"], result.reports["contamination"])
    assert_frame_equal(found["dup_groups"], result.reports["dup_groups"])
    assert found["contamination"].height == 2


def test_report_shows_images_that_could_not_be_hashed(tiny_root: Path, tmp_path: Path):
    root = tmp_path / "root"
    shutil.copytree(tiny_root, root)
    # the planted contaminated train images' evidence becomes undecodable: the train copy of
    # val image 200, and the holdout original of train image 101
    (root / "src" / "train2017" / "000000000100.jpg").write_bytes(b"not a jpeg")
    (root / "evalset" / "val2017" / "000000000900.jpg").write_bytes(b"garbage")
    result = _build(root, tmp_path / "out")
    assert result.dataset.meta["decontaminate"]["unhashed_train"] == 1
    assert result.dataset.meta["decontaminate"]["unhashed_eval"] == 1
    assert result.dataset.meta["dedup"]["unhashed"] == 1
    text = (tmp_path / "out" / "report" / "report.md").read_text()
    contamination = text.split("### Contamination removed\n")[1].split("###")[0]
    # nothing was found, but not everything was checked: the report must not just say none
    assert "_none found_\n" not in contamination
    assert "_none found among the checked images_" in contamination
    coverage = text.split("### Hashing coverage\n")[1].split("###")[0]
    assert "**Incomplete**" in coverage
    assert "| dedup | images not hashed (not deduplicated) | 1 |" in coverage
    assert "| decontaminate | train images not hashed (not checked) | 1 |" in coverage
    assert "| decontaminate | eval images not hashed (not matched) | 1 |" in coverage
    dups = pl.read_parquet(tmp_path / "out" / "report" / "dup_groups.parquet")
    unhashed = dups.filter(pl.col("action") == "unhashed")
    assert unhashed["source_image_id"].to_list() == ["100"]
