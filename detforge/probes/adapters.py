"""Model adapters on transformers: dual encoders, ITM heads and generative VLMs.

Every adapter answers the same two questions for a batch of (image, text) pairs:
zero-shot scores (one or more named scorers; higher = the text fits the image better) and,
when asked, per-layer pooled hidden states for linear probes. ``text_features`` runs the
model's own text tower alone (a blind control).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from detforge.probes.probeset import ProbeError

DUAL_TYPES = ("clip", "siglip", "siglip2", "chinese_clip", "altclip", "metaclip_2")


@dataclasses.dataclass
class Output:
    """Scores per scorer (n,) and, if asked, pooled features per layer (n, d)."""

    scores: dict[str, np.ndarray]
    features: dict[int, np.ndarray]


class Adapter(Protocol):
    kind: str
    scorers: tuple[str, ...]
    n_layers: int

    def forward(
        self,
        keys: list[str],
        images: list[Any],
        texts: list[str],
        layers: list[int],
        pooling: str,
        features: bool,
    ) -> Output: ...

    def text_features(self, texts: list[str]) -> np.ndarray: ...


def pick_device(device: str) -> str:
    """``auto`` → cuda when available, else cpu."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _dtype(device: str):
    import torch

    if not device.startswith("cuda"):
        return torch.float32  # half precision only on a GPU
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _pool(hidden, mask, pooling: str, last_index=None):
    """Pool (B, T, D) hidden states: ``cls`` = token 0 (or the given last index), ``mean``."""
    import torch

    if pooling == "mean":
        if mask is None:
            return hidden.mean(1)
        m = mask.to(hidden.dtype).unsqueeze(-1)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1)
    if last_index is not None:
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last_index]
    return hidden[:, 0]


def _np(tensor) -> np.ndarray:
    return tensor.detach().float().cpu().numpy()


class _Base:
    def __init__(self, model, processor, device: str, n_layers: int):
        self.model, self.processor, self.device, self.n_layers = model, processor, device, n_layers
        self.tokenizer = getattr(processor, "tokenizer", processor)

    def _tokens(self, texts: list[str]) -> dict:
        # SigLIP was trained on texts padded to 64 tokens; its embeddings expect that padding
        siglip = getattr(self.model.config, "model_type", "").startswith("siglip")
        padding = {"padding": "max_length", "max_length": 64} if siglip else {"padding": True}
        enc = self.tokenizer(texts, truncation=True, return_tensors="pt", **padding)
        return {
            k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")
        }

    def _pixels(self, images: list[Any]):
        pixels = self.processor(images=images, return_tensors="pt")["pixel_values"]
        return pixels.to(self.device, self.model.dtype)

    @staticmethod
    def _unique(keys: list[str]) -> tuple[list[int], list[int]]:
        """First position of each distinct key, and each pair's index into those."""
        first: dict[str, int] = {}
        index = [first.setdefault(k, len(first)) for k in keys]
        positions = {}
        for pos, k in enumerate(keys):
            positions.setdefault(k, pos)
        return list(positions.values()), index


class DualEncoder(_Base):
    """CLIP / SigLIP: cosine of projected embeddings; features = vision layer ⊕ text embedding."""

    kind, scorers = "dual", ("cosine",)

    def forward(self, keys, images, texts, layers, pooling, features):
        import torch

        first, index = self._unique(keys)
        out = self.model.get_image_features(
            pixel_values=self._pixels([images[i] for i in first]), output_hidden_states=features
        )
        image = torch.nn.functional.normalize(out.pooler_output.float(), dim=-1)[index]
        text = self.text_embeddings(texts)
        result = Output({"cosine": _np((image * text).sum(-1))}, {})
        if features:
            for layer in layers:
                pooled = _pool(out.hidden_states[layer].float(), None, pooling)[index]
                result.features[layer] = _np(torch.cat([pooled, text], dim=-1))
        return result

    def text_embeddings(self, texts):
        import torch

        out = self.model.get_text_features(**self._tokens(texts))
        return torch.nn.functional.normalize(out.pooler_output.float(), dim=-1)

    def text_features(self, texts):
        return _np(self.text_embeddings(texts))


