"""One image file's hashes: SHA-256, the 64-bit DCT pHash and the 128-bit gradient hash.

The perceptual hash is the 64-bit DCT pHash of ``imagehash.phash``: the image
in 8-bit grayscale, resized to 32x32, a 2-D DCT-II, the top-left 8x8
coefficients (DC included) thresholded at their median (``> median``), bits
read row-major with the first coefficient as the most significant bit, so
``phash == int(str(imagehash.phash(img)), 16)`` on the same 32x32 input.

Decoding dominates the cost, so JPEGs are decoded at 1/8, 1/4 or 1/2 size by
libjpeg (OpenCV ``IMREAD_REDUCED_GRAYSCALE_*``, the largest reduction that
keeps the short side >= 32 px) and shrunk with ``INTER_AREA``; the file is
read once for the SHA-256, the header size and the decode.

The second signal, ``dhash``, comes from the same decode: the signs of the
horizontal differences of a 9x8 area-average thumbnail (64 bits) and of the
vertical differences of an 8x9 one (64 bits). pHash finds the candidates; the
gradient hash confirms them (see :mod:`.confirm`): it is computed from other
features (local gradients, not the signs of global DCT coefficients), so an
unrelated pair that pHash happens to place near each other is unlikely to be
near in both (measured in ``benchmarks/dedup.py``).

Only processes that hash images import this module (and OpenCV with it, ~35 MiB
resident): annotation-only builds never load it.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import polars as pl
from PIL import Image

from detforge.builders.dedup.hashing import HASHES

HASH_SIDE = 32
HASH_BITS = 8

_REDUCED = ((8, cv2.IMREAD_REDUCED_GRAYSCALE_8), (4, cv2.IMREAD_REDUCED_GRAYSCALE_4))
_REDUCED += ((2, cv2.IMREAD_REDUCED_GRAYSCALE_2), (1, cv2.IMREAD_GRAYSCALE))

# cv2.dct is orthonormal; scipy.fftpack's (imagehash's) is not. Their ratio is a
# constant except on row/column 0, so rescaling those keeps the median test identical.
_SCIPY_SCALE = np.ones((HASH_BITS, HASH_BITS))
_SCIPY_SCALE[0, :] *= np.sqrt(2.0)
_SCIPY_SCALE[:, 0] *= np.sqrt(2.0)


def _pack(bits: np.ndarray) -> int:
    """64 booleans as an int, the first as the most significant bit."""
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def phash_pixels(gray32: np.ndarray) -> int:
    """The 64-bit pHash of a 32x32 grayscale array (imagehash's definition)."""
    dct = cv2.dct(np.asarray(gray32, dtype=np.float64))[:HASH_BITS, :HASH_BITS] * _SCIPY_SCALE
    flat = dct.ravel()
    low = np.partition(flat, (31, 32))  # the median of 64 values: the mean of the middle two
    return _pack(flat > (low[31] + low[32]) / 2)


def dhash_pixels(gray: np.ndarray) -> tuple[int, int]:
    """The 128-bit gradient hash of a grayscale array: (horizontal, vertical) 64-bit halves."""
    wide = cv2.resize(gray, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    tall = cv2.resize(gray, (8, 9), interpolation=cv2.INTER_AREA).astype(np.int16)
    return _pack(wide[:, 1:] > wide[:, :-1]), _pack(tall[1:] > tall[:-1])


#: JPEG start-of-frame markers (SOF0-SOF15 but DHT, JPG and DAC), which hold the size
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from a JPEG's frame header, or None when ``data`` is not a
    well-formed JPEG (then PIL reads the header). PIL reports the same numbers; reading
    them here skips ~40 us of PIL's per-file set-up, a tenth of the hashing time."""
    if data[:2] != b"\xff\xd8":
        return None
    at, end = 2, len(data)
    while at + 4 <= end:
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # no length field
            at += 2
            continue
        length = int.from_bytes(data[at + 2 : at + 4], "big")
        if marker in _SOF:
            if at + 9 > end or length < 7:
                return None
            height = int.from_bytes(data[at + 5 : at + 7], "big")
            width = int.from_bytes(data[at + 7 : at + 9], "big")
            return (width, height) if width and height else None
        if marker == 0xDA or length < 2:  # scan data before any frame header: malformed
            return None
        at += 2 + length
    return None


def _reduced_flag(width: int, height: int) -> int:
    """The largest libjpeg reduction whose decoded short side stays >= 32 px."""
    short = min(width, height)
    for factor, flag in _REDUCED:
        if -(-short // factor) >= HASH_SIDE:
            return flag | cv2.IMREAD_IGNORE_ORIENTATION
    return cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION


Hashes = tuple[str | None, int | None, list[int] | None, int | None, int | None, str | None]


def hash_file(path: str) -> Hashes:
    """``(sha256, phash, dhash, width, height, error)`` of one image file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return None, None, None, None, None, f"unreadable: {exc.strerror or exc}"
    sha = hashlib.sha256(data).hexdigest()
    try:
        # EXIF orientation is ignored here and below, as annotations use stored pixels.
        width, height = jpeg_size(data) or Image.open(io.BytesIO(data)).size
    except Image.UnidentifiedImageError:
        return sha, None, None, None, None, "not an image (no known image format)"
    except Exception as exc:  # PIL raises many types for a bad header
        return sha, None, None, None, None, f"not an image: {exc}"
    gray = cv2.imdecode(np.frombuffer(data, np.uint8), _reduced_flag(width, height))
    if gray is None:
        return sha, None, None, width, height, "not decodable by OpenCV"
    small = cv2.resize(gray, (HASH_SIDE, HASH_SIDE), interpolation=cv2.INTER_AREA)
    return sha, phash_pixels(small), list(dhash_pixels(gray)), width, height, None


def hash_batch(paths: Sequence[str]) -> pl.DataFrame:
    """:data:`HASHES` rows for ``paths`` (the unit of work an engine hands a worker)."""
    rows = [(p, *hash_file(p)) for p in paths]
    return pl.DataFrame(rows, schema=HASHES, orient="row")
