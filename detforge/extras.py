"""Optional extras: import a module that only an extra installs, or say which extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from detforge.errors import DetforgeError


class MissingExtraError(DetforgeError):
    """An optional dependency is not installed; the message names the extra to install."""


def require(module: str, extra: str) -> ModuleType:
    """Import and return ``module``; if it is not installed, raise a one-line
    :class:`MissingExtraError` naming ``pip install 'detforge[<extra>]'``."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        top = module.split(".")[0]
        if error.name is None or error.name.split(".")[0] != top:
            raise  # the module is there but one of its own imports is broken: show that
        raise MissingExtraError(
            f"{module} is not installed: it comes with the [{extra}] extra "
            f"(pip install 'detforge[{extra}]')"
        ) from None
