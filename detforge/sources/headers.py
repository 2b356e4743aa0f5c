"""Image width/height from file headers (no pixel decode), on a process pool for many files."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image
from rich.progress import Progress

from detforge.errors import InputError

#: below this many files a pool costs more than it saves
POOL_MIN_FILES = 2000
CHUNK = 512


def _size(path: str) -> tuple[int, int] | str:
    """``(width, height)`` of one image, or the error text (raised by the caller)."""
    try:
        with Image.open(path) as image:  # lazy: reads the header only
            return image.size
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        return f"cannot read image header ({error})"


def _sizes(paths: list[str]) -> list[tuple[int, int] | str]:
    return [_size(p) for p in paths]


def image_sizes(
    paths: list[Path], *, workers: int | None = None, description: str = "image headers"
) -> list[tuple[int, int]]:
    """Width and height of every image in ``paths`` (same order); an unreadable file raises."""
    names = [str(p) for p in paths]
    chunks = [names[i : i + CHUNK] for i in range(0, len(names), CHUNK)]
    results: list[tuple[int, int] | str] = []
    with Progress(transient=True, disable=len(names) < POOL_MIN_FILES) as progress:
        task = progress.add_task(description, total=len(names))
        if len(names) < POOL_MIN_FILES:
            results = _sizes(names)
        else:
            workers = workers or min(8, os.cpu_count() or 1)
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for chunk in pool.map(_sizes, chunks):
                    results.extend(chunk)
                    progress.advance(task, len(chunk))
    for name, result in zip(names, results, strict=True):
        if isinstance(result, str):
            raise InputError(name, None, None, result)
    return results  # type: ignore[return-value]
