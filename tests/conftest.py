"""Fixtures shared by every test package."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real source metadata and COCO photos beside the checkout (read-only)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"{SHARED_DATA} is missing: the tests read the real source metadata there")
    return SHARED_DATA


@pytest.fixture(scope="session")
def sample_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in multi-source sample, written once per test session (seed 0)."""
    from detforge.sources.sample import write_sample

    root = tmp_path_factory.mktemp("sample")
    write_sample(root, seed=0)
    return root
