"""The app's database restarts under a running bot: pgconn's reserved connection comes back
by itself, and with it the holders and Kill all at the limit. A Postgres server, Heroku
emulator and bot of its own, so the suite's database is never restarted."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from emulators.heroku import HerokuEmulator
from emulators.serve import serve_in_thread
from sandbox.load import ConnectionLoad
from sandbox.servers import LocalPostgres
from tests.conftest import MY_APP_FORMATION, System
from tests.harness import BotProcess
from tests.hostile.helpers import click, dedicated_bot, post_report, thread_reply
from tests.support import API_KEY, APP_DB, APP_ROLE, DB_PASSWORD, ROLE_LIMIT, blocks_text


@pytest.fixture
def own_pg() -> Iterator[LocalPostgres]:
    server = LocalPostgres.start(max_connections=60)
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{DB_PASSWORD}' CONNECTION LIMIT {ROLE_LIMIT}")
        conn.execute(f"CREATE DATABASE {APP_DB} OWNER {APP_ROLE}")
    yield server
    server.stop()


@pytest.fixture
def own_heroku(own_pg: LocalPostgres) -> Iterator[HerokuEmulator]:
    emulator = HerokuEmulator(admin_dsn=own_pg.dsn(), api_key=API_KEY, dyno_boot_seconds=0.3)
    emulator.add_app(
        "my-app",
        database_url=own_pg.dsn(APP_ROLE, DB_PASSWORD, APP_DB),
        role=APP_ROLE,
        plan="essential-0",
        formation=MY_APP_FORMATION,
    )
    running = serve_in_thread(emulator.app)
    emulator.url = running.url
    yield emulator
    running.stop()


@pytest.fixture
def own_bot(system: System, own_heroku: HerokuEmulator) -> Iterator[BotProcess]:
    # The keeper checks the reserved connection every 0.3 s instead of every 30 s.
    with dedicated_bot(
        system, heroku_url=own_heroku.url, PGCONN_APPS="my-app", PGCONN_RESERVE_INTERVAL="0.3"
    ) as process:
        yield process


def reserved_pids(pg: LocalPostgres) -> list[int]:
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgconn-reserved'"
        ).fetchall()
    return [int(r[0]) for r in rows]


async def test_the_reserved_connection_comes_back_after_a_database_restart(
    system: System, own_pg: LocalPostgres, own_heroku: HerokuEmulator, own_bot: BotProcess
) -> None:
    (before,) = await system.slack.wait_for(lambda: reserved_pids(own_pg), timeout=15)
    own_pg.restart()
    # Nobody asked for a report: the keeper re-opened it by itself, exactly one.
    (after,) = await system.slack.wait_for(lambda: reserved_pids(own_pg), timeout=15)
    assert after != before
    assert "reserved connection was lost; re-opening" in own_bot.logs()

    # At the limit, the re-opened connection is what still shows the holders and kills them.
    load = ConnectionLoad(own_pg.dsn(APP_ROLE, DB_PASSWORD, APP_DB))
    try:
        assert load.open(ROLE_LIMIT, "web.1") == ROLE_LIMIT - 1
        report = await post_report(system)
        text = blocks_text(report.blocks)
        assert f"*{ROLE_LIMIT}/{ROLE_LIMIT}*" in text and f"*{ROLE_LIMIT - 1}* `web.1`" in text
        assert "could not be read" not in text
        await click(system, report, "pgconn.killall")
        reply = await thread_reply(system, report, "Kill all")
        assert f"terminated {ROLE_LIMIT - 1} of {ROLE_LIMIT - 1} connections" in reply.text
        assert load.alive() == 0
    finally:
        load.close()
    assert reserved_pids(own_pg) == [after]
