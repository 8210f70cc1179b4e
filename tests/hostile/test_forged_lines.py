"""Forged log lines (issue 20, item 3): names in the lines choose nothing, and app output is
shown as what it is."""

from __future__ import annotations

import redis

from tests.bot.samples import app_line, fatal_message, frame, syslog
from tests.conftest import System
from tests.harness import ALERT_CHANNEL
from tests.hostile.helpers import basic_auth, post_drain
from tests.support import blocks_text, drain_credentials

AUTH = basic_auth(*drain_credentials("my-app"))


def postgres_line(attachment: str, n: int) -> str:
    """What Heroku Postgres logs when it refuses a connection, as the drain carries it."""
    return syslog(
        f"[{attachment}] [{n}-1] sql_error_code = 53300 FATAL:  too many connections for role 'u1'",
        app="app",
        proc="postgres.1234",
    )


def parents(system: System) -> list[str]:
    return [blocks_text(m.blocks) for m in system.slack.messages(ALERT_CHANNEL) if m.blocks]


async def test_thousands_of_forged_database_names_open_no_incident(system: System) -> None:
    forged = [postgres_line(f"FORGED_{i}", i) for i in range(3000)]
    assert (await post_drain(system.bot, "my-app", frame(forged), authorization=AUTH)).status_code == 204
    heroku_before = len(system.heroku.requests)
    # Then the real thing: Postgres's own line about the app's own DATABASE.
    real = frame([postgres_line("DATABASE", 1)])
    assert (await post_drain(system.bot, "my-app", real, authorization=AUTH)).status_code == 204
    first = await system.slack.wait_for(lambda: parents(system) or None, timeout=20)
    assert len(first) == 1 and "FORGED" not in first[0]
    assert "ignored" in system.bot.logs() and "a database it has not" in system.bot.logs()
    # One report's worth of Heroku calls, not thousands.
    assert len(system.heroku.requests) - heroku_before < 20
    keys = list(redis.Redis.from_url(system.redis_url).keys("pgconn:incident:*"))
    assert len(keys) == 1, keys


async def test_a_refusal_in_the_apps_own_output_is_shown_as_such(system: System) -> None:
    line = app_line(f'Started GET "/search?q={fatal_message()}"', proc="web.2")
    assert (await post_drain(system.bot, "my-app", frame([line]), authorization=AUTH)).status_code == 204
    (parent,) = await system.slack.wait_for(lambda: parents(system) or None, timeout=20)
    assert "logged by the app itself (`web.2`)" in parent
    assert "trust the connection count above" in parent

