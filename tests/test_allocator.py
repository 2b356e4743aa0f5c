"""detforge has polars' jemalloc hand freed pages back at once (see detforge/__init__.py)."""

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
