"""Fixtures for the tests of bot/ that hold real connections on the suite's Postgres."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.load import ConnectionLoad
from sandbox.servers import LocalPostgres
from tests.support import terminate_role


@pytest.fixture
def load(app_dsn: str, pg: LocalPostgres) -> Iterator[ConnectionLoad]:
    """Connections held as the app's role (what dynos do); none left over either side of a test."""
    terminate_role(pg)
    hog = ConnectionLoad(app_dsn)
    yield hog
    hog.close()
    terminate_role(pg)