class ImageTextMatching(_Base):
    """BLIP ITM: match logit of the ITM head; features = the fused text stack's layers."""

    kind, scorers = "itm", ("itm",)

    def forward(self, keys, images, texts, layers, pooling, features):
        import torch

        first, index = self._unique(keys)
        vision = self.model.vision_model(pixel_values=self._pixels([images[i] for i in first]))
        image = vision.last_hidden_state[index]
        tokens = self._tokens(texts)
        fused = self.model.text_encoder(
            **tokens,
            encoder_hidden_states=image,
            encoder_attention_mask=torch.ones(
                image.shape[:-1], dtype=torch.long, device=image.device
            ),
            output_hidden_states=features,
        )
        logits = self.model.itm_head(fused.last_hidden_state[:, 0]).float()
        result = Output({"itm": _np(logits[:, 1] - logits[:, 0])}, {})
        for layer in layers if features else ():
            hidden = fused.hidden_states[layer].float()
            result.features[layer] = _np(_pool(hidden, tokens["attention_mask"], pooling))
        return result

    def text_features(self, texts):
        import torch

        out = self.model.text_encoder(**self._tokens(texts))
        proj = self.model.text_proj(out.last_hidden_state[:, 0])
        return _np(torch.nn.functional.normalize(proj.float(), dim=-1))


class Generative(_Base):
    """LLaVA-style VLMs: caption log-likelihood and yes/no answer margin; features = LM layers.

    Prompts are plain (``<image>\\n{caption}``); ``cls`` pooling takes the last
    non-special token, the one a decoder predicts from.
    """

    kind, scorers = "generative", ("loglik", "yesno")

    def __init__(self, model, processor, device, n_layers):
        super().__init__(model, processor, device, n_layers)
        self.tokenizer.padding_side = "right"
        self.image_token = getattr(processor, "image_token", "<image>")
        self.special = sorted(set(self.tokenizer.all_special_ids))
        self.yes, self.no = (
            self.tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in ("yes", "no")
        )

    def _run(self, images, prompts, hidden: bool):
        inputs = self.processor(images=images, text=prompts, return_tensors="pt", padding=True)
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        return inputs, self.model(**inputs, output_hidden_states=hidden)

    def _last_plain(self, ids, mask):
        """Index of the last token that is neither padding nor a special token."""
        import torch

        plain = mask.bool() & ~torch.isin(ids, torch.tensor(self.special, device=ids.device))
        positions = torch.arange(ids.shape[1], device=ids.device).expand_as(ids)
        return torch.where(plain, positions, -1).max(1).values.clamp(min=0)

    def forward(self, keys, images, texts, layers, pooling, features):
        import torch

        prompts = [f"{self.image_token}\n{t}" for t in texts]
        inputs, out = self._run(images, prompts, features)
        ids, mask = inputs["input_ids"], inputs["attention_mask"]
        logp = torch.log_softmax(out.logits[:, :-1].float(), -1)
        token_logp = logp.gather(-1, ids[:, 1:, None])[..., 0]
        # the text is everything after the last image token: same template for caption and foil
        positions = torch.arange(ids.shape[1], device=ids.device).expand_as(ids)
        after = (
            positions
            > torch.where(ids == self.model.config.image_token_id, positions, -1)
            .max(1, keepdim=True)
            .values
        )
        keep = (after & mask.bool())[:, 1:]
        loglik = (token_logp * keep).sum(1)
        result = Output({"loglik": _np(loglik)}, {})
        if features:
            last = self._last_plain(ids, mask)
            for layer in layers:
                hidden = out.hidden_states[layer].float()
                result.features[layer] = _np(_pool(hidden, mask, pooling, last_index=last))
        question = [f"{self.image_token}\nQuestion: Is it true that {t} Answer:" for t in texts]
        q_inputs, q_out = self._run(images, question, False)
        last = self._last_plain(q_inputs["input_ids"], q_inputs["attention_mask"])
        logits = q_out.logits[torch.arange(len(texts), device=last.device), last].float()
        result.scores["yesno"] = _np(logits[:, self.yes] - logits[:, self.no])
        return result

    def text_features(self, texts):
        tokens = self._tokens(texts)
        out = self.model(**tokens, output_hidden_states=True)
        last = self._last_plain(tokens["input_ids"], tokens["attention_mask"])
        return _np(_pool(out.hidden_states[-1].float(), None, "cls", last_index=last))


