"""Federated and LVIS protocols: equal to COCO where every class is exhaustive, ignore
exactly the unannotated detections, equal the `lvis` package's LVISEval, r/c/f bins."""

from __future__ import annotations

import copy

import numpy as np
import polars as pl
import pytest
from evaluate_synth import coco_ground_truth, make_dataset, make_predictions, write_json

from detforge.dataset import DetDataset
from detforge.evaluators import evaluate
from detforge.evaluators.federated import frequency_bins

COMMON = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]


def all_exhaustive(dataset: DetDataset) -> DetDataset:
    sources = dataset.images["source"].unique().sort()
    spaces = pl.DataFrame({"source": sources}).join(
        dataset.categories.select(pl.col("id").alias("label")), how="cross"
    )
    return dataset.replace(
        label_spaces=spaces.with_columns(pl.col("label").cast(pl.String).alias("source_label"))
    )


def close(a: dict, b: dict, keys: list[str]) -> None:
    np.testing.assert_allclose([a[k] for k in keys], [b[k] for k in keys], rtol=0, atol=1e-6)


def test_federated_equals_coco_where_every_class_is_exhaustive(tmp_path):
    dataset = all_exhaustive(make_dataset(5, images=70, classes=20))
    preds = write_json(tmp_path / "p.json", make_predictions(dataset, 5))
    result = evaluate(dataset, preds, protocols=["coco", "federated"])
    coco, fed = result.protocols["coco"], result.protocols["federated"]
    close(coco["overall"], fed["overall"], COMMON)
    for source in coco["per_source"]:
        close(coco["per_source"][source], fed["per_source"][source], COMMON)
    matches = result.matches().sort("pred_index", "object_id", nulls_last=True)
    by = {p: m.drop("protocol") for (p,), m in matches.group_by("protocol")}
    assert by["coco"].equals(by["federated"])


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """objects365 exhaustive; openimages annotated only through image labels, except for
    planted (image, class) pairs on which extra detections are placed: 40 pairs with no
    label at all, 10 verified positive but without a box (present, not boxed)."""
    rng = np.random.default_rng(7)
    dataset = make_dataset(7, images=80, classes=18)
    preds = make_predictions(dataset, 7)
    classes = dataset.categories["id"].to_list()
    oi = dataset.images.filter(pl.col("source") == "openimages")["image_id"].to_list()
    boxes = set(dataset.objects.select("image_id", "label").iter_rows())
    predicted = {(p["image_id"], p["category_id"] - 1) for p in preds}
    free = sorted((i, c) for i in oi for c in classes if (i, c) not in boxes | predicted)
    picked = [free[k] for k in rng.choice(len(free), 50, replace=False)]
    unlabelled, unboxed = picked[:40], picked[40:]
    size = dict(dataset.images.select("image_id", "width").iter_rows())

    def extra(pairs):
        return [
            {
                "image_id": i,
                "category_id": c + 1,
                "score": float(rng.uniform(0.5, 1.0)),
                "bbox": [1.0, 2.0, size[i] / 3, size[i] / 4],
            }
            for i, c in pairs
            for _ in range(int(rng.integers(1, 4)))
        ]

    planted_unlabelled, planted_unboxed = extra(unlabelled), extra(unboxed)
    rows = [(i, c, "negative") for i in oi for c in classes if (i, c) not in boxes | set(picked)]
    rows += [(i, c, "positive") for i, c in sorted(boxes) if i in set(oi) and c % 3 == 0]
    rows += [(i, c, "positive") for i, c in unboxed]
    labels = pl.DataFrame(rows, schema=["image_id", "label", "status"], orient="row")
    labels = labels.with_columns(
        pl.lit("openimages").alias("source"), pl.col("label").cast(pl.String).alias("source_label")
    )
    spaces = pl.DataFrame({"source": "objects365", "label": classes}).with_columns(
        pl.col("label").cast(pl.String).alias("source_label")
    )
    dataset = dataset.replace(image_labels=labels, label_spaces=spaces)
    root = tmp_path_factory.mktemp("planted")
    everything = write_json(root / "all.json", preds + planted_unlabelled + planted_unboxed)
    result = evaluate(dataset, everything, protocols=["coco", "federated"])
    cleaned = evaluate(dataset, write_json(root / "clean.json", preds), protocols=["coco"])
    return preds, len(planted_unlabelled), len(planted_unboxed), result, cleaned


