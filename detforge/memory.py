"""Memory habits: no cycle collections while bulk parsing builds millions of small objects,
the C heap's free pages handed back once they are gone, and filters of large tables that
bound their transient copy (:func:`filter_columns`)."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
from collections.abc import Iterator
from functools import cache

import polars as pl


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cycle collector while millions of small containers are built.

    Parsed JSON and COCO-style dicts hold no cycles, yet creating them triggers
    repeated full collections (about 2x slower); reference counting still frees memory.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@cache
def _malloc_trim():
    """glibc's ``malloc_trim``, or None on a C library without it (macOS, musl)."""
    with contextlib.suppress(OSError, AttributeError):
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    return None


def release_free_heap() -> None:
    """Return the C heap's free pages to the system.

    Parsing a large JSON file frees its Python objects into glibc's heap, which keeps
    the pages for reuse (~20 MB per million annotations); the next stage allocates
    through polars' own allocator and would never reuse them. A no-op off glibc.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def filter_columns(
    frame: pl.DataFrame, mask: pl.Series, columns: list[str] | None = None
) -> pl.DataFrame:
    """``frame.select(columns).filter(mask)``, built one column at a time, each column in
    one chunk (a ``select`` of a frame chunked unevenly copies it, too).

    Polars runs a whole-frame ``filter`` on one chunk layout: when the frame's columns (or
    the mask) are chunked differently, as concatenated and joined tables are, it first
    copies the whole frame into one chunk, so the filter's peak is about twice the table.
    Column by column, the peak is the result plus one column."""
    mask = mask.rechunk()
    return pl.DataFrame(
        [frame.get_column(name).filter(mask).rechunk() for name in columns or frame.columns]
    )
