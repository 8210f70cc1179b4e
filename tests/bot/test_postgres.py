"""PostgresInspector against the real server: holders, the role at its limit, terminations."""

from __future__ import annotations

import asyncio

import pytest

from bot.errors import DatabaseFull, DatabaseUnreachable
from bot.postgres import RESERVED_APPLICATION_NAME, PostgresInspector, build_holders
from sandbox.load import ConnectionLoad
from sandbox.servers import LocalPostgres
from tests.support import APP_ROLE, DB_PASSWORD, ROLE_LIMIT, role_backends, terminate_role

OLD_S = 2.0  # Kill idle's threshold in the test below: long enough that fresh ones stay under it


async def test_holders_group_by_application_name_and_state(load: ConnectionLoad, app_dsn: str) -> None:
    load.open(6, "web.1")
    load.open(3, "worker.1", state="idle_in_tx")
    inspector = PostgresInspector()
    holders = await inspector.holders(app_dsn)
    by_name = {g.application_name: g for g in holders.groups if g.usename == APP_ROLE}
    assert by_name["web.1"].total == 6 and by_name["web.1"].idle == 6
    assert by_name["worker.1"].idle_in_transaction == 3
    assert by_name["worker.1"].longest_idle_in_tx_s is not None
    assert holders.role == APP_ROLE and holders.role_limit == ROLE_LIMIT
    # 9 held plus pgconn's own short-lived connection.
    assert holders.role_connections == 10
    assert holders.groups[0].total >= holders.groups[-1].total
    await inspector.close()


async def test_role_full_without_reserved_connection_raises_database_full(
    load: ConnectionLoad, app_dsn: str
) -> None:
    assert load.open(ROLE_LIMIT + 1, "web.1") == ROLE_LIMIT
    assert "too many connections for role" in load.failures[0]
    inspector = PostgresInspector()
    with pytest.raises(DatabaseFull) as info:
        await inspector.holders(app_dsn)
    assert "too many connections" in info.value.message
    assert DB_PASSWORD not in info.value.message


async def test_reserved_connection_keeps_holders_and_terminations_working_at_the_limit(
    load: ConnectionLoad, app_dsn: str, pg: LocalPostgres
) -> None:
    inspector = PostgresInspector()
    assert await inspector.ensure_reserved(app_dsn)
    load.open(ROLE_LIMIT, "web.1")
    assert role_backends(pg) == ROLE_LIMIT  # 19 app + the reserved one
    holders = await inspector.holders(app_dsn)
    assert holders.role_connections == ROLE_LIMIT
    assert any(g.application_name == RESERVED_APPLICATION_NAME for g in holders.groups)
    result = await inspector.terminate(app_dsn)
    assert result.terminated == ROLE_LIMIT - 1
    assert load.alive() == 0
    assert inspector.has_reserved(app_dsn)
    assert role_backends(pg) == 1  # only pgconn's reserved connection is left
    await inspector.close()


async def test_kill_idle_only_terminates_idle_backends_older_than_threshold(
    load: ConnectionLoad, app_dsn: str
) -> None:
    load.open(3, "web.1")
    load.open(1, "worker.1", state="idle_in_tx")
    await asyncio.sleep(OLD_S + 0.5)  # these four age past the threshold (the server's clock)
    load.open(2, "web.2", state="active")
    fresh = load.open(2, "web.3")
    assert fresh == 2
    inspector = PostgresInspector()
    result = await inspector.terminate(app_dsn, idle_older_than_s=int(OLD_S))
    await inspector.close()
    assert (result.terminated, result.candidates) == (4, 8)
    # The two busy ones and the two that were idle for less than the threshold survive.
    assert load.alive() == 4
    assert {str(c.info.parameter_status("application_name")) for c in load.connections} == {"web.2", "web.3"}


async def test_reserved_connection_reopens_after_it_is_terminated(
    app_dsn: str, pg: LocalPostgres
) -> None:
    inspector = PostgresInspector()
    assert await inspector.ensure_reserved(app_dsn)
    terminate_role(pg)
    assert await inspector.ensure_reserved(app_dsn)
    holders = await inspector.holders(app_dsn)
    assert any(g.application_name == RESERVED_APPLICATION_NAME for g in holders.groups)
    await inspector.close()


async def test_unreachable_database_error_never_contains_the_password(pg: LocalPostgres) -> None:
    inspector = PostgresInspector(connect_timeout_s=1)
    dsn = f"postgresql://{APP_ROLE}:{DB_PASSWORD}@127.0.0.1:1/appdb"
    with pytest.raises(DatabaseUnreachable) as info:
        await inspector.holders(dsn)
    assert DB_PASSWORD not in info.value.message
    wrong = pg.dsn(APP_ROLE, "wrong-password", "nosuchdb")
    with pytest.raises(DatabaseUnreachable) as info2:
        await inspector.holders(wrong)
    assert "wrong-password" not in info2.value.message


def test_build_holders_sums_states_and_ages() -> None:
    rows = [
        ("web.1", "u", "10.0.0.1", 5, 1, 3, 1, 12.5, 3.0, 5),
        ("", "other", "local", 2, 2, 0, 0, None, None, 0),
    ]
    holders = build_holders("u", -1, 100, rows)
    assert holders.role_limit is None
    assert holders.role_connections == 5 and holders.server_connections == 7
    assert holders.state_counts == {"active": 3, "idle": 3, "idle in transaction": 1, "other": 0}
    assert holders.oldest_idle_s == 12.5 and holders.longest_idle_in_tx_s == 3.0


async def test_terminate_returns_once_the_backends_have_left(
    load: ConnectionLoad, app_dsn: str, pg: LocalPostgres
) -> None:
    """"terminated N of N" is only said once the slots are free: a backend that is slow to exit
    (it drops its temporary tables on the way out) is waited for, not just signalled."""
    assert load.open(1, "web.1") == 1
    slow = load.connections[-1]
    with slow.transaction():
        for i in range(400):
            slow.execute(f"CREATE TEMP TABLE leftover_{i} (id int PRIMARY KEY, note text)")
    inspector = PostgresInspector()
    result = await inspector.terminate(app_dsn)
    await inspector.close()
    assert result.terminated == 1
    assert role_backends(pg) == 0
