"""Fixtures for the tests of bot/ that hold real connections on the suite's Postgres and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from bot.state import Redis, connect_redis
from sandbox.load import ConnectionLoad
from sandbox.servers import LocalPostgres, LocalRedis
from tests.support import terminate_role


@pytest.fixture
def load(app_dsn: str, pg: LocalPostgres) -> Iterator[ConnectionLoad]:
    """Connections held as the app's role (what dynos do); none left over either side of a test."""
    terminate_role(pg)
    hog = ConnectionLoad(app_dsn)
    yield hog
    hog.close()
    terminate_role(pg)


@pytest.fixture
async def redis(redis_server: LocalRedis) -> AsyncIterator[Redis]:
    """A client of the suite's Redis, as one bot process would hold it."""
    client = connect_redis(redis_server.url)
    yield client
    await client.aclose()
