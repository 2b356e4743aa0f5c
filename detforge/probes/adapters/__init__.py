"""Model adapters on transformers: dual encoders, BLIP ITM, ViLT and generative VLMs.

Every adapter answers the same questions for a batch of (image, text) pairs: zero-shot
scores (one or more named scorers; higher = the text fits the image better) and, when asked,
per-layer pooled features for linear probes; ``image_features`` and ``text_features`` see
one modality only (controls). :func:`describe` reads a model's kind, layer count and
poolings from its config alone, so a bad ``--model`` fails before any work.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from detforge.probes.adapters import dual
from detforge.probes.adapters.base import Adapter, Output, dtype_for
from detforge.probes.probeset import ProbeError

__all__ = ["Adapter", "ModelInfo", "Output", "describe", "load_adapter", "pick_device"]

POOLINGS = ("auto", "cls", "head", "last", "mean")
#: a config attribute that says the saved weights are random (``detforge probe tiny-model``)
RANDOM_WEIGHTS = "detforge_random_weights"


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What the probes need to know of a model before loading its weights."""

    kind: str
    n_layers: int
    poolings: tuple[str, ...]  # supported, the architecture's own first
    random_weights: bool = False  # saved with random weights (its config says so)

    def pooling(self, asked: str, model: str) -> str:
        """``auto`` → the architecture's own pooling; anything else must be supported."""
        if asked == "auto":
            return self.poolings[0]
        if asked not in self.poolings:
            raise ProbeError(
                f"--pooling {asked}: {model} ({self.kind}) pools with "
                f"{' or '.join(self.poolings)} (auto = {self.poolings[0]})"
            )
        return asked


def pick_device(device: str) -> str:
    """``auto`` → cuda when available, else cpu."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _local_only(model: str) -> bool:
    """Load from disk only: a local directory, or any id while HF_HUB_OFFLINE is set (read
    now, not at import time, so an offline session never waits on the network)."""
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    return Path(model).is_dir() or offline


def _kind(config) -> str | None:
    from transformers import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING

    if "BlipForImageTextRetrieval" in (getattr(config, "architectures", None) or []):
        return "itm"
    if config.model_type == "vilt":
        return "vilt"
    if config.model_type in dual.TYPES:
        return "dual"
    if type(config) in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING:
        return "generative"
    return None


def _config(model: str):
    import transformers as tf

    if not Path(model).is_dir() and (Path(model).exists() or model.startswith((".", "/", "~"))):
        raise ProbeError(f"{model}: not a model directory")
    try:
        return tf.AutoConfig.from_pretrained(model, local_files_only=_local_only(model))
    except (OSError, ValueError) as error:
        if Path(model).is_dir():
            text = str(error).strip()
            first = text.splitlines()[0] if text else type(error).__name__
            raise ProbeError(
                f"{model}: not a model directory transformers can read ({first})"
            ) from None
        raise ProbeError(
            f"{model}: not a local directory and the Hugging Face Hub cannot be reached "
            "(offline or HF_HUB_OFFLINE=1): download the model and pass its directory"
        ) from None


def describe(model: str) -> ModelInfo:
    """Kind, layer count (embeddings included), poolings of ``model`` and whether its saved
    weights are random, from its config."""
    config = _config(model)
    info = _describe(model, config)
    return dataclasses.replace(info, random_weights=bool(getattr(config, RANDOM_WEIGHTS, False)))


def _describe(model: str, config) -> ModelInfo:
    kind = _kind(config)
    if kind is None:
        raise ProbeError(
            f"{model}: model_type {config.model_type!r} is not a supported vision-language model "
            f"(dual encoders {', '.join(dual.TYPES)}; BlipForImageTextRetrieval; ViLT; "
            "image-text-to-text models such as LLaVA)"
        )
    if kind == "dual":
        return ModelInfo(kind, config.vision_config.num_hidden_layers + 1, dual.poolings(config))
    if kind == "vilt":
        return ModelInfo(kind, config.num_hidden_layers + 1, ("cls", "mean"))
    layers = config.text_config.num_hidden_layers + 1
    return ModelInfo(kind, layers, ("cls", "mean") if kind == "itm" else ("last", "mean"))


def load_adapter(
    model: str,
    *,
    device: str = "auto",
    pooling: str = "auto",
    random_init: bool = False,
    seed: int = 0,
) -> Adapter:
    """Load ``model`` (hub id or local dir) into its adapter; ``random_init`` = the same
    architecture with fresh weights (seeded)."""
    import torch
    import transformers as tf

    from detforge.probes.adapters.generative import Generative
    from detforge.probes.adapters.itm import ImageTextMatching
    from detforge.probes.adapters.vilt import Vilt

    info = describe(model)
    pooling = info.pooling(pooling, model)
    config = _config(model)
    local = _local_only(model)
    device = pick_device(device)
    architectures = getattr(config, "architectures", None) or []
    classes = {
        "dual": tf.AutoModel,
        "itm": tf.BlipForImageTextRetrieval,
        "vilt": tf.ViltForImageAndTextRetrieval
        if "ViltForImageAndTextRetrieval" in architectures
        else tf.ViltModel,
        "generative": tf.AutoModelForImageTextToText,
    }
    cls = classes[info.kind]
    try:
        processor = tf.AutoProcessor.from_pretrained(model, local_files_only=local)
        if random_init:
            torch.manual_seed(seed)  # Auto classes build with from_config, model classes directly
            net = cls.from_config(config) if hasattr(cls, "from_config") else cls(config)
        else:
            net = cls.from_pretrained(model, local_files_only=local, dtype=dtype_for(device))
    except (OSError, ValueError) as error:
        raise ProbeError(
            f"{model}: cannot load the {info.kind} model or its processor ({error})"
        ) from None
    net = net.to(device, dtype_for(device)).eval()
    adapter = {
        "dual": dual.DualEncoder,
        "itm": ImageTextMatching,
        "vilt": Vilt,
        "generative": Generative,
    }[info.kind]
    return adapter(net, processor, device, info.n_layers, pooling)