def test_federated_ignores_exactly_the_planted_detections(planted):
    preds, n_unlabelled, n_unboxed, result, cleaned = planted
    close(result.metrics("federated"), cleaned.metrics("coco"), COMMON)
    for source, metrics in cleaned.protocols["coco"]["per_source"].items():
        close(result.protocols["federated"]["per_source"][source], metrics, COMMON)
    # the planted detections do change plain COCO AP: the test is not vacuous
    assert result.metrics("coco")["AP"] < result.metrics("federated")["AP"] - 1e-3
    fed = result.matches().filter(pl.col("protocol") == "federated")
    first = len(preds)
    for reason, planted_range in (
        ("class not annotated on image", range(first, first + n_unlabelled)),
        (
            "class not exhaustively annotated",
            range(first + n_unlabelled, first + n_unlabelled + n_unboxed),
        ),
    ):
        ignored = fed.filter(pl.col("reason") == reason)
        assert sorted(ignored["pred_index"].to_list()) == list(planted_range)


def lvis_case(seed: int) -> tuple[DetDataset, list[dict]]:
    """LVIS-like data: negatives and not-exhaustive classes per image, r/c/f categories,
    two images with more than 300 detections."""
    rng = np.random.default_rng(seed)
    dataset = make_dataset(seed, images=50, classes=24, sources=("lvis",), crowd=0.0)
    classes = dataset.categories["id"].to_list()
    rows = []
    for (image_id,), boxes in dataset.objects.sort("image_id").group_by(
        "image_id", maintain_order=True
    ):
        present = set(boxes["label"].to_list())
        absent = [c for c in classes if c not in present]
        for c in rng.choice(absent, min(len(absent), 8), replace=False):
            rows.append((image_id, int(c), "negative"))
        for c in sorted(present)[: int(rng.integers(0, 2)) + 1]:
            rows.append((image_id, c, "not_exhaustive"))
    labels = pl.DataFrame(rows, schema=["image_id", "label", "status"], orient="row")
    categories = dataset.categories.with_columns(
        pl.Series("frequency", [("r", "c", "f")[c % 3] for c in classes])
    )
    dataset = dataset.replace(
        image_labels=labels.with_columns(
            pl.lit("lvis").alias("source"), pl.col("label").cast(pl.String).alias("source_label")
        ),
        categories=categories,
    )
    preds = make_predictions(dataset, seed, false_positives=8)
    for image_id, width, height in (
        dataset.images.select("image_id", "width", "height").head(2).iter_rows()
    ):
        for _ in range(350):
            w, h = rng.uniform(4, width / 3), rng.uniform(4, height / 3)
            preds.append(
                {
                    "image_id": image_id,
                    "category_id": int(rng.choice(classes)) + 1,
                    "bbox": [rng.uniform(0, width - w), rng.uniform(0, height - h), w, h],
                    "score": float(rng.uniform(0, 0.5)),
                }
            )
    return dataset, preds


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # lvis's own logger.warn
def test_lvis_protocol_equals_lvis_package(tmp_path, monkeypatch):
    lvis = pytest.importorskip("lvis")  # the reference implementation (pip install lvis)
    # lvis 0.5.3 still spells float64 `np.float`, which numpy 2 removed
    monkeypatch.setattr(np, "float", np.float64, raising=False)
    dataset, preds = lvis_case(11)
    result = evaluate(dataset, write_json(tmp_path / "p.json", preds), protocols=["lvis"])
    gt = lvis.LVIS(str(write_json(tmp_path / "gt.json", coco_ground_truth(dataset, lvis=True))))
    ref = lvis.LVISEval(gt, lvis.LVISResults(gt, copy.deepcopy(preds), max_dets=300), "bbox")
    ref.run()
    expected = dict(ref.get_results())
    ours = result.metrics("lvis")
    keys = {"AR@300": "AR300", "ARs@300": "ARs", "ARm@300": "ARm", "ARl@300": "ARl"}
    assert len(expected) == 13
    np.testing.assert_allclose(
        [ours[keys.get(k, k)] for k in expected], list(expected.values()), rtol=0, atol=1e-6
    )
    # the cap and the not-exhaustive rule both had something to do
    lvis_rows = result.matches()
    assert (lvis_rows["reason"] == "beyond max detections").sum() > 0
    assert (lvis_rows["reason"] == "class not exhaustively annotated").sum() > 0