def _local_only(model: str) -> bool:
    """Load from disk only: a local directory, or any id while HF_HUB_OFFLINE is set (read
    now, not at import time, so an offline session never waits on the network)."""
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    return Path(model).is_dir() or offline


def _kind(config) -> str | None:
    from transformers import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING

    if "BlipForImageTextRetrieval" in (getattr(config, "architectures", None) or []):
        return "itm"
    if config.model_type in DUAL_TYPES:
        return "dual"
    if type(config) in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING:
        return "generative"
    return None


def load_adapter(model: str, *, device: str = "auto", random_init: bool = False, seed: int = 0):
    """Load ``model`` (hub id or local dir) into its adapter; ``random_init`` = same architecture
    with fresh weights (``from_config``)."""
    import torch
    import transformers as tf

    local = _local_only(model)
    if not Path(model).is_dir() and (Path(model).exists() or model.startswith((".", "/", "~"))):
        raise ProbeError(f"{model}: not a model directory")
    try:
        config = tf.AutoConfig.from_pretrained(model, local_files_only=local)
    except (OSError, ValueError) as error:
        if Path(model).is_dir():
            first = (
                str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            )
            raise ProbeError(
                f"{model}: not a model directory transformers can read ({first})"
            ) from None
        raise ProbeError(
            f"{model}: not a local directory and the Hugging Face Hub cannot be reached "
            "(offline or HF_HUB_OFFLINE=1): download the model and pass its directory"
        ) from None
    kind = _kind(config)
    if kind is None:
        raise ProbeError(
            f"{model}: model_type {config.model_type!r} is not a supported vision-language model "
            f"(dual encoders {', '.join(DUAL_TYPES)}; BlipForImageTextRetrieval; "
            "image-text-to-text models such as LLaVA)"
        )
    device = pick_device(device)
    classes = {
        "dual": tf.AutoModel,
        "itm": tf.BlipForImageTextRetrieval,
        "generative": tf.AutoModelForImageTextToText,
    }
    try:
        processor = tf.AutoProcessor.from_pretrained(model, local_files_only=local)
        if random_init:
            torch.manual_seed(seed)
            cls = classes[kind]  # Auto classes build with from_config, model classes directly
            net = cls.from_config(config) if hasattr(cls, "from_config") else cls(config)
        else:
            net = classes[kind].from_pretrained(model, local_files_only=local, dtype=_dtype(device))
    except (OSError, ValueError) as error:
        raise ProbeError(
            f"{model}: cannot load the {kind} model or its processor ({error})"
        ) from None
    net = net.to(device, _dtype(device)).eval()
    if kind == "dual":
        layers = config.vision_config.num_hidden_layers + 1
        return DualEncoder(net, processor, device, layers)
    layers = config.text_config.num_hidden_layers + 1
    if kind == "itm":
        return ImageTextMatching(net, processor, device, layers)
    return Generative(net, processor, device, layers)


def layer_count(model: str) -> int:
    """Hidden-state layers (embeddings included) the adapter of ``model`` probes, from its config."""
    from transformers import AutoConfig

    local = _local_only(model)
    try:
        config = AutoConfig.from_pretrained(model, local_files_only=local)
    except (OSError, ValueError):
        load_adapter(model, device="cpu")  # raises the one-line reason
        raise
    if _kind(config) == "dual":
        return config.vision_config.num_hidden_layers + 1
    if _kind(config) is None:
        load_adapter(model, device="cpu")
    return config.text_config.num_hidden_layers + 1
