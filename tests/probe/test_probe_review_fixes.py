"""The blind encoder leaves hub settings alone; noun foils prefer verified absences; a
missing [probe] extra is one line naming it."""

from __future__ import annotations

import os
import sys

import polars as pl
import pytest

from detforge import schema
from detforge.cli import main
from detforge.dataset import DetDataset
from detforge.probes.adapters import _local_only
from detforge.probes.controls import sentence_encoder
from detforge.probes.generate import generate


def test_blind_encoder_keeps_hub_ids_online(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    encode = sentence_encoder("cpu")
    assert encode(["a dog", "two cars"]).shape == (2, 384)
    assert "HF_HUB_OFFLINE" not in os.environ
    assert _local_only("org/name") is False
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the user's own setting still counts
    assert _local_only("org/name") is True


# dog, cat and wolf are animals; a foil replaces the dog of "a dog and a car"
NAMES = ["dog", "cat", "car", "bicycle", "animal", "wolf"]
PARENTS = {0: [4], 1: [4], 5: [4]}


def _foil_dataset(images: int) -> DetDataset:
    """Every image: a dog and a car boxed, a bicycle verified absent; on odd images the wolf
    too. The cat (a sibling of the dog) is never verified absent."""
    img_rows, obj_rows, label_rows = [], [], []
    for i in range(images):
        image_id = schema.stable_id("tagged", str(i))
        img_rows.append(dict(image_id=image_id, source="tagged", file_name=f"{i}.png"))
        for c, box in ((0, [0.1, 0.1, 0.4, 0.4]), (2, [0.5, 0.5, 0.9, 0.9])):
            obj_rows.append(
                dict(
                    image_id=image_id,
                    object_id=schema.stable_id("tagged", f"{i}/{c}"),
                    source="tagged",
                    source_label=str(c),
                    label=c,
                    bbox=box,
                )
            )
        for c in (3, 5) if i % 2 else (3,):
            label_rows.append(
                dict(
                    image_id=image_id,
                    source="tagged",
                    source_label=str(c),
                    label=c,
                    status="negative",
                )
            )
    objects = pl.DataFrame(obj_rows).with_columns(
        pl.col("bbox").cast(pl.List(pl.Float32)).list.to_array(4)
    )
    categories = pl.DataFrame(
        {"id": range(len(NAMES)), "name": NAMES, "parents": [PARENTS.get(i, []) for i in range(6)]}
    )
    return DetDataset(
        images=schema.conform(pl.DataFrame(img_rows), "images"),
        objects=schema.conform(objects, "objects"),
        image_labels=schema.conform(pl.DataFrame(label_rows), "image_labels"),
        categories=schema.conform(categories, "categories"),
        roots={"tagged": "/nonexistent"},
    )


def test_foil_prefers_verified_absent_over_unverified_sibling():
    dataset = _foil_dataset(60)
    for seed in range(3):
        items = generate(dataset, seed=seed, tasks=["foil"]).items
        odd = {schema.stable_id("tagged", str(i)) for i in range(1, 60, 2)}
        foils = items.with_columns(odd=pl.col("image_id").is_in(list(odd)))
        assert foils.height > 20
        # the unverified cat is never the foil: it may well be on the image
        assert foils["verified"].all()
        assert (foils["evidence"] == "negative_label").all()
        dog = foils.filter(pl.col("class_b") == 0)
        assert dog.height > 5
        # among verified absences the sibling still comes first: the wolf where it is verified
        expected = pl.when(pl.col("odd")).then(5).otherwise(3)
        assert dog["odd"].any() and not dog["odd"].all()
        assert (dog["foil_class"] == dog.select(expected).to_series()).all()
        car = foils.filter(pl.col("class_b") == 2)  # no sibling: any verified absence
        assert car.height > 5 and car["foil_class"].is_in([3, 5]).all()


@pytest.mark.parametrize("module", ["torch", "sklearn", "sentence_transformers"])
def test_missing_probe_extra_is_one_line(module, probes_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now fails, as uninstalled
    argv = ["detforge", "probe", "run", "--model", "org/name", "--probes", str(probes_dir)]
    monkeypatch.setattr(sys, "argv", [*argv, "--out", str(tmp_path / "run")])
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main()
    assert stop.value.code == 1
    assert capsys.readouterr().err.strip() == (
        f"error: {module} is not installed: it comes with the [probe] extra "
        "(pip install 'detforge[probe]')"
    )
    assert not (tmp_path / "run").exists()
