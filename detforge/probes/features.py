"""Batched, de-duplicated and cached extraction of zero-shot scores and per-layer features.

The unit of work is a distinct (image, text) pair: items share images and texts, so each
pair is run once, pairs are sorted by image so a batch decodes each image once, and the
results are cached under ``<cache>/<model key>/<probe-set hash>-f<FEATURES_VERSION>/``:
``scores.parquet`` and one ``{pooling}_L{layer}.npy`` per layer, aligned with
``feature_pairs.parquet``, plus the image-only and text-only embeddings. A rerun loads what
is cached and runs the model only for what is missing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from detforge.atomic import atomic_path
from detforge.errors import InputError
from detforge.probes.adapters import Adapter

#: bumped whenever what an adapter returns changes, so older caches are not reused
FEATURES_VERSION = 2


def image_key(image_id: pl.Expr, flip: pl.Expr) -> pl.Expr:
    """``<image_id>:<0|1>`` — one decoded (possibly mirrored) image."""
    return pl.concat_str(image_id.cast(pl.String), pl.lit(":"), flip.cast(pl.Int8).cast(pl.String))


def model_key(model: str, random_init: bool, seed: int) -> str:
    """A file-system-safe cache key of a model (and of its random-init twin)."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", model.strip("/"))[-60:]
    ident = model
    if Path(model).is_dir():  # a local model: its path and its files' sizes and times
        files = sorted(p for p in Path(model).iterdir() if p.is_file())
        ident = str(Path(model).resolve()) + "".join(
            f"|{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files
        )
    digest = hashlib.sha256(ident.encode())
    key = f"{slug}-{digest.hexdigest()[:8]}"
    return f"{key}-random{seed}" if random_init else key


class ImageLoader:
    """Decodes the images of a probe set from the dataset roots by key ``<image_id>:<flip>``
    (``flip`` 1 = the horizontally mirrored image)."""

    def __init__(self, roots: dict[str, str], images: pl.DataFrame):
        self.roots = roots
        rows = images.select("image_id", "source", "file_name").unique("image_id")
        self.rows = {r["image_id"]: r for r in rows.iter_rows(named=True)}

    def __call__(self, key: str):
        from PIL import Image, ImageOps

        image_id, flip = key.split(":")
        row = self.rows[int(image_id)]
        root = self.roots.get(row["source"])
        if root is None:
            raise InputError(
                "probeset.json", row["image_id"], "roots", f"no root for source {row['source']!r}"
            )
        path = Path(root) / row["file_name"]
        if not path.is_file():
            raise InputError(path, row["image_id"], "file_name", "image file not found")
        try:
            with Image.open(path) as image:
                image = image.convert("RGB")
        except OSError as error:  # truncated or not an image: name the file (PIL does not)
            raise InputError(
                path, row["image_id"], "file_name", f"unreadable image: {error}"
            ) from None
        return ImageOps.mirror(image) if flip == "1" else image


