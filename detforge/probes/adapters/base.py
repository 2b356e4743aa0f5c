"""What every model adapter shares: the output type, the protocol, pooling, tensors."""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import numpy as np


@dataclasses.dataclass
class Output:
    """Scores per scorer (n,) and, if asked, pooled features per layer (n, d)."""

    scores: dict[str, np.ndarray]
    features: dict[int, np.ndarray]


class Adapter(Protocol):
    """A vision-language model seen by the probes.

    ``scorers``: zero-shot scorers (higher = the text fits the image better), the first is
    the default; may be empty (a model without a matching head gets linear probes only).
    ``forward`` scores (image, text) pairs and returns per-layer pooled features when asked;
    ``image_features`` / ``text_features`` see one modality only (the image-only and
    text-only controls).
    """

    kind: str
    scorers: tuple[str, ...]
    n_layers: int

    def forward(
        self,
        keys: list[str],
        images: list[Any],
        texts: list[str],
        layers: list[int],
        features: bool,
    ) -> Output: ...

    def image_features(self, images: list[Any]) -> np.ndarray: ...

    def text_features(self, texts: list[str]) -> np.ndarray: ...


def dtype_for(device: str):
    """fp32 on CPU; bf16 on a GPU that has it, else fp16."""
    import torch

    if not device.startswith("cuda"):
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def pool(hidden, mask, pooling: str, index=None):
    """Pool (B, T, D) hidden states: ``mean`` over ``mask``ed tokens, ``cls`` = token 0,
    ``last`` = the token at ``index`` per row."""
    import torch

    if pooling == "mean":
        if mask is None:
            return hidden.mean(1)
        m = mask.to(hidden.dtype).unsqueeze(-1)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1)
    if pooling == "last":
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), index]
    return hidden[:, 0]


def to_numpy(tensor) -> np.ndarray:
    return tensor.detach().float().cpu().numpy()


def unique_first(keys: list[str]) -> tuple[list[int], list[int]]:
    """First position of each distinct key, and each position's index into those."""
    first: dict[str, int] = {}
    index = [first.setdefault(k, len(first)) for k in keys]
    positions: dict[str, int] = {}
    for pos, k in enumerate(keys):
        positions.setdefault(k, pos)
    return list(positions.values()), index


class Base:
    """Model, processor, device, layer count and pooling of an adapter."""

    scorers: tuple[str, ...] = ()

    def __init__(self, model, processor, device: str, n_layers: int, pooling: str):
        self.model, self.processor, self.device = model, processor, device
        self.n_layers, self.pooling = n_layers, pooling
        self.tokenizer = getattr(processor, "tokenizer", processor)

    def _pixels(self, images: list[Any]):
        pixels = self.processor(images=images, return_tensors="pt")["pixel_values"]
        return pixels.to(self.device, self.model.dtype)
