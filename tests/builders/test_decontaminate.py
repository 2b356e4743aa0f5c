"""Decontamination: train copies of evaluation images are dropped and reported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from detforge import schema
from detforge.builders.decontaminate import decontaminate
from detforge.builders.dedup import DedupConfig, dedup, synth
from detforge.dataset import DetDataset


def _dataset(root: Path, source: str, items: list[tuple[str, str, np.ndarray]]) -> DetDataset:
    rows, boxes = [], []
    for sid, split, img in items:
        file_name = f"{split}/{sid}.jpg"
        synth.save(img, root / file_name)
        image_id = schema.stable_id(source, sid)
        h, w = img.shape[:2]
        rows.append(
            {
                "image_id": image_id,
                "source": source,
                "source_image_id": sid,
                "file_name": file_name,
                "width": w,
                "height": h,
                "split": split,
            }
        )
        boxes.append(
            {
                "image_id": image_id,
                "object_id": schema.stable_id(source, f"{sid}/0"),
                "source": source,
                "source_label": "1",
                "label": 0,
                "bbox": [0.1, 0.1, 0.5, 0.5],
            }
        )
    return DetDataset(
        images=pl.DataFrame(rows),
        objects=pl.DataFrame(boxes),
        image_labels=pl.DataFrame(
            {"image_id": [rows[0]["image_id"]], "source": [source], "status": ["positive"]}
        ),
        roots={source: str(root)},
    )


def test_train_copies_of_eval_images_are_dropped(tmp_path: Path) -> None:
    rng = np.random.default_rng(21)
    p = [synth.photo(rng) for _ in range(5)]
    holdout = _dataset(tmp_path / "coco_val", "coco", [("h1", "val", p[0])])
    dataset = _dataset(
        tmp_path / "o365",
        "objects365",
        [
            ("t_exact", "train", p[0]),  # same pixels as the holdout image, re-saved
            ("t_near", "train", synth.brightened(synth.resized(p[1], 0.5), 8)),  # copy of v1
            ("t_clean", "train", p[2]),
            ("t_mirror", "train", p[1][:, ::-1]),  # look-alike of v1, not a copy
            ("v1", "val", p[1]),
            ("v2", "val", p[3]),
        ],
    )
    # the exact copy is a byte copy of the holdout file
    (tmp_path / "o365" / "train" / "t_exact.jpg").write_bytes(
        (tmp_path / "coco_val" / "val" / "h1.jpg").read_bytes()
    )
    out, report = decontaminate(dataset, {"coco_val2017": holdout}, DedupConfig(), workers=1)
    dropped = {schema.stable_id("objects365", s) for s in ("t_exact", "t_near")}
    assert set(report["image_id"].to_list()) == dropped
    assert set(out.images["image_id"].to_list()) == set(dataset.images["image_id"]) - dropped
    assert not set(out.objects["image_id"].to_list()) & dropped
    assert not set(out.image_labels["image_id"].to_list()) & dropped
    rows = {r["source_image_id"]: r for r in report.iter_rows(named=True)}
    exact = rows["t_exact"]
    assert exact["matched_set"] == "coco_val2017" and exact["exact"] and exact["distance"] == 0
    assert exact["matched_image_id"] == schema.stable_id("coco", "h1")
    near = rows["t_near"]
    assert near["matched_set"] == "split:val" and not near["exact"]
    assert near["matched_source_image_id"] == "v1" and 0 <= near["distance"] <= 6
    assert "near copy" in near["reason"] and "objects365/v1" in near["reason"]
    assert out.meta["decontaminate"]["dropped"] == 2


def test_exact_only_and_reuses_dedup_hashes(tmp_path: Path, monkeypatch) -> None:
    from detforge.builders.dedup import phash

    rng = np.random.default_rng(22)
    p = [synth.photo(rng, 160, 120) for _ in range(2)]
    dataset = _dataset(
        tmp_path,
        "objects365",
        [("t", "train", synth.resized(p[0], 0.5)), ("v", "val", p[0]), ("u", "train", p[1])],
    )
    deduped, _ = dedup(dataset, DedupConfig(), workers=1)
    monkeypatch.setattr(phash, "hash_file", lambda path: (_ for _ in ()).throw(AssertionError))
    exact_only = DedupConfig(phash_distance=-1)
    _, report = decontaminate(deduped, {}, exact_only, workers=1)
    assert report.height == 0
    _, report = decontaminate(deduped, {}, DedupConfig(), workers=1)
    assert report["source_image_id"].to_list() == ["t"]