def test_frequency_bins_from_train_image_counts():
    counts = [0, 1, 10, 11, 100, 101]  # train images with a box of class k
    images, objects = [], []
    for n in range(max(counts)):
        images.append((n, "o", str(n), "train"))
        for label, count in enumerate(counts):
            if n < count:
                # two boxes on one image count once
                objects += [(n, 1000 * n + 10 * label + j, "o", label) for j in range(2)]
    images.append((10_000, "o", "v", "val"))
    objects += [(10_000, 10**8 + k, "o", 0) for k in range(200)]  # val boxes do not count
    dataset = DetDataset(
        images=pl.DataFrame(
            images, schema=["image_id", "source", "source_image_id", "split"], orient="row"
        ),
        objects=pl.DataFrame(
            objects, schema=["image_id", "object_id", "source", "label"], orient="row"
        ),
        categories=pl.DataFrame({"id": range(len(counts)), "name": [f"c{k}" for k in counts]}),
    )
    bins = frequency_bins(dataset, "train-counts")
    assert bins["train_images"].to_list() == counts
    assert bins["frequency"].to_list() == ["r", "r", "r", "c", "c", "f"]
    given = dataset.categories.with_columns(pl.Series("frequency", ["f", None, "c", "r", "r", "f"]))
    no_train = dataset.replace(
        images=dataset.images.filter(pl.col("split") == "val"), categories=given
    )
    expected = ["f", None, "c", "r", "r", "f"]
    assert frequency_bins(no_train, "train-counts")["frequency"].to_list() == expected
    # LVIS's own bins are the default: no LVIS class here, so categories.frequency as given
    assert frequency_bins(dataset.replace(categories=given))["frequency"].to_list() == expected


def test_aprcf_average_the_per_class_ap_of_each_bin(tmp_path):
    dataset, preds = lvis_case(12)
    result = evaluate(dataset, write_json(tmp_path / "p.json", preds), protocols=["federated"])
    table = result.protocols["federated"]["per_class"]
    for freq in "rcf":
        own = table.filter((pl.col("frequency") == freq) & pl.col("AP").is_not_null())
        assert own.height >= 3
        assert result.metrics("federated")[f"AP{freq}"] == pytest.approx(own["AP"].mean(), abs=1e-9)


def test_lvis_bins_come_from_each_lvis_class_own_frequency(tmp_path):
    """A merged build: unified classes mapped from LVIS classes take LVIS's r/c/f (two LVIS
    classes merged into one: the more frequent bin), whatever the merged train counts say;
    train counts only on request, and eval.json says which."""
    dataset = make_dataset(21, images=60, classes=6, sources=("lvis", "objects365"))
    train = make_dataset(22, images=40, classes=6, sources=("lvis",), split="train")
    dataset = DetDataset.concat([dataset, train]).replace(categories=dataset.categories)
    # LVIS classes 11..17 -> unified 0..5 (16 and 17 both -> 5); objects365 maps its own
    lvis_classes = pl.DataFrame(
        {
            "source": "lvis",
            "source_label": [str(c) for c in range(11, 18)],
            "name": [f"l{c}" for c in range(11, 18)],
            "frequency": ["f", "r", "c", "r", "c", "r", "c"],
        }
    )
    to_lvis = {0: "11", 1: "12", 2: "13", 3: "14", 4: "15", 5: "16"}
    objects = dataset.objects.with_columns(
        pl.when(pl.col("source") == "lvis")
        .then(pl.col("label").replace_strict(to_lvis, return_dtype=pl.String))
        .otherwise(pl.col("source_label"))
        .alias("source_label")
    )
    merged = pl.DataFrame(  # an LVIS image label of the second class merged into 5
        {
            "image_id": dataset.images["image_id"][0],
            "source": "lvis",
            "source_label": "17",
            "label": 5,
            "status": "negative",
        }  # fmt: skip
    )
    dataset = dataset.replace(objects=objects, image_labels=merged, source_categories=lvis_classes)
    bins = frequency_bins(dataset)
    assert bins["frequency"].to_list() == ["f", "r", "c", "r", "c", "c"]
    counted = frequency_bins(dataset, "train-counts")["frequency"].to_list()
    assert counted != bins["frequency"].to_list()
    val = dataset.replace(images=dataset.images.filter(pl.col("split") == "val"))
    preds = write_json(tmp_path / "p.json", make_predictions(val, 21))
    result = evaluate(dataset, preds, protocols=["federated"], category_ids="coco")
    assert result.frequency_from.startswith("lvis: each class's own LVIS frequency field")
    table = result.protocols["federated"]["per_class"]
    assert table["frequency"].to_list() == ["f", "r", "c", "r", "c", "c"]
    for freq in "rcf":
        own = table.filter(pl.col("frequency") == freq)["AP"].drop_nulls()
        assert result.metrics("federated")[f"AP{freq}"] == pytest.approx(own.mean(), abs=1e-9)
    on_request = evaluate(
        dataset, preds, protocols=["federated"], category_ids="coco", frequency="train-counts"
    )
    assert on_request.frequency_from.startswith("train-counts: merged train split")
    assert on_request.protocols["federated"]["per_class"]["frequency"].to_list() == counted
