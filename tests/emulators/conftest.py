"""Fixtures shared by the emulator contract tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.load import ConnectionLoad


@pytest.fixture
def load(app_dsn: str) -> Iterator[ConnectionLoad]:
    """Connections held as the app role; closed after the test."""
    hog = ConnectionLoad(app_dsn)
    yield hog
    hog.close()
