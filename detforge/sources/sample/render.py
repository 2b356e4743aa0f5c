"""Generated photos: a smooth random background with a coloured shape in every box.

Backgrounds are a small random colour grid upsampled bicubically, so each scene has its own
low-frequency structure (distinct perceptual hashes); a box's shape fills the box, so the
boxes mean something. Everything is a function of the scene's numbers: byte-identical JPEGs
for the same inputs (fixed quality, no metadata, no timestamps).
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np
from PIL import Image, ImageDraw

from detforge.sources.sample.catalog import CONCEPTS

Box = tuple[float, float, float, float]  # normalised x1, y1, x2, y2


@dataclasses.dataclass(frozen=True)
class Scene:
    """A picture: background colour grid and ``(concept, normalised box)`` objects."""

    grid: np.ndarray  # (rows, cols, 3) uint8 control colours
    objects: tuple[tuple[str, Box], ...]
    width: int
    height: int


def random_grid(rng: np.random.Generator, low: int = 40, high: int = 215) -> np.ndarray:
    """A 3×4 grid of background control colours."""
    return rng.integers(low, high, size=(3, 4, 3), dtype=np.uint8)


def look_alike_grid(grid: np.ndarray) -> np.ndarray:
    """Same colours, other layout: the grid turned 180° (similar palette, different photo)."""
    return np.ascontiguousarray(grid[::-1, ::-1])


def draw(scene: Scene) -> Image.Image:
    """Render ``scene`` at its own size."""
    w, h = scene.width, scene.height
    image = Image.fromarray(scene.grid).resize((w, h), Image.Resampling.BICUBIC)
    pen = ImageDraw.Draw(image)
    for concept, (x1, y1, x2, y2) in scene.objects:
        colour = CONCEPTS[concept]["colour"]
        outline = tuple(max(0, c - 60) for c in colour)
        xy = [x1 * w, y1 * h, x2 * w - 1, y2 * h - 1]
        if CONCEPTS[concept]["shape"] == "ellipse":
            pen.ellipse(xy, fill=colour, outline=outline, width=2)
        else:
            pen.rectangle(xy, fill=colour, outline=outline, width=2)
    return image


def encode(image: Image.Image, quality: int) -> bytes:
    """Baseline JPEG at a fixed quality, no metadata: deterministic bytes."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality, optimize=False, progressive=False)
    return buffer.getvalue()


def resized(image: Image.Image, width: int, height: int) -> Image.Image:
    """``image`` resized (area filter), the way a mirror re-serves a photo."""
    return image.resize((width, height), Image.Resampling.LANCZOS)


def cropped(image: Image.Image, keep: float) -> Image.Image:
    """The left ``keep`` fraction of ``image`` (a crop that changes the aspect ratio)."""
    return image.crop((0, 0, round(image.width * keep), image.height))


def crop_boxes(objects: tuple[tuple[str, Box], ...], keep: float) -> tuple[tuple[str, Box], ...]:
    """Boxes on the left-``keep`` crop: renormalised, clipped; boxes mostly cut away dropped."""
    out = []
    for concept, (x1, y1, x2, y2) in objects:
        nx1, nx2 = x1 / keep, min(x2 / keep, 1.0)
        if nx2 - nx1 > 0.5 * (x2 - x1) / keep:
            out.append((concept, (nx1, y1, nx2, y2)))
    return tuple(out)


def layout(
    rng: np.random.Generator, concepts: list[str], *, min_size: float = 0.14
) -> tuple[tuple[str, Box], ...]:
    """Place one box per entry of ``concepts`` in distinct cells of a 3×3 grid."""
    cells = rng.permutation(9)[: len(concepts)]
    objects = []
    for concept, cell in zip(concepts, cells, strict=True):
        row, col = divmod(int(cell), 3)
        w = rng.uniform(min_size, 0.3)
        h = rng.uniform(min_size, 0.3)
        x1 = col / 3 + rng.uniform(0.005, 1 / 3 - w - 0.005) if w < 1 / 3 - 0.01 else col / 3
        y1 = row / 3 + rng.uniform(0.005, 1 / 3 - h - 0.005) if h < 1 / 3 - 0.01 else row / 3
        objects.append((concept, (round(x1, 4), round(y1, 4), round(x1 + w, 4), round(y1 + h, 4))))
    return tuple(objects)
