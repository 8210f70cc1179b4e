"""The load generator's own contract: closing never pulls a connection out from under its query."""

from __future__ import annotations

import time

import psycopg

from sandbox.load import ConnectionLoad
from sandbox.servers import LocalPostgres
from tests.support import role_backends, terminate_role


def active_queries(pg: LocalPostgres, name: str) -> int:
    with psycopg.connect(pg.dsn(), autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND state = 'active'",
            (name,),
        ).fetchone()
    return int(row[0]) if row else 0


def test_close_stops_background_queries_before_closing_their_connections(
    app_dsn: str, pg: LocalPostgres
) -> None:
    terminate_role(pg)
    load = ConnectionLoad(app_dsn)
    conn = load.session("load.busy")
    load.in_background(conn, "SELECT pg_sleep(30)")
    load.open(2, "load.active", state="active")
    deadline = time.monotonic() + 10
    while active_queries(pg, "load.busy") + active_queries(pg, "load.active") < 3:
        assert time.monotonic() < deadline, "the background queries never started"
        time.sleep(0.05)

    load.close()

    # Each query was cancelled and its thread joined, so every connection could be closed
    # (a connection whose thread was still inside execute would have been left open).
    assert conn.closed
    assert load.connections == []
    deadline = time.monotonic() + 10
    while role_backends(pg) > 0:
        assert time.monotonic() < deadline, "the server still holds the load's sessions"
        time.sleep(0.05)
