"""Without the [fiftyone] extra, `detforge browse` says which extra to install, in one line."""

from __future__ import annotations

import os
import subprocess
import sys

# runs the CLI with fiftyone and pymongo hidden from the import system, as on a base install
BASE_INSTALL = """
import sys
from importlib.machinery import PathFinder

find = PathFinder.find_spec.__func__


def hide(cls, name, path=None, target=None):
    return None if name.split(".")[0] in ("fiftyone", "pymongo") else find(cls, name, path, target)


PathFinder.find_spec = classmethod(hide)
from detforge.cli import main

sys.argv = ["detforge", *sys.argv[1:]]
main()
"""


def test_base_install_names_the_extra(planted):
    # with a database server set, the server check would import pymongo first
    for uri in ("", "mongodb://127.0.0.1:9"):
        run = subprocess.run(
            [sys.executable, "-c", BASE_INSTALL, "browse", str(planted["out"]), "--no-launch"],
            capture_output=True,
            text=True,
            env={**os.environ, "FIFTYONE_DATABASE_URI": uri, "COLUMNS": "300"},
            timeout=300,
        )
        assert run.returncode == 1, run.stderr
        assert run.stderr.strip() == (
            "error: fiftyone is not installed: it comes with the [fiftyone] extra "
            "(pip install 'detforge[fiftyone]')"
        ), uri
