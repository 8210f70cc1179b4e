"""The reserved-connection keeper: real Postgres, the Heroku emulator, and Heroku's rate limit in mind."""

from __future__ import annotations

import pytest

from bot.config import Settings
from bot.dependencies import build_services
from bot.postgres import RESERVED_APPLICATION_NAME
from bot.reserved import keep_reserved_once
from emulators.heroku import HerokuEmulator
from sandbox.servers import LocalPostgres
from tests.support import API_KEY, BOT_TOKEN, terminate_role


def reserved_backends(pg: LocalPostgres) -> int:
    import psycopg

    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (RESERVED_APPLICATION_NAME,)
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.fixture
def settings(heroku: HerokuEmulator) -> Settings:
    return Settings.from_env(
        {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": "s",
            "HEROKU_API_KEY": API_KEY,
            "PGCONN_APPS": "my-app",
            "HEROKU_API_URL": heroku.url,
            "HEROKU_DATA_API_URL": heroku.url,
        }
    )


async def test_keeper_holds_one_connection_and_asks_heroku_only_when_it_is_lost(
    settings: Settings, heroku: HerokuEmulator, pg: LocalPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if every pass came long after the last: no cached answer is fresh.
    monkeypatch.setattr("bot.dependencies.DSN_CACHE_S", 0.0)
    terminate_role(pg)
    services = build_services(settings)
    try:
        heroku.requests.clear()
        assert await keep_reserved_once(services) == {"my-app": True}
        assert reserved_backends(pg) == 1
        first = len(heroku.requests)
        assert first > 0
        # Idle passes: the live connection is proof enough, Heroku is not asked again.
        for _ in range(5):
            assert await keep_reserved_once(services) == {"my-app": True}
        assert len(heroku.requests) == first
        assert reserved_backends(pg) == 1
        # Killed (pg:killall by someone, a database restart): it comes back by itself.
        terminate_role(pg)
        assert await keep_reserved_once(services) == {"my-app": True}
        assert reserved_backends(pg) == 1
    finally:
        await services.aclose()
        terminate_role(pg)
