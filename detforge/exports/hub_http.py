"""How ``detforge upload`` talks to a hub through ``huggingface_hub``'s HTTP client:
connect/read timeouts, a stalled hub reported at once, and retries counted instead of logged.

``huggingface_hub`` creates its shared ``httpx`` client with no timeout, so a hub that
accepts a connection and never answers hangs an upload forever; and it retries 5xx answers
and network errors five times, logging two lines per retry. During an upload this module
installs a client with timeouts whose transport turns a timeout into :class:`HubStalled`
(which ``huggingface_hub`` does not retry: waiting the full timeout again, five times, would
hide the cause for minutes), and a logging filter that counts the retry lines instead of
printing them, so the final error can say how often it was tried.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator

#: seconds to establish a connection: huggingface_hub's own request timeout
DEFAULT_CONNECT_TIMEOUT = 10.0
#: seconds without a byte from the hub: a commit of a few hundred files is answered within
#: seconds; a minute of silence is a stalled hub or network
DEFAULT_READ_TIMEOUT = 60.0

# the loggers whose warnings an upload turns into counts
_RETRY_LOGGER = "huggingface_hub.utils._http"
_API_LOGGER = "huggingface_hub.hf_api"


class HubStalled(Exception):
    """A hub request got no connection or no answer within its timeout."""

    def __init__(self, method: str, path: str, waiting_for: str, seconds: float):
        super().__init__(f"no {waiting_for} within {seconds:g} s ({method} {path})")
        self.method, self.path, self.waiting_for, self.seconds = method, path, waiting_for, seconds


@dataclasses.dataclass
class Quieted(logging.Filter):
    """Drops huggingface_hub's per-retry and empty-commit warnings, counting the retries."""

    retries: int = 0

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith(("Retrying in", "Rate limited")):
            self.retries += 1
            return False
        return not message.startswith(("HTTP Error", "No files have been modified")) and not (
            message.startswith("'") and "thrown while requesting" in message
        )


def _guarded_transport(timeout):
    import httpx2

    class StallGuard(httpx2.BaseTransport):
        """The default transport; a timeout becomes :class:`HubStalled`."""

        def __init__(self) -> None:
            self.inner = httpx2.HTTPTransport()

        def handle_request(self, request: httpx2.Request) -> httpx2.Response:
            try:
                return self.inner.handle_request(request)
            except httpx2.ConnectTimeout:
                raise HubStalled(
                    request.method, request.url.path, "connection", timeout.connect
                ) from None
            except httpx2.TimeoutException:
                raise HubStalled(request.method, request.url.path, "answer", timeout.read) from None

        def close(self) -> None:
            self.inner.close()

    return StallGuard()


@contextlib.contextmanager
def hub_client(connect_timeout: float, read_timeout: float) -> Iterator[Quieted]:
    """While the block runs, huggingface_hub's requests use these timeouts (``read`` also
    bounds each write and the wait for a pooled connection) and its retry warnings are
    counted in the yielded :class:`Quieted` instead of printed."""
    import httpx2
    from huggingface_hub.utils import set_client_factory
    from huggingface_hub.utils._http import default_client_factory

    timeout = httpx2.Timeout(read_timeout, connect=connect_timeout)

    def factory() -> httpx2.Client:
        default = default_client_factory()  # for its event hooks (offline mode, request ids)
        hooks = default.event_hooks
        default.close()
        return httpx2.Client(
            event_hooks=hooks,
            follow_redirects=True,
            timeout=timeout,
            transport=_guarded_transport(timeout),
        )

    quiet = Quieted()
    loggers = [logging.getLogger(name) for name in (_RETRY_LOGGER, _API_LOGGER)]
    set_client_factory(factory)
    for logger in loggers:
        logger.addFilter(quiet)
    try:
        yield quiet
    finally:
        for logger in loggers:
            logger.removeFilter(quiet)
        set_client_factory(default_client_factory)
