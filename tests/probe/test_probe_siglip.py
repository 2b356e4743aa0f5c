"""A tiny random-init SigLIP (offline tokenizer), saved and loaded back from its directory,
through the dual-encoder adapter and `detforge probe run`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from detforge.cli import app
from detforge.probes.adapters import DualEncoder, load_adapter
from detforge.probes.synthetic import tiny_model


@pytest.fixture(scope="module")
def siglip(tmp_path_factory):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only contend on a shared machine
    yield tiny_model("siglip", tmp_path_factory.mktemp("tiny") / "siglip", seed=1)
    torch.set_num_threads(threads)


def test_adapter_scores_are_siglip_own_similarities(siglip, shapes):
    import torch
    import transformers as tf

    _, _, root = shapes
    images = [Image.open(p).convert("RGB") for p in sorted(root.rglob("*.png"))[:3]]
    texts = ["There is a dog.", "The bus is larger than the cat.", "There are two foxes."]
    adapter = load_adapter(str(siglip), device="cpu")
    assert isinstance(adapter, DualEncoder) and adapter.model.config.model_type == "siglip"
    assert adapter.n_layers == 4  # embeddings + 3 vision layers
    # the tokenizer built offline comes back from the directory: texts padded to 64 tokens
    tokens = adapter._tokens(texts)
    assert tokens["input_ids"].shape == (3, 64)
    assert tokens["input_ids"][0, 15].item() == adapter.tokenizer.eos_token_id
    keys = ["a", "b", "c"]
    out = adapter.forward(keys, images, texts, [0, -1], "cls", True)
    # SigLIP's logits are scale * cosine + bias: the adapter's cosine recovers them
    model = tf.SiglipModel.from_pretrained(siglip)
    processor = tf.AutoProcessor.from_pretrained(siglip)
    inputs = processor(
        text=texts, images=images, padding="max_length", max_length=64, return_tensors="pt"
    )
    with torch.no_grad():
        logits = model(**inputs).logits_per_image.diagonal()
        cosine = (logits - model.logit_bias) / model.logit_scale.exp()
    np.testing.assert_allclose(out.scores["cosine"], cosine.numpy(), atol=1e-5)
    assert set(out.features) == {0, -1}
    assert out.features[0].shape == (3, 16 + model.config.text_config.projection_size)


def test_probe_run_on_siglip(siglip, shapes, tmp_path):
    _, out, _ = shapes
    runner = CliRunner()
    made = runner.invoke(
        app,
        ["probe", "generate", str(out), "--out", str(tmp_path / "p"), "--max-per-label", "3"],
    )
    assert made.exit_code == 0, made.output
    args = ["probe", "run", "--model", str(siglip), "--probes", str(tmp_path / "p")]
    args += ["--out", str(tmp_path / "run"), "--layers", "0,-1", "--bootstrap", "50"]
    result = runner.invoke(app, [*args, "--tasks", "existence,size"])
    assert result.exit_code == 0, (result.output, result.exception)
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    entries = {e["init"]: e for e in results["models"]}
    assert set(entries) == {"pretrained", "random"}
    for init, entry in entries.items():
        assert entry["model"] == str(siglip) and entry["layers"] == [0, 3]
        assert set(entry["tasks"]) == {"existence", "size"}
        for task, m in entry["tasks"].items():
            assert set(m["zeroshot"]) == {"cosine"}, task
            assert 0 <= m["zeroshot"]["cosine"]["acc"] <= 1
            assert [r["layer"] for r in m["linear"]] == [0, 3]
            assert ("text_tower" in m) == (init == "pretrained")
