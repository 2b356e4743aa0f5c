"""Parse a large COCO-style JSON with its ``annotations`` array in chunks.

Materialising 1M+ annotation dicts at once costs ~1 KB each; parsing the array about a MB
at a time lets the caller turn each chunk into columns and free it. Splits are made at
``}, {`` between array elements; a chunk only parses as a JSON array when the split really
sat between two top-level elements (a split inside a string or a nested value leaves
brackets or quotes unbalanced), so any surprise falls back to one whole-document parse.

The file is memory-mapped rather than read: the pages of each parsed chunk are handed back
(``MADV_DONTNEED``; the kernel re-reads them from the file should they be touched again),
so the file's text never needs to be resident all at once.
"""

from __future__ import annotations

import mmap
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from detforge.errors import InputError
from detforge.memory import gc_paused
from detforge.sources import common

Convert = Callable[[int, Any], Any]

#: text per chunk: ~8k annotation dicts, whose memory the next chunk reuses while it is
#: still cached (4 MB chunks measured ~15% slower on the 1M-box benchmark, peak no lower)
CHUNK_BYTES = 1 << 20
_SPLIT = re.compile(rb"\}\s*,\s*\{")
_END = re.compile(rb"\}\s*(\])")  # an array of objects ends in "}]"
#: closing-bracket candidates tried per chunk before giving up on the fast path
MAX_END_TRIES = 64


def _parse_array(text: bytes, start: int, end: int) -> list | None:
    try:
        value = orjson.loads(b"[" + text[start:end] + b"]")
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, list) else None


def _release(text: bytes | mmap.mmap, end: int) -> None:
    """Drop the resident pages of ``text[:end]`` when ``text`` is a mapped file."""
    if isinstance(text, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        end -= end % mmap.PAGESIZE
        if end:
            text.madvise(mmap.MADV_DONTNEED, 0, end)


def _walk(text: bytes | mmap.mmap, start: int, convert: Convert) -> tuple[list, int] | None:
    """Convert the array's elements chunk by chunk from ``start`` (just after ``[``).

    Returns the converted chunks and the index of the closing ``]``, or None when the
    array cannot be cut safely (the caller then parses the whole document).
    """
    frames: list = []
    pos, offset = start, 0
    while True:
        split = _SPLIT.search(text, min(pos + CHUNK_BYTES, len(text)))
        records = None if split is None else _parse_array(text, pos, split.start() + 1)
        if records is not None:
            frames.append(convert(offset, records))
            offset += len(records)
            pos = split.end() - 1  # at the next element's "{"
            _release(text, pos)
            continue
        # the array ends before the next split (or there is none): find its "]"
        stop = split.start() if split is not None else len(text)
        if not text[pos:stop].lstrip().startswith(b"{"):  # an empty array
            empty = re.compile(rb"\s*\]").match(text, pos)
            return (frames or [convert(offset, [])], empty.end() - 1) if empty else None
        for tries, end in enumerate(_END.finditer(text, pos, stop)):
            if tries >= MAX_END_TRIES:
                return None
            records = _parse_array(text, pos, end.start(1))
            if records is not None:
                if records or not frames:
                    frames.append(convert(offset, records))
                return frames, end.start(1)
        return None


def _split(text: mmap.mmap, key: str, convert: Convert) -> tuple[Any, list] | None:
    """:func:`load_split` on the mapped file, or None when it cannot be cut safely."""
    keys = list(re.finditer(rb'"' + re.escape(key.encode()) + rb'"\s*:\s*\[', text))
    _release(text, len(text))  # the search touched every page
    found = _walk(text, keys[0].end(), convert) if len(keys) == 1 else None
    if found is None:
        return None
    frames, end = found
    try:
        rest = orjson.loads(text[: keys[0].end()] + text[end:])
    except orjson.JSONDecodeError:
        return None
    return (rest, frames) if isinstance(rest, dict) and rest.get(key) == [] else None


def _mapped(path: Path) -> mmap.mmap | None:
    """``path`` mapped read-only; None for an empty file (which cannot be mapped)."""
    try:
        with path.open("rb") as handle:  # the mapping keeps its own descriptor
            if os.fstat(handle.fileno()).st_size == 0:
                return None
            return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as error:
        raise InputError(path, None, None, f"cannot read file ({error.strerror})") from None


def load_split(path: Path, key: str, convert: Convert) -> tuple[Any, list]:
    """Parse ``path``; ``convert(offset, records)`` turns each chunk of ``key``'s array
    into a frame. Returns ``(document with key → [], [converted chunks])``.

    When the file has no such top-level array (or it cannot be cut safely) the whole
    document is parsed once and ``convert`` gets every record in one call; a document
    without ``key`` returns no chunks.
    """
    text = _mapped(Path(path))
    with gc_paused():
        if text is not None:
            with text:
                found = _split(text, key, convert)
            if found is not None:
                return found
        data = common.load_json(path)
        if not isinstance(data, dict) or key not in data:
            return data, []
        return data, [convert(0, data[key])]
