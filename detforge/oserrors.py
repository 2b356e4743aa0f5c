"""Operating-system failures (disk full, permission denied, port in use, unreadable file) as
one line naming the path and the cause.

Python raises them as :class:`OSError` with ``errno`` and ``filename``; polars and pyarrow
raise their own errors whose text carries ``(os error 28)`` or ``[errno 28]`` and often no
path. :func:`detforge.atomic.atomic_path` stamps the output it was writing on any error that
passes through it (``output_path``), so a disk that fills up while polars writes a temporary
shard is reported against the output folder, not against a temporary name.
"""

from __future__ import annotations

import errno
import os
import re

_ERRNO_IN_TEXT = re.compile(r"\(os error (\d+)\)|\[errno (\d+)\]", re.IGNORECASE)
_TEMPORARY_PART = re.compile(r"^\..+\.(tmp|old-\d+)$")


def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and its explicit causes (``raise ... from``), outermost first."""
    chain: list[BaseException] = []
    while error is not None and error not in chain and len(chain) < 16:
        chain.append(error)
        error = error.__cause__
    return chain


def error_number(error: BaseException) -> int | None:
    """The errno of an OS failure: the attribute, or the number a native library wrote in its
    message; None when there is neither."""
    if isinstance(error, OSError) and error.errno:
        return error.errno
    match = _ERRNO_IN_TEXT.search(str(error))
    return int(match.group(1) or match.group(2)) if match else None


def _in_temporary(path: str) -> bool:
    return any(_TEMPORARY_PART.match(part) for part in os.path.normpath(path).split(os.sep))


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def describe(error: BaseException) -> str | None:
    """One line for an operating-system failure in ``error`` or its causes, naming the path
    (when known) and the cause; None when ``error`` is not one."""
    chain = _chain(error)
    failure = next((e for e in chain if error_number(e) is not None), None)
    if failure is None:
        failure = next((e for e in chain if isinstance(e, OSError)), None)
    if failure is None:
        return None
    number = error_number(failure)
    if number is not None:
        cause = f"{os.strerror(number)} ({errno.errorcode.get(number, 'errno ' + str(number))})"
    else:  # an OSError without errno, e.g. PIL's "Truncated File Read"
        cause = _first_line(failure)
    output = next((e.output_path for e in chain if getattr(e, "output_path", None)), None)
    path = getattr(failure, "filename", None)
    if path is not None and not isinstance(path, str | os.PathLike):
        path = None  # a file descriptor
    if path is None or (output and _in_temporary(os.fspath(path))):
        path = output
    if path is None:
        return cause
    second = getattr(failure, "filename2", None)
    where = f"{os.fspath(path)} -> {os.fspath(second)}" if isinstance(second, str) else path
    return f"{where}: {cause}"
