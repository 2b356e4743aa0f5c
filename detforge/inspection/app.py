"""Open a browse dataset in the FiftyOne App (local, remote, or just say how)."""

from __future__ import annotations

import json
import socket
import urllib.request
from typing import Any
from urllib.parse import quote

from detforge.errors import DetforgeError

DEFAULT_PORT = 5151


def app_url(name: str, port: int = DEFAULT_PORT, host: str = "localhost") -> str:
    """The App page of dataset ``name``."""
    return f"http://{host}:{port}/datasets/{quote(name)}"


def how_to_open(name: str, port: int = DEFAULT_PORT) -> list[str]:
    """Lines telling a user how to open dataset ``name`` later."""
    return [
        f"fiftyone app launch {name} --port {port}       # then open {app_url(name, port)}",
        f"fiftyone app launch {name} --port {port} --remote   # on a server; "
        f"ssh -N -L {port}:127.0.0.1:{port} HOST from your machine",
        f'python -c "import fiftyone as fo; fo.launch_app(fo.load_dataset({name!r})).wait()"',
    ]


def _fiftyone_app_on(host: str, port: int) -> bool:
    """True when a FiftyOne App answers on ``host:port`` (FiftyOne then reuses it)."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/fiftyone", timeout=2) as answer:
            return "version" in json.loads(answer.read())
    except (OSError, ValueError):
        return False


def check_port(port: int, host: str = "127.0.0.1") -> None:
    """Raise one line at once when ``port`` is taken by something other than a FiftyOne App
    (FiftyOne would otherwise wait about a minute for its server and print tracebacks)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind it
        try:
            sock.bind((host, port))
            return
        except OSError as error:
            cause = error.strerror or str(error)
    if not _fiftyone_app_on(host, port):
        raise DetforgeError(
            f"port {port} is in use by another program ({cause}): pass --port with a free port"
        )


def launch(
    name: str,
    *,
    port: int = DEFAULT_PORT,
    remote: bool = False,
    address: str | None = None,
    wait: bool = True,
) -> Any:
    """Serve the App on ``port`` with dataset ``name`` loaded; returns the session.

    ``remote``: serve without opening a browser (reach it through an SSH tunnel or
    ``address``); ``wait``: block until the App is closed (forever when remote).
    """
    from detforge.inspection.database import load_fiftyone

    check_port(port, "127.0.0.1" if address in (None, "localhost") else address)
    fo = load_fiftyone()
    if not fo.dataset_exists(name):
        raise DetforgeError(f"no FiftyOne dataset named {name!r} (build it with detforge browse)")
    try:
        session = fo.launch_app(
            fo.load_dataset(name), port=port, address=address, remote=remote, auto=not remote
        )
    except Exception as error:  # fiftyone's server start failures are plain Exceptions
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise DetforgeError(f"the FiftyOne App could not start on port {port}: {first}") from None
    if wait:
        session.wait(-1 if remote else 3)
    return session
