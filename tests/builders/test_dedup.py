"""Image and box dedup on generated photos with planted copies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from detforge import schema
from detforge.builders.dedup import DedupConfig, dedup, hash_images, synth
from detforge.builders.dedup.engines import EngineError, run_batches
from detforge.builders.dedup.mih import hamming
from detforge.builders.dedup.phash import hash_batch
from detforge.dataset import DetDataset

CATEGORIES = pl.DataFrame({"id": [0, 1, 2, 3, 4], "name": ["cat", "dog", "car", "tree", "cup"]})


def _image(source: str, sid: str, split: str, img: np.ndarray) -> dict:
    h, w = img.shape[:2]
    return {
        "image_id": schema.stable_id(source, sid),
        "source": source,
        "source_image_id": sid,
        "file_name": f"{split}/{sid}.jpg",
        "width": w,
        "height": h,
        "split": split,
    }


def _box(image: dict, key: str, label: int, bbox: list[float]) -> dict:
    return {
        "image_id": image["image_id"],
        "object_id": schema.stable_id(image["source"], key),
        "source": image["source"],
        "source_label": str(label),
        "label": label,
        "bbox": bbox,
        "area": (bbox[2] - bbox[0]) * (bbox[3] - bbox[1]) * image["width"] * image["height"],
    }


def build_dataset(root: Path) -> tuple[DetDataset, dict[str, dict]]:
    """Planted cases (name -> image row); see each comment for the expectation."""
    rng = np.random.default_rng(7)
    p = {name: synth.photo(rng) for name in ("a", "b", "c", "d", "v", "x")}
    plain = {
        # kept (objects365) + a resized, re-encoded OpenImages near copy: merged, boxes carried
        "a": ("objects365", "a", "train", p["a"], 90),
        "a_small": ("openimages", "a_small", "train", synth.resized(p["a"], 0.5), 70),
        # kept (objects365) + a byte-identical COCO copy: merged
        "b": ("objects365", "b", "train", p["b"], 90),
        "b_copy": ("coco", "b_copy", "train", p["b"], 90),
        # kept + a 2 % cropped OpenImages copy: grouped, removed, boxes not carried
        "c": ("objects365", "c", "train", p["c"], 90),
        "c_crop": ("openimages", "c_crop", "train", synth.cropped(p["c"], 0.02), 90),
        # look-alike: the same photo mirrored is another image, never merged
        "d": ("objects365", "d", "train", p["d"], 90),
        "d_mirror": ("coco", "d_mirror", "train", p["d"][:, ::-1], 90),
        # a val image and its train near copy: other splits are never grouped
        "v": ("objects365", "v", "val", p["v"], 90),
        "v_train": ("openimages", "v_train", "train", synth.brightened(p["v"], 10), 85),
        "x": ("coco", "x", "train", p["x"], 90),
    }
    rows = {}
    for name, (source, sid, split, img, quality) in plain.items():
        row = _image(source, sid, split, img)
        synth.save(img, root / source / row["file_name"], quality=quality)
        rows[name] = row
    objects = [
        _box(rows["a"], "a/0", 0, [0.1, 0.1, 0.5, 0.5]),
        _box(rows["a"], "a/1", 1, [0.6, 0.6, 0.9, 0.9]),
        _box(rows["a_small"], "a_small/0", 0, [0.11, 0.1, 0.5, 0.51]),  # merges into a/0
        _box(rows["a_small"], "a_small/1", 2, [0.2, 0.6, 0.4, 0.9]),  # carried
        _box(rows["a_small"], "a_small/2", 1, [0.1, 0.6, 0.3, 0.9]),  # same label, no overlap
        _box(rows["b"], "b/0", 2, [0.3, 0.3, 0.6, 0.6]),
        _box(rows["b_copy"], "b_copy/0", 1, [0.05, 0.05, 0.25, 0.35]),
        _box(rows["c"], "c/0", 0, [0.2, 0.2, 0.4, 0.4]),
        _box(rows["c_crop"], "c_crop/0", 0, [0.2, 0.2, 0.4, 0.4]),
        _box(rows["d_mirror"], "d_mirror/0", 3, [0.5, 0.5, 0.7, 0.7]),
    ]
    image_labels = pl.DataFrame(
        {
            "image_id": [rows["a_small"]["image_id"]] * 2 + [rows["c_crop"]["image_id"]],
            "source": ["openimages"] * 3,
            "source_label": ["3", "4", "3"],
            "label": [3, 4, 3],
            "status": ["positive", "negative", "positive"],
        }
    )
    label_spaces = pl.DataFrame(
        {
            "source": ["objects365"] * 4 + ["coco"] * 2,
            "source_label": ["0", "1", "2", "3", "0", "1"],
            "label": [0, 1, 2, 3, 0, 1],
        }
    )
    dataset = DetDataset(
        images=pl.DataFrame(list(rows.values())),
        objects=pl.DataFrame(objects),
        image_labels=image_labels,
        label_spaces=label_spaces,
        categories=CATEGORIES,
        roots={s: str(root / s) for s in ("objects365", "openimages", "coco")},
    )
    return dataset, rows


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("dedup")
    dataset, rows = build_dataset(root)
    out, report = dedup(dataset, DedupConfig(), engine="process", workers=1)
    return dataset, rows, out, report


def _ids(rows: dict, *names: str) -> set[int]:
    return {rows[n]["image_id"] for n in names}


def test_groups_kept_by_priority_and_copies_removed(planted) -> None:
    dataset, rows, out, report = planted
    assert out.validate() == []
    groups = report.filter(pl.col("action") != "unhashed")
    by_group = groups.group_by("dup_group").agg(pl.col("image_id").sort()).rows()
    expected = {
        rows["a"]["image_id"]: sorted(_ids(rows, "a", "a_small")),
        rows["b"]["image_id"]: sorted(_ids(rows, "b", "b_copy")),
        rows["c"]["image_id"]: sorted(_ids(rows, "c", "c_crop")),
    }
    assert dict(by_group) == expected
    actions = dict(groups.select("image_id", "action").rows())
    assert actions[rows["a_small"]["image_id"]] == "merged"
    assert actions[rows["b_copy"]["image_id"]] == "merged"
    assert actions[rows["c_crop"]["image_id"]] == "removed_cropped"
    exact = dict(groups.select("image_id", "exact").rows())
    assert exact[rows["b_copy"]["image_id"]] and not exact[rows["a_small"]["image_id"]]
    kept = set(out.images["image_id"].to_list())
    assert kept == set(dataset.images["image_id"]) - _ids(rows, "a_small", "b_copy", "c_crop")
    dup = dict(out.images.select("image_id", "dup_group").rows())
    assert dup[rows["a"]["image_id"]] == rows["a"]["image_id"]
    assert dup[rows["x"]["image_id"]] is None
    assert out.images["phash"].null_count() == 0 and out.images["sha256"].null_count() == 0


def test_look_alikes_and_cross_split_copies_not_merged(planted) -> None:
    _, rows, out, report = planted
    kept = set(out.images["image_id"].to_list())
    assert _ids(rows, "d", "d_mirror", "v", "v_train") <= kept
    assert not set(report["image_id"].to_list()) & _ids(rows, "d", "d_mirror", "v", "v_train")
    phash = dict(out.images.select("image_id", "phash").rows())
    d, m = (phash[i] for i in (rows["d"]["image_id"], rows["d_mirror"]["image_id"]))
    assert hamming(np.array([d], np.uint64), np.array([m], np.uint64))[0] > 6
    v, vt = (phash[i] for i in (rows["v"]["image_id"], rows["v_train"]["image_id"]))
    assert hamming(np.array([v], np.uint64), np.array([vt], np.uint64))[0] <= 6


def test_boxes_carried_with_same_normalised_coordinates(planted) -> None:
    dataset, rows, out, _ = planted
    carried_id = schema.stable_id("openimages", "a_small/1")
    before = dataset.objects.filter(pl.col("object_id") == carried_id).row(0, named=True)
    after = out.objects.filter(pl.col("object_id") == carried_id).row(0, named=True)
    assert after["image_id"] == rows["a"]["image_id"]
    assert after["origin_image_id"] == rows["a_small"]["image_id"]
    assert after["bbox"] == before["bbox"]
    assert after["area"] == pytest.approx(before["area"] * 4, rel=1e-5)  # half-size copy
    coco_box = out.objects.filter(pl.col("object_id") == schema.stable_id("coco", "b_copy/0"))
    assert coco_box["image_id"].to_list() == [rows["b"]["image_id"]]


def test_cropped_copy_boxes_and_labels_dropped_with_reason(planted) -> None:
    _, rows, out, report = planted
    crop_id = rows["c_crop"]["image_id"]
    assert out.objects.filter(pl.col("origin_image_id") == crop_id).height == 0
    assert schema.stable_id("openimages", "c_crop/0") not in out.objects["object_id"].to_list()
    assert crop_id not in out.image_labels["image_id"].to_list()
    row = report.filter(pl.col("image_id") == crop_id).row(0, named=True)
    assert row["boxes_dropped"] == 1 and row["boxes_carried"] == 0
    assert "different framing" in row["reason"] and "objects365/c" in row["reason"]


def test_cross_source_boxes_merge_with_provenance(planted) -> None:
    _, rows, out, report = planted
    on_a = out.objects.filter(pl.col("image_id") == rows["a"]["image_id"])
    keeper = on_a.filter(pl.col("object_id") == schema.stable_id("objects365", "a/0"))
    assert keeper["merged_object_ids"].to_list() == [[schema.stable_id("openimages", "a_small/0")]]
    assert schema.stable_id("openimages", "a_small/0") not in out.objects["object_id"].to_list()
    # same label, no overlap: both stay
    assert on_a.filter(pl.col("label") == 1).height == 2
    assert on_a.height == 4
    kept_row = report.filter(pl.col("image_id") == rows["a"]["image_id"]).row(0, named=True)
    assert kept_row["boxes_merged"] == 1
    assert out.meta["dedup"]["boxes_merged"] == 1


def test_label_spaces_and_image_labels_combined(planted) -> None:
    _, rows, out, _ = planted
    labels = out.image_labels
    a, b = rows["a"]["image_id"], rows["b"]["image_id"]
    moved = labels.filter(pl.col("image_id") == a).select("label", "status").sort("label").rows()
    assert moved == [(3, "positive"), (4, "negative")]
    # coco's label space {0, 1} now applies to b: 1 has a carried box, 0 becomes a negative
    derived = labels.filter(pl.col("image_id") == b).select("source", "label", "status").rows()
    assert derived == [("coco", 0, "negative")]


def test_merge_is_deterministic(tmp_path: Path, planted) -> None:
    dataset, _, out, report = planted
    again, report2 = dedup(dataset, DedupConfig(), workers=1)
    for table in schema.TABLES:
        assert getattr(again, table).equals(getattr(out, table)), table
    assert report2.equals(report)


def test_unreadable_image_is_reported_not_dropped(tmp_path: Path) -> None:
    dataset, rows = build_dataset(tmp_path)
    (tmp_path / "coco" / rows["x"]["file_name"]).unlink()
    out, report = dedup(dataset, DedupConfig(), workers=1)
    assert rows["x"]["image_id"] in out.images["image_id"].to_list()
    row = report.filter(pl.col("action") == "unhashed").row(0, named=True)
    assert row["image_id"] == rows["x"]["image_id"] and "unreadable" in row["reason"]


def test_hash_cache_skips_unchanged_files(tmp_path: Path, monkeypatch) -> None:
    from detforge.builders.dedup import phash

    rng = np.random.default_rng(1)
    paths = [synth.save(synth.photo(rng, 96, 64), tmp_path / f"{k}.jpg") for k in range(3)]
    first = hash_images(paths, engine="process", workers=1, cache_dir=tmp_path / "cache")
    read = []
    real = phash.hash_file
    monkeypatch.setattr(phash, "hash_file", lambda p: read.append(p) or real(p))
    again = hash_images(paths, engine="process", workers=1, cache_dir=tmp_path / "cache")
    assert again.equals(first) and read == []
    synth.save(synth.photo(rng, 96, 64), paths[1])
    changed = hash_images(paths, engine="process", workers=1, cache_dir=tmp_path / "cache")
    assert read == [str(paths[1])]
    assert changed["sha256"][1] != first["sha256"][1] and changed["sha256"][0] == first["sha256"][0]


def test_priority_decides_kept_copy(tmp_path: Path) -> None:
    dataset, rows = build_dataset(tmp_path)
    config = DedupConfig(priority=("coco", "openimages", "objects365"))
    out, _ = dedup(dataset, config, workers=1)
    kept = set(out.images["image_id"].to_list())
    assert rows["b_copy"]["image_id"] in kept and rows["b"]["image_id"] not in kept
    assert rows["a_small"]["image_id"] in kept and rows["a"]["image_id"] not in kept


def test_process_pool_equals_serial(tmp_path: Path, monkeypatch) -> None:
    from detforge.builders.dedup import engines

    pools = []

    class Spy(engines.ProcessPoolExecutor):
        def __init__(self, *args, **kwargs):
            pools.append(kwargs["max_workers"])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(engines, "ProcessPoolExecutor", Spy)
    monkeypatch.setattr(engines, "POOL_MIN_ITEMS", 0)
    dataset, _ = build_dataset(tmp_path)
    paths = [str(tmp_path / s / f) for s, f in dataset.images.select("source", "file_name").rows()]
    serial = hash_images(paths, workers=1)
    pooled = run_batches(hash_batch, paths, engine="process", workers=2, batch_size=3)
    assert pools == [2]
    assert pooled.equals(serial.drop("bytes")) and serial["phash"].null_count() == 0


def test_ray_equals_process(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    dataset, _ = build_dataset(tmp_path)
    by_process, report_p = dedup(dataset, DedupConfig(), engine="process", workers=2)
    by_ray, report_r = dedup(dataset, DedupConfig(), engine="ray", workers=2)
    for table in schema.TABLES:
        assert getattr(by_ray, table).equals(getattr(by_process, table)), table
    assert report_r.equals(report_p) and report_p.height == 6


def test_unknown_engine_is_a_clear_error() -> None:
    with pytest.raises(EngineError, match="unknown engine 'spark'"):
        run_batches(lambda batch: batch, ["x"], engine="spark")


def test_matching_off_reads_no_file(tmp_path: Path, monkeypatch) -> None:
    from detforge.builders.dedup import phash

    dataset, _ = build_dataset(tmp_path)
    monkeypatch.setattr(phash, "hash_file", lambda path: pytest.fail(f"read {path}"))
    out, report = dedup(dataset, DedupConfig(exact=False, phash_distance=-1), workers=1)
    assert report.height == 0
    assert out.images.drop("sha256", "phash").equals(dataset.images.drop("sha256", "phash"))
    assert out.objects.equals(dataset.objects)


def test_only_reading_a_file_loads_opencv(tmp_path: Path) -> None:
    # OpenCV is ~35 MiB resident: annotation-only builds (nothing to hash) never load it
    import subprocess
    import sys

    photo = synth.save(synth.photo(np.random.default_rng(3), 64, 48), tmp_path / "a.jpg")
    code = (
        "import sys, detforge.builders.pipeline, detforge.builders.decontaminate\n"
        "from detforge.builders.dedup import hash_images\n"
        "hash_images([])\n"
        "print('cv2' in sys.modules)\n"
        "hash_images([sys.argv[1]])\n"
        "print('cv2' in sys.modules)"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, str(photo)], capture_output=True, text=True, check=True
    )
    assert run.stdout.split() == ["False", "True"]


def test_bad_config_is_a_clear_error() -> None:
    from detforge.builders.dedup import DedupError

    with pytest.raises(DedupError, match="phash_distance must be <= 63"):
        DedupConfig(phash_distance=64)
    with pytest.raises(DedupError, match="box_iou"):
        DedupConfig(box_iou=0)
