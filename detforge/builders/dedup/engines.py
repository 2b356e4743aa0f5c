"""Run work over many items: in-process, on a process pool or as Ray tasks (actors).

Every engine returns the same frame in the same row order, so results do not
depend on the engine or the number of workers.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import polars as pl
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from detforge.errors import DetforgeError

ENGINES = ("process", "ray")
BATCH = 64
#: a Ray task costs ~1 ms to dispatch: batches of images are larger there
RAY_BATCH = 512
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
    _check(engine)
    batches = _batches(items, max(batch_size, RAY_BATCH) if engine == "ray" else batch_size)
    if not batches:
        return fn([])
    if engine == "process" and len(items) < POOL_MIN_ITEMS:
        workers = 1
    parts = run_tasks(
        fn, batches, engine=engine, workers=workers, description=description, sizes=len
    )
    return pl.concat(parts, how="vertical_relaxed").cast(fn([]).schema)


def run_tasks(
    fn: Callable[..., Any],
    tasks: Sequence[Any],
    *,
    init: Callable[..., None] | None = None,
    initargs: tuple = (),
    engine: str = "process",
    workers: int | None = None,
    description: str = "working",
    sizes: Callable[[Any], int] | None = None,
) -> list[Any]:
    """``[fn(task) for task in tasks]`` on the chosen engine, in task order.

    ``init(*initargs)`` runs once per worker before its first task (a per-worker
    table, say). On Ray each worker is an actor holding that state; it connects to
    the cluster at ``RAY_ADDRESS`` when set, else starts a local one for the call.
    ``sizes(task)`` is how far one task moves the progress bar (default 1).
    """
    _check(engine)
    workers = workers or os.cpu_count() or 1
    weight = sizes or (lambda task: 1)
    out: list[Any] = []
    with progress() as bar:
        job = bar.add_task(description, total=sum(weight(t) for t in tasks))
        if engine == "ray":
            for task, part in zip(tasks, _ray_map(fn, tasks, init, initargs, workers), strict=True):
                out.append(part)
                bar.advance(job, weight(task))
        elif workers == 1 or len(tasks) <= 1:
            if init is not None:
                init(*initargs)
            for task in tasks:
                out.append(fn(task))
                bar.advance(job, weight(task))
        else:
            # forkserver, not fork: a forked child of a multi-threaded polars process can deadlock
            context = multiprocessing.get_context("forkserver")
            # workers fork from a server that has imported fn's module once, not per worker
            context.set_forkserver_preload([fn.__module__])
            with ProcessPoolExecutor(
                max_workers=min(workers, len(tasks)),
                mp_context=context,
                initializer=init,
                initargs=initargs,
            ) as pool:
                # map keeps submission order, so the output order is deterministic
                for task, part in zip(tasks, pool.map(fn, tasks), strict=True):
                    out.append(part)
                    bar.advance(job, weight(task))
    return out


def _check(engine: str) -> None:
    if engine not in ENGINES:
        raise EngineError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")


@contextlib.contextmanager
def ray_session(workers: int) -> Iterator[Any]:
    """The ``ray`` module, connected: to the running session, to the cluster at
    ``RAY_ADDRESS`` (``auto`` finds a local head), or to a local cluster of ``workers``
    CPUs started (and stopped) for the call."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError as exc:
        raise EngineError(
            "engine 'ray' needs the optional extra: pip install detforge[ray]"
        ) from exc
    if ray.is_initialized():
        yield ray
        return
    address = os.environ.get("RAY_ADDRESS")
    options = {"log_to_driver": False, "configure_logging": False}
    try:
        if address:  # an existing cluster owns its resources: num_cpus must not be given
            ray.init(address=address, **options)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, **options)
    except ConnectionError as exc:
        raise EngineError(f"cannot connect to the Ray cluster at {address}: {exc}") from exc
    try:
        yield ray
    finally:
        ray.shutdown()


def _ray_map(
    fn: Callable[..., Any],
    tasks: Sequence[Any],
    init: Callable[..., None] | None,
    initargs: tuple,
    workers: int,
) -> Iterator[Any]:
    """``fn`` over ``tasks`` on Ray actors (one per worker), results in task order."""
    with ray_session(workers) as ray:
        from ray.util import ActorPool

        @ray.remote(num_cpus=1)
        class Worker:
            def __init__(self, *args: Any) -> None:
                if init is not None:
                    init(*args)

            def run(self, task: Any) -> Any:
                return fn(task)

        cpus = int(ray.cluster_resources().get("CPU", workers))
        shared = [ray.put(arg) for arg in initargs]  # one copy in the object store
        actors = [Worker.remote(*shared) for _ in range(max(1, min(cpus, len(tasks))))]
        yield from ActorPool(actors).map(lambda actor, task: actor.run.remote(task), tasks)
