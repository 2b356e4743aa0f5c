"""Fixtures of the probe tests: a generated shapes dataset on disk and its probe set."""

from __future__ import annotations

from pathlib import Path

import pytest

from detforge.probes.generate import generate
from detforge.probes.synthetic import shapes_dataset, tiny_model


@pytest.fixture(scope="session")
def shapes(tmp_path_factory: pytest.TempPathFactory):
    """(dataset, OUT dir with tables/, images root) of 400 generated images."""
    root = tmp_path_factory.mktemp("shapes")
    dataset = shapes_dataset(root / "images", images=400, seed=0)
    dataset.write(root / "out" / "tables")
    return dataset, root / "out", root / "images"


@pytest.fixture(scope="session")
def probes_dir(shapes, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small probe set of every task, written to disk."""
    dataset, out, _ = shapes
    path = tmp_path_factory.mktemp("probes") / "set"
    generate(dataset, seed=0, max_per_label=30, source_path=out).write(path)
    return path


@pytest.fixture(scope="session")
def planted_probes(shapes, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A smaller probe set of every task for the planted-encoder runs."""
    dataset, out, _ = shapes
    path = tmp_path_factory.mktemp("planted-probes") / "set"
    generate(dataset, seed=0, max_per_label=8, source_path=out).write(path)
    return path


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory):
    """Directories of tiny random-init CLIP, SigLIP, BLIP, ViLT and LLaVA (with a chat
    template) models, built offline; torch on one thread while they run."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only contend on a shared machine
    root = tmp_path_factory.mktemp("tiny")
    built = {k: tiny_model(k, root / k, seed=1) for k in ("clip", "siglip", "blip", "vilt")}
    built["llava"] = tiny_model("llava", root / "llava", seed=1, chat_template=True)
    yield built
    torch.set_num_threads(threads)
