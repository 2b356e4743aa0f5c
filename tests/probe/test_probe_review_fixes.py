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


# dog, cat and wolf are animals
NAMES = ["dog", "cat", "car", "bicycle", "animal", "wolf"]
PARENTS = {0: [4], 1: [4], 5: [4]}


def _foil_dataset(images: int) -> DetDataset:
    """Even images: a dog and a car boxed, the bicycle verified absent (every fourth image the
    wolf too). Odd images: a dog and a bicycle boxed, the car verified absent. The cat (a
    sibling of the dog) is never verified absent."""
    img_rows, obj_rows, label_rows = [], [], []
    for i in range(images):
        image_id = schema.stable_id("tagged", str(i))
        img_rows.append(dict(image_id=image_id, source="tagged", file_name=f"{i}.png"))
        boxed, absent = ((0, 2), (3, 5) if i % 4 == 0 else (3,)) if i % 2 == 0 else ((0, 3), (2,))
        for c, box in zip(boxed, ([0.1, 0.1, 0.4, 0.4], [0.5, 0.5, 0.9, 0.9]), strict=True):
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
        for c in absent:
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


def test_noun_foils_pair_classes_boxed_beside_the_same_class():
    dataset = _foil_dataset(80)
    even = {schema.stable_id("tagged", str(i)) for i in range(0, 80, 2)}
    for seed in range(3):
        foils = generate(dataset, seed=seed, tasks=["foil"]).items
        assert foils.height > 20 and (foils["class_a"] == 0).all()  # "a dog and a …"
        # the unverified cat is never a foil (it may well be on the image), nor is the wolf:
        # verified absent too, but never boxed beside the dog, so its sentence could never
        # be a caption; car and bicycle swap roles between even and odd images
        assert foils["verified"].all() and (foils["evidence"] == "negative_label").all()
        assert set(foils["foil_class"]) == {2, 3} and set(foils["class_b"]) == {2, 3}
        on_even = foils["image_id"].is_in(list(even))
        assert ((foils["class_b"] == 2) == on_even).all()
        per_sentence = foils.group_by("text", "split").agg(pl.col("label").mean())
        assert (per_sentence["label"] == 0.5).all()
        twins = foils.join(foils.select(twin_id="item_id", t_image="image_id"), on="twin_id")
        assert twins.height == foils.height
        assert (twins["image_id"].is_in(list(even)) != twins["t_image"].is_in(list(even))).all()


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
