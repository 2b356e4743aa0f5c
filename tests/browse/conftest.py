"""A throwaway mongod for FiftyOne, and the planted build output (see ``planted.py``).

FiftyOne reads its database settings when first imported, so the ``fo`` fixture
sets them (and starts mongod) before anything in this package imports it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browse.planted import write_planted, write_predictions, write_probe_run


@pytest.fixture(scope="session")
def mongod(tmp_path_factory: pytest.TempPathFactory):
    """A throwaway mongod on a free localhost port, stopped at the end of the session."""
    from detforge.inspection.database import start_mongod

    server = start_mongod(tmp_path_factory.mktemp("mongo") / "db")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def fo(mongod, tmp_path_factory: pytest.TempPathFactory):
    """fiftyone, imported against the throwaway mongod (settings restored at the end)."""
    tmp = tmp_path_factory.mktemp("fiftyone")
    env = {
        "FIFTYONE_DATABASE_URI": mongod.uri,
        "FIFTYONE_DATABASE_NAME": "detforge_tests",
        "FIFTYONE_DATABASE_VALIDATION": "false",
        "FIFTYONE_DO_NOT_TRACK": "true",
        "FIFTYONE_SHOW_PROGRESS_BARS": "false",
        "FIFTYONE_CONFIG_DIR": str(tmp / "cfg"),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        import fiftyone

        if fiftyone.config.database_uri != mongod.uri:
            pytest.fail(
                "fiftyone was imported before the browse tests set its database "
                f"(it uses {fiftyone.config.database_uri or 'its own mongod'})"
            )
        yield fiftyone
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def planted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The planted build output, predictions and probe run (written once)."""
    tmp = tmp_path_factory.mktemp("planted")
    return {
        "out": write_planted(tmp / "out"),
        "predictions": write_predictions(tmp / "preds.json"),
        "probe_run": write_probe_run(tmp / "run"),
    }
