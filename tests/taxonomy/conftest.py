"""Fixtures of the taxonomy tests."""

from __future__ import annotations

import pytest
from taxonomy_fixtures import make_taxonomy

from detforge.taxonomy import Taxonomy


@pytest.fixture
def toy() -> Taxonomy:
    """The small hand-made taxonomy of ``taxonomy_fixtures``."""
    return make_taxonomy()
