"""Freed memory goes back to the system: polars' jemalloc (detforge/__init__.py) and the C
heap after bulk parsing (detforge.memory)."""

import os
import subprocess
import sys

CHILD = """
import detforge, polars as pl
def rss(): return int(open("/proc/self/statm").read().split()[1]) * 4096 >> 20
column = pl.select((pl.int_range(0, 20_000_000) * 3).alias("x")).to_series()  # 160 MB
held = rss()
del column
print(held, rss())
"""


def _held_and_after(env: dict[str, str]) -> tuple[int, int]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True
    )
    held, after = map(int, done.stdout.split())
    return held, after


def test_freed_table_memory_goes_back_to_the_system() -> None:
    env = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    held, after = _held_and_after(env)
    assert held - after > 120, (held, after)


def test_a_users_allocator_setting_wins() -> None:
    held, after = _held_and_after({**os.environ, "_RJEM_MALLOC_CONF": "dirty_decay_ms:60000"})
    assert held - after < 40, (held, after)


TRIM_CHILD = """
from detforge.memory import release_free_heap
def rss(): return int(open("/proc/self/statm").read().split()[1]) * 4096 >> 20
blocks = [bytes(1000) + bytes([i % 256]) for i in range(200_000)]  # C-heap blocks, ~200 MB
last = blocks[-1]  # keeps the heap's top in use: glibc cannot shrink it by itself
del blocks
freed = rss()
release_free_heap()
print(freed, rss())
"""


def test_release_free_heap_returns_freed_c_heap_pages() -> None:
    done = subprocess.run(
        [sys.executable, "-c", TRIM_CHILD], capture_output=True, text=True, check=True
    )
    freed, after = map(int, done.stdout.split())
    assert freed - after > 150, (freed, after)
