"""Class-aware sampling from per-image weights (BigDetection's ``cas_weights``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import torch
from mmdet.registry import DATA_SAMPLERS
from mmengine.dist import get_dist_info
from torch.utils.data import Sampler


@DATA_SAMPLERS.register_module()
class WeightedImageSampler(Sampler):
    """Draws image indices with replacement, proportionally to per-image weights.

    ``weights_file`` is a JSON object ``{image_id: weight}`` (see
    :func:`detforge.evaluators.pretrain.data.class_aware_weights`); the dataset's
    images are matched by ``img_id``. Ranks draw disjoint slices of one stream.
    """

    def __init__(self, dataset, weights_file: str, seed: int = 0) -> None:
        by_image = {int(k): float(v) for k, v in json.loads(Path(weights_file).read_text()).items()}
        ids = [dataset.get_data_info(i)["img_id"] for i in range(len(dataset))]
        self.weights = torch.tensor([by_image.get(int(i), 0.0) for i in ids], dtype=torch.double)
        if not float(self.weights.sum()) > 0:
            raise ValueError(f"{weights_file}: no positive weight for any image of the dataset")
        self.rank, self.world_size = get_dist_info()
        self.seed, self.epoch = seed, 0
        self.dataset, self.size = dataset, len(dataset)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        draws = torch.multinomial(
            self.weights, self.size * self.world_size, True, generator=generator
        )
        return iter(draws[self.rank :: self.world_size].tolist())

    def __len__(self) -> int:
        return self.size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
