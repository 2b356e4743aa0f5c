"""splitmix64: the stable 64-bit integer hash behind every deterministic choice (hash
splits, probe sampling and balancing): the same ranks on every machine and run."""

from __future__ import annotations

import numpy as np

_GAMMA = 0x9E3779B97F4A7C15
_MASK = 0xFFFF_FFFF_FFFF_FFFF


def splitmix64(values: np.ndarray, seed: int = 0) -> np.ndarray:
    """splitmix64 of ``values`` (integers, taken as uint64; wrapping arithmetic), with the
    generator's state offset by ``seed``: one uint64 per value."""
    with np.errstate(over="ignore"):
        z = np.asarray(values).astype(np.uint64) + np.uint64((_GAMMA * (seed + 1)) & _MASK)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))
