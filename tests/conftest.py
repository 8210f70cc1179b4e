"""Real servers for the whole suite: PostgreSQL 16 and Redis, started once per session.

A role with CONNECTION LIMIT 20 plays the Heroku app's credential (the classic
hobby-plan limit), so "too many connections for role" is the real server's error.
Recognisable secrets are used everywhere so the suite can prove none of them leak.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from sandbox.servers import LocalPostgres, LocalRedis
from tests.support import APP_DB, APP_ROLE, DB_PASSWORD, ROLE_LIMIT


@pytest.fixture(scope="session")
def pg() -> Iterator[LocalPostgres]:
    server = LocalPostgres.start(max_connections=700)
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute(
            f"CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{DB_PASSWORD}' CONNECTION LIMIT {ROLE_LIMIT}"
        )
        conn.execute(f"CREATE DATABASE {APP_DB} OWNER {APP_ROLE}")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def app_dsn(pg: LocalPostgres) -> str:
    return pg.dsn(APP_ROLE, DB_PASSWORD, APP_DB)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[LocalRedis]:
    server = LocalRedis.start()
    yield server
    server.stop()