def _batches(n: int, size: int):
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def extract(
    adapter_factory: Callable[[], Adapter],
    pairs: pl.DataFrame,
    loader: Callable[[str], Any],
    *,
    layers: list[int],
    pooling: str,
    batch_size: int,
    cache: Path | None,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
) -> tuple[pl.DataFrame, dict[int, np.ndarray]]:
    """Scores of every pair in ``pairs`` (columns key, text, features) and per-layer features
    of the pairs with ``features`` true, in the order of ``pairs.filter(features)``.

    ``pooling`` (the adapter's, resolved) names the cached feature files.
    ``adapter_factory`` is only called when something is not cached.
    """
    import torch

    pairs = pairs.unique(["key", "text"], keep="any").sort("key", "text")
    feature_pairs = pairs.filter(pl.col("features")).select("key", "text")
    scores = _load_scores(cache, pairs)
    feats = {layer: _load_features(cache, feature_pairs, pooling, layer) for layer in layers}
    missing_layers = [layer for layer, f in feats.items() if f is None]
    todo = pairs if scores is None else pairs.filter(pl.lit(False))
    if missing_layers:
        todo = pairs if scores is None else feature_pairs.with_columns(features=pl.lit(True))
    if todo.height:
        adapter = adapter_factory()
        tick = progress("extracting", todo.height) if progress else None
        keys, texts = todo["key"].to_list(), todo["text"].to_list()
        want = todo["features"].to_list() if "features" in todo.columns else [True] * todo.height
        out_scores: dict[str, list[np.ndarray]] = {}
        out_feats: dict[int, list[np.ndarray]] = {layer: [] for layer in missing_layers}
        with torch.inference_mode():
            for part in _batches(todo.height, batch_size):
                images = {k: loader(k) for k in dict.fromkeys(keys[part])}
                batch_feats = any(want[part]) and bool(missing_layers)
                out = adapter.forward(
                    keys[part],
                    [images[k] for k in keys[part]],
                    texts[part],
                    missing_layers,
                    batch_feats,
                )
                for name, values in out.scores.items():
                    out_scores.setdefault(name, []).append(values)
                mask = np.asarray(want[part])
                for layer in missing_layers if batch_feats else ():
                    out_feats[layer].append(out.features[layer][mask])
                if tick:
                    tick(part.stop - part.start)
        if scores is None:
            scores = todo.select("key", "text").with_columns(
                pl.Series(name, np.concatenate(v)) for name, v in out_scores.items()
            )
            _save(cache, "scores.parquet", lambda p: scores.write_parquet(p))
        for layer in missing_layers:
            array = np.concatenate(out_feats[layer]).astype(np.float32)
            feats[layer] = array
            _save(cache, f"{pooling}_L{layer}.npy", lambda p, a=array: np.save(p, a))
        _save(cache, "feature_pairs.parquet", lambda p: feature_pairs.write_parquet(p))
    return scores, feats


def _save(cache: Path | None, name: str, writer) -> None:
    if cache is None:
        return
    cache.mkdir(parents=True, exist_ok=True)
    with atomic_path(cache / name) as tmp:
        if name.endswith(".npy"):
            with open(tmp, "wb") as handle:
                writer(handle)
        else:
            writer(tmp)


def _load_scores(cache: Path | None, pairs: pl.DataFrame) -> pl.DataFrame | None:
    file = cache / "scores.parquet" if cache else None
    if file is None or not file.is_file():
        return None
    scores = pl.read_parquet(file)
    if scores.select("key", "text").equals(pairs.select("key", "text")):
        return scores
    return None


def _load_features(cache: Path | None, pairs: pl.DataFrame, pooling: str, layer: int):
    if cache is None:
        return None
    file, index = cache / f"{pooling}_L{layer}.npy", cache / "feature_pairs.parquet"
    if not (file.is_file() and index.is_file()):
        return None
    if not pl.read_parquet(index).equals(pairs):
        return None
    return np.load(file)


def extract_texts(
    encoder_factory: Callable[[], Callable[[list[str]], np.ndarray]],
    texts: list[str],
    cache: Path | None,
    *,
    batch_size: int = 64,
) -> np.ndarray:
    """Text-only embeddings of ``texts`` (blind controls), cached as ``text.npy`` + index."""
    return _one_modality(encoder_factory, texts, lambda batch: batch, cache, "text", batch_size)


def extract_images(
    encoder_factory: Callable[[], Callable[[list], np.ndarray]],
    keys: list[str],
    loader: Callable[[str], Any],
    cache: Path | None,
    *,
    batch_size: int = 64,
) -> np.ndarray:
    """Image-only embeddings of the images ``keys`` (the image-only control), cached as
    ``image.npy`` + index."""
    return _one_modality(
        encoder_factory, keys, lambda batch: [loader(k) for k in batch], cache, "image", batch_size
    )


def _one_modality(factory, names: list[str], inputs, cache: Path | None, what: str, batch_size):
    import torch

    index = cache / f"{what}s.parquet" if cache is not None else None
    if (
        index is not None
        and (cache / f"{what}.npy").is_file()
        and index.is_file()
        and pl.read_parquet(index)[what].to_list() == names
    ):
        return np.load(cache / f"{what}.npy")
    encode = factory()
    with torch.inference_mode():
        parts = [encode(inputs(names[part])) for part in _batches(len(names), batch_size)]
    array = np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, 1), np.float32)
    _save(cache, f"{what}.npy", lambda p: np.save(p, array))
    _save(cache, f"{what}s.parquet", lambda p: pl.DataFrame({what: names}).write_parquet(p))
    return array
