"""Synthetic photos and planted copies, for the dedup tests and benchmark.

A "photo" is a smooth random multi-scale colour field with a few shapes:
like real photos, most of its energy is in low frequencies, so its pHash is
stable under resizing and re-encoding while two independent photos differ.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image


def photo(rng: np.random.Generator, width: int = 640, height: int = 480) -> np.ndarray:
    """A random RGB uint8 image of ``height x width``."""
    field = np.zeros((height, width, 3), np.float32)
    for cells, weight in ((2, 1.0), (4, 0.8), (8, 0.5), (16, 0.3), (48, 0.15)):
        grid = rng.random((max(2, cells * height // width), cells, 3)).astype(np.float32)
        field += weight * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    field = (field - field.min()) / (np.ptp(field) + 1e-6) * 255
    img = np.ascontiguousarray(field.astype(np.uint8))
    for _ in range(int(rng.integers(2, 6))):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        w, h = (
            int(rng.integers(width // 10, width // 3)),
            int(rng.integers(height // 10, height // 3)),
        )
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            cv2.rectangle(img, (x, y), (x + w, y + h), color, thickness=-1)
        else:
            cv2.ellipse(img, (x, y), (w // 2, h // 2), 0, 0, 360, color, thickness=-1)
    return img


def resized(img: np.ndarray, scale: float) -> np.ndarray:
    """``img`` scaled by ``scale`` (same framing)."""
    h, w = img.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def brightened(img: np.ndarray, delta: int) -> np.ndarray:
    """``img`` with ``delta`` added to every channel (clipped)."""
    return np.clip(img.astype(np.int16) + delta, 0, 255).astype(np.uint8)


def cropped(img: np.ndarray, left: float = 0.0, right: float = 0.0) -> np.ndarray:
    """``img`` with fractions of its width cut from the left and right (new framing)."""
    w = img.shape[1]
    return img[:, round(w * left) : w - round(w * right)]


def save(img: np.ndarray, path: Path, quality: int = 90) -> Path:
    """Write an RGB array as a JPEG (or PNG by suffix); returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, quality=quality)
    return path
