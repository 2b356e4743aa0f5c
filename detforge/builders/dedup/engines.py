"""Run a per-batch image function over many paths: in-process, on a process pool or on Ray Data.

Every engine returns the same frame in the same row order, so results do not
depend on the engine or the number of workers.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor

import polars as pl
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from detforge.errors import DetforgeError

ENGINES = ("process", "ray")
BATCH = 64
#: below this many items a pool costs more to start (~1 s: workers import polars, OpenCV) than
#: it saves, so the items are processed in this process
POOL_MIN_ITEMS = 2048

BatchFn = Callable[[Sequence[str]], pl.DataFrame]


class EngineError(DetforgeError):
    """An unknown engine, or one whose optional dependency is missing."""


def progress() -> Progress:
    """The rich progress bar of the image passes (cleared when done)."""
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
    )


def _batches(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def run_batches(
    fn: BatchFn,
    items: Sequence[str],
    *,
    engine: str = "process",
    workers: int | None = None,
    batch_size: int = BATCH,
    description: str = "hashing images",
) -> pl.DataFrame:
    """``pl.concat(fn(batch) for batch in batches(items))`` on the chosen engine.

    ``fn`` must be a module-level function (it is pickled to the workers).
    ``workers=1`` (or fewer than :data:`POOL_MIN_ITEMS` items) runs in this
    process; ``None`` uses every CPU.
    """
    if engine not in ENGINES:
        raise EngineError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    workers = workers or os.cpu_count() or 1
    batches = _batches(items, batch_size)
    if not batches:
        return fn([])
    if engine == "ray":
        return _run_ray(fn, items, workers, batch_size)
    parts: list[pl.DataFrame] = []
    with progress() as bar:
        task = bar.add_task(description, total=len(items))
        if workers == 1 or len(batches) == 1 or len(items) < POOL_MIN_ITEMS:
            for batch in batches:
                parts.append(fn(batch))
                bar.advance(task, len(batch))
        else:
            # forkserver, not fork: a forked child of a multi-threaded polars process can deadlock
            context = multiprocessing.get_context("forkserver")
            # workers fork from a server that has imported fn's module once, not per worker
            context.set_forkserver_preload([fn.__module__])
            with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                # map keeps submission order, so the output order is deterministic
                for batch, part in zip(batches, pool.map(fn, batches), strict=True):
                    parts.append(part)
                    bar.advance(task, len(batch))
    return pl.concat(parts)


def _run_ray(fn: BatchFn, items: Sequence[str], workers: int, batch_size: int) -> pl.DataFrame:
    """Ray Data ``map_batches`` over the items; starts (and stops) a local cluster if none runs."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import pyarrow as pa
        import ray
    except ImportError as exc:
        raise EngineError(
            "engine 'ray' needs the optional extra: pip install detforge[ray]"
        ) from exc

    started = not ray.is_initialized()
    if started:
        ray.init(
            num_cpus=workers,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    try:

        def apply(batch: pa.Table) -> pa.Table:
            frame = fn(batch.column("item").to_pylist())
            return frame.to_arrow().append_column("_order", batch.column("_order"))

        ordered = [{"item": str(item), "_order": i} for i, item in enumerate(items)]
        dataset = ray.data.from_items(ordered).map_batches(
            apply, batch_size=batch_size, batch_format="pyarrow"
        )
        tables = ray.get(dataset.to_arrow_refs())
    finally:
        if started:
            ray.shutdown()
    schema = fn([]).schema
    frames = [pl.from_arrow(t) for t in tables if t.num_rows]
    result = pl.concat(frames, how="vertical_relaxed").sort("_order").drop("_order")
    return result.cast(schema)
