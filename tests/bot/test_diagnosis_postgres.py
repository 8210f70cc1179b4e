"""Each diagnosis check, red and green, from real sessions on the real server.

Thresholds are made small (a second) instead of waiting for minutes; the tests wait until
the server's own clock puts a session past them, and assert on what the checks say.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import psycopg
import pytest

from bot.budget import connection_budget
from bot.diagnosis import Band, Diagnosis, DiagnosisThresholds, diagnose
from bot.postgres import QUERY_CHARS, PostgresInspector
from bot.readings import ProcessType
from sandbox.load import ConnectionLoad
from sandbox.servers import LocalPostgres
from tests.support import ROLE_LIMIT

FAST = DiagnosisThresholds(
    long_query_s=Band(0.5, 1.0),
    long_transaction_s=Band(0.5, 1.0),
    idle_in_transaction_s=Band(0.5, 1.0),
    blocked_s=Band(0.5, 1.0),
)
FORMATION = (
    ProcessType("web", 3, "gunicorn app.wsgi -w 3"),  # the budget expects 3 per web dyno
    ProcessType("worker", 1, "celery -A app worker -c 4"),
)
BUDGET = connection_budget(FORMATION, {}, ROLE_LIMIT)


@pytest.fixture
async def inspector() -> AsyncIterator[PostgresInspector]:
    inspector = PostgresInspector()
    yield inspector
    await inspector.close()


@pytest.fixture
def orders(app_dsn: str) -> str:
    with psycopg.connect(app_dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS diag_orders")
        conn.execute("CREATE TABLE diag_orders (id int PRIMARY KEY, total int)")
        conn.execute("INSERT INTO diag_orders VALUES (1, 10), (2, 20)")
    return "diag_orders"


async def diagnosis(
    inspector: PostgresInspector, dsn: str, thresholds: DiagnosisThresholds = FAST
) -> Diagnosis:
    activity = await inspector.activity(dsn, older_than_s=thresholds.older_than_s)
    held = activity.holders
    return diagnose(
        held,
        activity.backends,
        used=held.role_connections,
        limit=ROLE_LIMIT,
        budget=BUDGET,
        thresholds=thresholds,
    )


async def until(
    inspector: PostgresInspector, dsn: str, key: str, status: str, timeout: float = 15.0
) -> Diagnosis:
    """Read until check `key` shows `status` (sessions need time to age past the thresholds)."""
    deadline = time.monotonic() + timeout
    while True:
        found = await diagnosis(inspector, dsn)
        if found.check(key).status == status:
            return found
        assert time.monotonic() < deadline, found.check(key)
        await asyncio.sleep(0.1)


async def test_idle_in_transaction_is_red_names_the_holder_and_kill_idle_clears_it(
    load: ConnectionLoad, inspector: PostgresInspector, app_dsn: str
) -> None:
    load.open(3, "web.1")  # idle, no transaction open
    calm = await diagnosis(inspector, app_dsn)
    assert calm.check("idle_in_transaction").status == "green"
    assert calm.cause is None

    load.open(4, "worker.1", state="idle_in_tx")  # BEGIN; SELECT 1 — and left there
    found = await until(inspector, app_dsn, "idle_in_transaction", "red")
    check = found.check("idle_in_transaction")
    assert check.summary.startswith("4 connections idle in transaction")
    assert check.evidence[0].text.startswith("worker.1: 4 idle in transaction")
    assert check.evidence[0].query == "SELECT 1"
    assert found.cause is not None
    assert found.cause.text.startswith("worker.1 holds 4 connections idle in transaction, the oldest for ")
    assert found.cause.remedy == "kill_idle"

    # The button the cause leads with really is the fix.
    assert (await inspector.terminate(app_dsn, idle_older_than_s=0)).terminated == 7
    after = await diagnosis(inspector, app_dsn)
    assert after.check("idle_in_transaction").status == "green" and after.cause is None


async def test_a_long_query_is_red_and_green_once_it_ends(
    load: ConnectionLoad, inspector: PostgresInspector, app_dsn: str, pg: LocalPostgres
) -> None:
    quick = load.session("web.2")
    quick.execute("SELECT pg_sleep(0.01)")
    assert (await diagnosis(inspector, app_dsn)).check("long_queries").status == "green"

    slow = load.session("web.2")
    pid = slow.info.backend_pid
    long_text = "SELECT pg_sleep(30) /* " + "secret " * 200 + "*/"
    load.in_background(slow, long_text)
    found = await until(inspector, app_dsn, "long_queries", "red")
    check = found.check("long_queries")
    assert check.evidence[0].text.startswith(f"pid {pid} web.2: running ")
    assert check.evidence[0].query is not None and check.evidence[0].query.startswith(
        "SELECT pg_sleep(30) /*"
    )
    assert len(check.evidence[0].query) <= 80  # never the whole text
    assert found.cause is not None and found.cause.text.startswith(
        f"web.2 (pid {pid}) has run one query for "
    )

    with psycopg.connect(pg.dsn(), autocommit=True) as admin:
        admin.execute("SELECT pg_cancel_backend(%s)", (pid,))
    await until(inspector, app_dsn, "long_queries", "green")


async def test_a_row_lock_held_idle_in_transaction_blocks_an_update(
    load: ConnectionLoad, inspector: PostgresInspector, app_dsn: str, orders: str
) -> None:
    holder = load.session("worker.1")
    holder.autocommit = False
    holder.execute(f"SELECT * FROM {orders} WHERE id = 1 FOR UPDATE")
    other_row = load.session("web.1")
    other_row.execute(f"UPDATE {orders} SET total = 21 WHERE id = 2")  # a different row: no wait
    assert (await diagnosis(inspector, app_dsn)).check("blocking").status == "green"

    waiter = load.session("web.1")
    load.in_background(waiter, f"UPDATE {orders} SET total = 11 WHERE id = 1")
    found = await until(inspector, app_dsn, "blocking", "red")
    check = found.check("blocking")
    hp, wp = holder.info.backend_pid, waiter.info.backend_pid
    assert check.evidence[0].text.startswith(f"worker.1 (pid {hp}, idle in transaction for ")
    assert f"blocks 1 session: web.1 (pid {wp}) waiting " in check.evidence[0].text
    assert check.evidence[0].text.endswith("for a row lock")
    assert check.evidence[0].query == f"UPDATE {orders} SET total = 11 WHERE id = 1"
    assert found.cause is not None and found.cause.check == "blocking"
    assert found.cause.text.startswith(f"worker.1 (pid {hp}, idle in transaction for ")
    assert found.cause.remedy == "kill_idle"
    # The waiter is blocked, not slow: the long-query check leaves it to the blocking check.
    assert all(f"pid {wp} " not in e.text for e in found.check("long_queries").evidence)

    holder.commit()
    await until(inspector, app_dsn, "blocking", "green")


async def test_a_table_lock_names_the_table_and_an_active_blocker_gets_no_button(
    load: ConnectionLoad, inspector: PostgresInspector, app_dsn: str, orders: str
) -> None:
    holder = load.session("worker.1")
    load.in_background(
        holder, f"BEGIN; LOCK TABLE {orders} IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(30)"
    )
    waiter = load.session("web.3")
    load.in_background(waiter, f"SELECT count(*) FROM {orders}")
    found = await until(inspector, app_dsn, "blocking", "red")
    check = found.check("blocking")
    assert check.evidence[0].text.startswith(f"worker.1 (pid {holder.info.backend_pid}, active for ")
    assert check.evidence[0].text.endswith(f"for AccessShareLock on {orders}")
    assert found.cause is not None and found.cause.check == "blocking" and found.cause.remedy is None


async def test_a_dyno_holding_far_more_than_its_budget_is_a_leak_naming_the_dyno(
    load: ConnectionLoad, inspector: PostgresInspector, app_dsn: str
) -> None:
    load.open(3, "web.3")
    load.open(4, "worker.1")
    calm = await diagnosis(inspector, app_dsn)
    assert calm.check("leak").status == "green"
    assert calm.cause is None

    load.open(6, "web.3")  # 9 where the budget says 3
    found = await diagnosis(inspector, app_dsn)
    check = found.check("leak")
    assert check.status == "red"
    assert check.evidence[0].text == "web.3 holds 9, the budget says 3 per web dyno"
    assert found.cause is not None
    assert found.cause.text == "web.3 holds 9 connections; the budget expects 3 per web dyno"
    assert (found.cause.remedy, found.cause.process_type) == ("restart", "web")


async def test_connection_count_is_red_at_the_limit_and_the_cause_names_the_biggest_holder(
    load: ConnectionLoad, inspector: PostgresInspector, app_dsn: str
) -> None:
    assert await inspector.ensure_reserved(app_dsn)
    load.open(4, "web.1")
    assert (await diagnosis(inspector, app_dsn)).check("connections").status == "green"
    load.open(ROLE_LIMIT, "web.2")  # the role refuses what is over its limit
    found = await diagnosis(inspector, app_dsn)
    check = found.check("connections")
    assert check.status == "red"
    assert check.summary == f"{ROLE_LIMIT}/{ROLE_LIMIT} connections (100% of the limit)"
    assert check.evidence[0].text == "web.2 holds 15 (15 idle or idle in transaction)"
    # web.2 is also far over its budget: the leak explains the most, so it is the cause.
    assert found.cause is not None and found.cause.check == "leak"
    assert found.cause.text.startswith("web.2 holds 15 connections")


async def test_the_diagnosis_rows_come_with_the_holders_in_one_read_and_hide_long_query_text(
    load: ConnectionLoad, inspector: PostgresInspector, app_dsn: str
) -> None:
    conn = load.session("web.1")
    conn.autocommit = False
    conn.execute("SELECT 1 /* " + "x" * 1000 + " */")
    activity = await inspector.activity(app_dsn, older_than_s=3600)
    assert activity.holders.role_connections == 2  # the session and pgconn's own
    [row] = [b for b in activity.backends if b.pid == conn.info.backend_pid]
    assert row.idle_in_transaction and row.application_name == "web.1"
    assert len(row.query) == QUERY_CHARS
    # pgconn's own connection is never a suspect.
    assert all(b.application_name not in ("pgconn", "pgconn-reserved") for b in activity.backends)
