"""Open a browse dataset in the FiftyOne App (local, remote, or just say how)."""

from __future__ import annotations

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
