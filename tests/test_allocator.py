"""Freed memory goes back to the system: polars' jemalloc when the process asks
(detforge.allocator: the CLI does, importing detforge does not, children are not told) and
the C heap after bulk parsing (detforge.memory)."""

import os
import subprocess
import sys

CHILD = """
import os, sys
import detforge
from detforge.allocator import release_pages_promptly
assert "polars" not in sys.modules  # importing detforge does not start polars
if "prompt" in sys.argv:
    release_pages_promptly()
import polars as pl
def rss(): return int(open("/proc/self/statm").read().split()[1]) * 4096 >> 20
column = pl.select((pl.int_range(0, 20_000_000) * 3).alias("x")).to_series()  # 160 MB
held = rss()
del column
print(held, rss(), os.environ.get("_RJEM_MALLOC_CONF", "unset"))
"""


def _run(env: dict[str, str], *args: str) -> tuple[int, int, str]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *args], env=env, capture_output=True, text=True, check=True
    )
    held, after, setting = done.stdout.split()
    return int(held), int(after), setting


def _fresh_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}


def test_prompt_release_hands_freed_table_memory_back() -> None:
    held, after, _ = _run(_fresh_env(), "prompt")
    assert held - after > 120, (held, after)


def test_importing_detforge_changes_nothing() -> None:
    held, after, _ = _run(_fresh_env(), "import")
    assert held - after < 40, (held, after)  # polars' own default keeps the pages a while


def test_child_processes_do_not_inherit_the_setting() -> None:
    """Detector training and Ray workers start with polars' defaults."""
    _, _, setting = _run(_fresh_env(), "prompt")
    assert "dirty_decay_ms:0" not in setting


def test_a_users_allocator_setting_wins() -> None:
    env = {**os.environ, "_RJEM_MALLOC_CONF": "dirty_decay_ms:60000"}
    held, after, setting = _run(env, "prompt", "user")
    # polars puts its defaults before it; the last value of a key wins
    assert held - after < 40 and setting.endswith(",dirty_decay_ms:60000"), (held, after, setting)


CLI_CHILD = """
import os, sys
from detforge.cli import main
from detforge.cli.app import app

@app.command("rss-check")
def rss_check():
    import polars as pl
    def rss(): return int(open("/proc/self/statm").read().split()[1]) * 4096 >> 20
    column = pl.select((pl.int_range(0, 20_000_000) * 3).alias("x")).to_series()
    held = rss()
    del column
    print(held, rss(), os.environ.get("_RJEM_MALLOC_CONF", "unset"))

sys.argv = ["detforge", "rss-check"]
main()
"""


def test_the_command_line_starts_polars_with_prompt_release() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CLI_CHILD], env=_fresh_env(), capture_output=True, text=True
    )
    held, after, setting = done.stdout.split()
    assert int(held) - int(after) > 120 and setting == "unset", done.stdout


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
