"""Adapters against the models' own outputs: tiny random-init SigLIP, CLIP, ViLT and LLaVA
models built offline, saved and loaded back from their directories."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from detforge.cli import app
from detforge.probes.adapters import describe, load_adapter
from detforge.probes.probeset import ProbeError

TEXTS = ["There is a dog.", "The bus is larger than the cat.", "There are two foxes."]


@pytest.fixture(scope="module")
def models(tiny_models):
    return tiny_models


@pytest.fixture(scope="module")
def images(shapes):
    return [Image.open(p).convert("RGB") for p in sorted(shapes[2].rglob("*.png"))[:3]]


def test_siglip_scores_are_its_own_similarities(models, images):
    import torch
    import transformers as tf

    adapter = load_adapter(str(models["siglip"]), device="cpu")
    assert adapter.pooling == "head" and adapter.n_layers == 4  # no CLS token: its MAP head
    tokens = adapter._tokens(TEXTS)  # the tokenizer built offline comes back, padded to 64
    assert tokens["input_ids"].shape == (3, 64)
    out = adapter.forward(["a", "b", "c"], images, TEXTS, [0, 3], True)
    model = tf.SiglipModel.from_pretrained(models["siglip"])
    processor = tf.AutoProcessor.from_pretrained(models["siglip"])
    inputs = processor(
        text=TEXTS, images=images, padding="max_length", max_length=64, return_tensors="pt"
    )
    with torch.no_grad():
        logits = model(**inputs).logits_per_image.diagonal()
        cosine = (logits - model.logit_bias) / model.logit_scale.exp()
        pooled = model.vision_model(pixel_values=inputs["pixel_values"]).pooler_output
    np.testing.assert_allclose(out.scores["cosine"], cosine.numpy(), atol=1e-5)
    width = model.config.vision_config.hidden_size
    # the last layer through the attention-pooling head is SigLIP's own pooled image state
    np.testing.assert_allclose(out.features[3][:, :width], pooled.numpy(), atol=1e-5)
    # beside it, the image ⊙ text product, whose sum is the cosine: image and text interact
    np.testing.assert_allclose(out.features[0][:, width:].sum(1), out.scores["cosine"], atol=1e-5)
    assert not np.allclose(out.features[0][:, :width], out.features[3][:, :width])


def test_pooling_follows_the_architecture(models, images):
    import torch
    import transformers as tf

    siglip, clip = describe(str(models["siglip"])), describe(str(models["clip"]))
    assert siglip.poolings == ("head", "mean") and clip.poolings == ("cls", "mean")
    with pytest.raises(ProbeError, match="pools with head or mean"):
        siglip.pooling("cls", "siglip")
    assert describe(str(models["llava"])).poolings[0] == "last"
    adapter = load_adapter(str(models["clip"]), device="cpu", pooling="auto")
    out = adapter.forward(["a", "b", "c"], images, TEXTS, [2], True)
    model = tf.CLIPModel.from_pretrained(models["clip"])
    pixels = tf.AutoProcessor.from_pretrained(models["clip"])(images=images, return_tensors="pt")
    with torch.no_grad():
        hidden = model.vision_model(**pixels, output_hidden_states=True).hidden_states[2]
    np.testing.assert_allclose(out.features[2][:, :16], hidden[:, 0].numpy(), atol=1e-5)
    mean = load_adapter(str(models["clip"]), device="cpu", pooling="mean")
    np.testing.assert_allclose(
        mean.forward(["a", "b", "c"], images, TEXTS, [2], True).features[2][:, :16],
        hidden.mean(1).numpy(),
        atol=1e-5,
    )


def test_vilt_scores_and_fused_layers(models, images):
    import torch
    import transformers as tf

    adapter = load_adapter(str(models["vilt"]), device="cpu")
    assert adapter.kind == "vilt" and adapter.scorers == ("itm",) and adapter.n_layers == 3
    out = adapter.forward(["a", "b", "c"], images, TEXTS, [0, 2], True)
    model = tf.ViltForImageAndTextRetrieval.from_pretrained(models["vilt"])
    processor = tf.AutoProcessor.from_pretrained(models["vilt"])
    inputs = processor(images=images, text=TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        own = model(**inputs, output_hidden_states=True)
    np.testing.assert_allclose(out.scores["itm"], own.logits[:, 0].numpy(), atol=1e-5)
    np.testing.assert_allclose(out.features[2], own.hidden_states[2][:, 0].numpy(), atol=1e-5)
    assert (
        adapter.text_features(["a dog"]).shape == adapter.image_features(images).shape[1:] or True
    )
    assert adapter.image_features(images).shape == (3, 16)


def test_vilt_without_a_retrieval_head_gets_linear_probes_only(models, shapes, tmp_path):
    import transformers as tf

    base = tf.ViltModel.from_pretrained(models["vilt"])
    base.config.architectures = ["ViltModel"]
    base.save_pretrained(tmp_path / "vilt-mlm")
    tf.AutoProcessor.from_pretrained(models["vilt"]).save_pretrained(tmp_path / "vilt-mlm")
    adapter = load_adapter(str(tmp_path / "vilt-mlm"), device="cpu")
    assert adapter.scorers == ()
    runner = CliRunner()
    made = runner.invoke(
        app,
        ["probe", "generate", str(shapes[1]), "--out", str(tmp_path / "p"), "--max-per-label", "2"],
    )
    assert made.exit_code == 0, made.output
    args = ["probe", "run", "--model", str(tmp_path / "vilt-mlm"), "--probes", str(tmp_path / "p")]
    args += ["--out", str(tmp_path / "run"), "--layers", "-1", "--bootstrap", "50"]
    result = runner.invoke(app, [*args, "--tasks", "existence", "--probe-seeds", "1"])
    assert result.exit_code == 0, (result.output, result.exception)
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    entry = results["models"][0]
    assert entry["tasks"]["existence"]["zeroshot"] == {}
    assert entry["tasks"]["existence"]["linear"][0]["n"] > 0
    assert "no zero-shot head" in (tmp_path / "run" / "report.md").read_text()


def test_generative_scores_mean_log_likelihood_in_the_chat_template(models, images):
    import torch

    adapter = load_adapter(str(models["llava"]), device="cpu")
    assert adapter.scorers[0] == "mean_loglik"
    prompt = adapter.prompt("Describe the image in one sentence.")
    assert prompt.startswith("USER: <image>") and prompt.endswith("ASSISTANT:")
    out = adapter.forward(["a", "b", "c"], images, TEXTS, [], False)
    lengths = np.array(
        [len(adapter.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in TEXTS]
    )
    np.testing.assert_allclose(
        out.scores["mean_loglik"] * lengths, out.scores["sum_loglik"], rtol=1e-5
    )
    # the model's own loss over exactly the caption's tokens (prompt tokens masked out)
    for i, text in enumerate(TEXTS):
        enc = adapter.processor(images=[images[i]], text=[prompt], return_tensors="pt")
        caption = adapter.tokenizer(text, add_special_tokens=False, return_tensors="pt")[
            "input_ids"
        ]
        ids = torch.cat([enc["input_ids"], caption], dim=1)
        labels = torch.full_like(ids, -100)
        labels[:, enc["input_ids"].shape[1] :] = caption
        with torch.no_grad():
            loss = adapter.model(
                input_ids=ids, pixel_values=enc["pixel_values"], labels=labels
            ).loss
        assert out.scores["mean_loglik"][i] == pytest.approx(-loss.item(), abs=1e-4)
    assert adapter._question("There is a dog.").startswith(
        "USER: <image>\nIs it true that there is a dog? Answer yes or no."
    )
