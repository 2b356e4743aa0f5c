"""Polars' allocator set to hand freed pages back at once, for the process that asks.

Polars allocates through its own jemalloc, which by default keeps freed pages for a
while before returning them to the system. A build holds a few large tables in turn, so
those pages pile up: returning them at once keeps its peak memory near its live data
(-25 % on the build benchmark, a few % slower).

jemalloc reads ``_RJEM_MALLOC_CONF`` once, when polars starts, so
:func:`release_pages_promptly` has to run before anything imports polars. The ``detforge``
command and the benchmark scripts call it; a library user who wants the same calls it
first thing (or sets the variable). Importing detforge changes nothing, and the variable
is put back as it was once polars has started, so child processes (detector training,
Ray workers) start with polars' defaults — unless the user set ``_RJEM_MALLOC_CONF``
themselves: their value is left alone, wins, and is inherited.
"""

from __future__ import annotations

import os
import sys

ENV = "_RJEM_MALLOC_CONF"
PROMPT_RELEASE = "dirty_decay_ms:0,muzzy_decay_ms:0"


def release_pages_promptly() -> bool:
    """Start polars with jemalloc returning freed pages at once. False (nothing done) when
    polars is already loaded or the user set ``_RJEM_MALLOC_CONF``."""
    if "polars" in sys.modules or ENV in os.environ:
        return False
    os.environ[ENV] = PROMPT_RELEASE
    try:
        import polars  # noqa: F401  (jemalloc reads its settings as polars starts)
    finally:
        os.environ.pop(ENV, None)  # polars may have added its defaults: not for children
    return True
