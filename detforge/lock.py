"""One writer per output: an exclusive lock file that names its holder.

The lock is ``flock(2)`` on a small file holding the writer's command, pid, host and start
time. The kernel drops the lock when its holder exits, however it exits (``kill -9``
included), so a lock left by a dead process never blocks anyone: the next writer takes it
over and says so (the file still names the dead holder). A second writer does not wait: it
gets :class:`LockHeld`, one line naming the holder.

``fcntl`` rather than the ``filelock`` package: ``filelock`` truncates the lock file when it
tries to lock, which would erase the holder's name before the second writer can read it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from detforge.errors import DetforgeError

#: the lock file of an output folder
LOCK_NAME = ".detforge.lock"

Note = Callable[[str], None]


class LockHeld(DetforgeError):
    """Another process is writing the same output; the message names it."""


@dataclasses.dataclass(frozen=True)
class Holder:
    """Who holds (or held) a lock, as written in its lock file."""

    command: str
    pid: int
    host: str
    since: str

    @classmethod
    def me(cls, command: str) -> Holder:
        return cls(command, os.getpid(), socket.gethostname(), time.strftime("%Y-%m-%d %H:%M:%S"))

    def __str__(self) -> str:
        return f"`detforge {self.command}` (pid {self.pid} on {self.host}, since {self.since})"


# locks this process holds: lock file -> [descriptor, depth]; a nested acquire of the same
# lock (a command that locks, then calls a library function that locks too) is a no-op
_held: dict[str, list[int]] = {}
_guard = threading.Lock()


def _forget_in_child() -> None:
    """A forked worker shares its parent's lock (flock belongs to the open file, which fork
    duplicates): it closes its copy, so a worker outliving a killed parent does not keep the
    output locked."""
    for fd, _ in _held.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    _held.clear()


os.register_at_fork(after_in_child=_forget_in_child)


def _read_holder(fd: int) -> Holder | None:
    try:
        raw = os.pread(fd, 4096, 0)
        return Holder(**json.loads(raw)) if raw.strip() else None
    except (OSError, ValueError, TypeError):
        return None


def _holder_of_locked(fd: int, wait: float = 1.0) -> Holder | None:
    """The holder named in a lock file another process holds. It writes its name just after
    taking the lock: give it up to ``wait`` seconds to appear."""
    deadline = time.monotonic() + wait
    while (holder := _read_holder(fd)) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return holder


def _open_locked(path: Path, what: str) -> int:
    """Open ``path`` and lock it without waiting; raise :class:`LockHeld` if another holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder_of_locked(fd)
            os.close(fd)
            who = str(holder) if holder else "another detforge process"
            raise LockHeld(
                f"{what} is being written by {who}: wait for it to end, or choose another "
                f"output (lock file {path})"
            ) from None
        except OSError as error:
            os.close(fd)
            raise LockHeld(f"cannot lock {path}: {error.strerror}") from None
        # a holder that was releasing may have removed the file between our open and flock:
        # then we locked a file nobody else will look at, so start again on the new one
        try:
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


@contextlib.contextmanager
def writer_lock(
    path: str | os.PathLike, command: str, *, what: str | None = None, note: Note | None = None
) -> Iterator[None]:
    """Hold the exclusive lock file ``path`` while the block runs.

    ``command`` names this writer in the lock file (``build-dataset``, ``evaluate``, ...);
    ``what`` names the thing locked in messages (default: the lock file's folder). A lock
    taken over from a dead holder is reported through ``note``.
    """
    path = Path(path).absolute()
    what = what or str(path.parent)
    key = str(path)
    with _guard:
        if key in _held:
            _held[key][1] += 1
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield
        finally:
            with _guard:
                _held[key][1] -= 1
        return
    created = [p for p in [path.parent, *path.parent.parents] if not p.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = _open_locked(path, what)
    except LockHeld:
        _remove_empty(created)
        raise
    previous = _read_holder(fd)
    if previous is not None and note is not None:
        note(f"{what}: {previous} ended without releasing its lock; taking it over")
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(dataclasses.asdict(Holder.me(command))).encode(), 0)
    with _guard:
        _held[key] = [fd, 1]
    try:
        yield
    finally:
        with _guard:
            del _held[key]
        with contextlib.suppress(OSError):
            path.unlink()  # while still locked: see _open_locked
        os.close(fd)
        _remove_empty(created)


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders the lock created (deepest first) if nothing was written in them:
    a command that fails before writing leaves no empty output folder behind."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def output_lock(
    folder: str | os.PathLike, command: str, *, beside: bool = False, note: Note | None = None
):
    """The lock of an output folder: one writer per folder. The lock file is
    ``FOLDER/.detforge.lock``, or with ``beside`` ``.FOLDER.detforge.lock`` next to it, for a
    command that replaces the folder whole (a lock inside would be renamed away with it)."""
    folder = Path(folder).absolute()
    path = folder.parent / f".{folder.name}{LOCK_NAME}" if beside else folder / LOCK_NAME
    return writer_lock(path, command, what=str(folder), note=note)
