"""Content and perceptual hashes of image files, with a per-file cache.

The perceptual hash is the 64-bit DCT pHash of ``imagehash.phash``: the image
in 8-bit grayscale, resized to 32x32, a 2-D DCT-II, the top-left 8x8
coefficients (DC included) thresholded at their median (``> median``), bits
read row-major with the first coefficient as the most significant bit, so
``phash == int(str(imagehash.phash(img)), 16)`` on the same 32x32 input.

Decoding dominates the cost, so JPEGs are decoded at 1/8, 1/4 or 1/2 size by
libjpeg (OpenCV ``IMREAD_REDUCED_GRAYSCALE_*``, the largest reduction that
keeps the short side >= 32 px) and shrunk with ``INTER_AREA``; the file is
read once for the SHA-256, the header size and the decode.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import polars as pl
from PIL import Image

from detforge.atomic import atomic_path

HASH_SIDE = 32
HASH_BITS = 8

#: one row per hashed file (``error`` is null when the file hashed fine)
HASHES = pl.Schema(
    {
        "path": pl.String,
        "sha256": pl.String,
        "phash": pl.UInt64,
        "width": pl.Int32,
        "height": pl.Int32,
        "error": pl.String,
    }
)
_CACHE_KEY = {"path": pl.String, "size": pl.Int64, "mtime_ns": pl.Int64}
CACHE_FILE = "image_hashes.parquet"

_REDUCED = ((8, cv2.IMREAD_REDUCED_GRAYSCALE_8), (4, cv2.IMREAD_REDUCED_GRAYSCALE_4))
_REDUCED += ((2, cv2.IMREAD_REDUCED_GRAYSCALE_2), (1, cv2.IMREAD_GRAYSCALE))

# cv2.dct is orthonormal; scipy.fftpack's (imagehash's) is not. Their ratio is a
# constant except on row/column 0, so rescaling those keeps the median test identical.
_SCIPY_SCALE = np.ones((HASH_BITS, HASH_BITS))
_SCIPY_SCALE[0, :] *= np.sqrt(2.0)
_SCIPY_SCALE[:, 0] *= np.sqrt(2.0)
_BIT_WEIGHTS = np.uint64(1) << np.arange(63, -1, -1, dtype=np.uint64)


def phash_pixels(gray32: np.ndarray) -> int:
    """The 64-bit pHash of a 32x32 grayscale array (imagehash's definition)."""
    dct = cv2.dct(np.asarray(gray32, dtype=np.float64))[:HASH_BITS, :HASH_BITS] * _SCIPY_SCALE
    bits = (dct > np.median(dct)).ravel()
    return int(np.bitwise_or.reduce(_BIT_WEIGHTS[bits], initial=np.uint64(0)))


def _reduced_flag(width: int, height: int) -> int:
    """The largest libjpeg reduction whose decoded short side stays >= 32 px."""
    short = min(width, height)
    for factor, flag in _REDUCED:
        if -(-short // factor) >= HASH_SIDE:
            return flag | cv2.IMREAD_IGNORE_ORIENTATION
    return cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION


def hash_file(path: str) -> tuple[str | None, int | None, int | None, int | None, str | None]:
    """``(sha256, phash, width, height, error)`` of one image file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return None, None, None, None, f"unreadable: {exc.strerror or exc}"
    sha = hashlib.sha256(data).hexdigest()
    try:
        # EXIF orientation is ignored here and below, as annotations use stored pixels.
        width, height = Image.open(io.BytesIO(data)).size
    except Exception as exc:  # PIL raises many types for a bad header
        return sha, None, None, None, f"not an image: {exc}"
    gray = cv2.imdecode(np.frombuffer(data, np.uint8), _reduced_flag(width, height))
    if gray is None:
        return sha, None, width, height, "not decodable by OpenCV"
    small = cv2.resize(gray, (HASH_SIDE, HASH_SIDE), interpolation=cv2.INTER_AREA)
    return sha, phash_pixels(small), width, height, None


def hash_batch(paths: Sequence[str]) -> pl.DataFrame:
    """:data:`HASHES` rows for ``paths`` (the unit of work an engine hands a worker)."""
    rows = [(p, *hash_file(p)) for p in paths]
    return pl.DataFrame(rows, schema=HASHES, orient="row")


def _stat(paths: list[str]) -> pl.DataFrame:
    sizes, mtimes = [], []
    for p in paths:
        try:
            st = os.stat(p)
            sizes.append(st.st_size)
            mtimes.append(st.st_mtime_ns)
        except OSError:
            sizes.append(None)
            mtimes.append(None)
    return pl.DataFrame({"path": paths, "size": sizes, "mtime_ns": mtimes}, schema=_CACHE_KEY)


def _read_cache(cache_dir: Path | None) -> pl.DataFrame:
    file = cache_dir / CACHE_FILE if cache_dir else None
    if file is None or not file.is_file():
        return pl.DataFrame(schema={**_CACHE_KEY, **HASHES})
    return pl.read_parquet(file)


def hash_images(
    paths: Sequence[str | Path],
    *,
    engine: str = "process",
    workers: int | None = None,
    cache_dir: Path | None = None,
) -> pl.DataFrame:
    """SHA-256, pHash (UInt64) and size of every image file, in the order given.

    Columns: ``path, sha256, phash, width, height, error``. A file that cannot be
    read or decoded gets nulls and a one-line ``error``; it is never dropped.
    With ``cache_dir``, results are cached in ``image_hashes.parquet`` keyed by
    ``(path, size, mtime_ns)`` so a rebuild does not re-read unchanged files.
    """
    from detforge.builders.dedup.engines import run_batches

    wanted = pl.DataFrame({"path": [str(p) for p in paths]}, schema={"path": pl.String})
    unique = wanted.unique("path", maintain_order=True)
    stats = _stat(unique["path"].to_list())
    cache = _read_cache(cache_dir)
    found = stats.join(cache, on=list(_CACHE_KEY), how="inner").filter(pl.col("error").is_null())
    todo = stats.join(found.select("path"), on="path", how="anti")
    fresh = run_batches(hash_batch, todo["path"].to_list(), engine=engine, workers=workers)
    if cache_dir is not None and fresh["error"].is_null().any():
        new_rows = todo.join(fresh, on="path").filter(
            pl.col("size").is_not_null() & pl.col("error").is_null()
        )
        keep = cache.join(new_rows.select("path"), on="path", how="anti")
        merged = pl.concat([keep, new_rows.select(cache.columns)]).sort("path")
        cache_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(cache_dir / CACHE_FILE) as tmp:
            merged.write_parquet(tmp)
    known = pl.concat([found.select(HASHES.names()), fresh.select(HASHES.names())])
    return wanted.join(known, on="path", how="left", maintain_order="left").cast(HASHES)


def image_paths(images: pl.DataFrame, roots: dict[str, str]) -> pl.Series:
    """Absolute file path of every image row: ``roots[source] / file_name``."""
    from detforge.builders.dedup.config import DedupError

    missing = sorted(set(images["source"].unique().to_list()) - set(roots))
    if missing:
        raise DedupError(f"no image root for source(s) {', '.join(map(str, missing))}")
    root = pl.col("source").replace_strict({s: str(Path(r)) for s, r in roots.items()})
    return images.select(pl.concat_str(root, pl.lit(os.sep), pl.col("file_name")).alias("path"))[
        "path"
    ]


def attach_hashes(
    images: pl.DataFrame,
    roots: dict[str, str],
    *,
    engine: str = "process",
    workers: int | None = None,
    cache_dir: Path | None = None,
    read_files: bool = True,
) -> pl.DataFrame:
    """``images`` with ``sha256``/``phash`` filled where null, plus ``file_width``,
    ``file_height`` (the file's own size) and ``hash_error`` (null when hashed).

    Rows that already carry both hashes (an earlier stage hashed them) are not re-read;
    with ``read_files=False`` (nothing to match on) no file is read at all.
    """
    done = pl.col("sha256").is_not_null() & pl.col("phash").is_not_null()
    images = images.with_row_index("_row")
    todo = images.filter(~done) if read_files else images.clear()
    hashes = hash_images(
        image_paths(todo, roots).to_list() if todo.height else [],
        engine=engine,
        workers=workers,
        cache_dir=cache_dir,
    )
    fresh = todo.with_columns(
        sha256=hashes["sha256"],
        phash=hashes["phash"],
        file_width=hashes["width"],
        file_height=hashes["height"],
        hash_error=hashes["error"],
    )
    known = (images.filter(done) if read_files else images).with_columns(
        file_width=pl.col("width"), file_height=pl.col("height"), hash_error=pl.lit(None, pl.String)
    )
    return pl.concat([known, fresh]).sort("_row").drop("_row")
