"""The next exhaustion, forecast: real connections opened one by one against the role's
CONNECTION LIMIT, counted by the real bot over its reserved connection (my-app is on an
Essential plan: no metrics), and one warning in the app's channel before the first FATAL.

The bot's clock is compressed, not mocked: it counts every 0.2 s and fits a 2.5-second window
(PGCONN_FORECAST_INTERVAL / _WINDOW), and the test opens a connection every 0.35 s.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import redis

from emulators.heroku import HerokuEmulator
from emulators.heroku_state import addon_name_for
from emulators.slack import Message, SlackEmulator
from sandbox.servers import LocalRedis
from tests.conftest import System
from tests.harness import ALERT_CHANNEL, BotProcess, bot_env, new_port, settled, start_bot

FORECAST_ENV = {
    "PGCONN_FORECAST_INTERVAL": "0.2",
    "PGCONN_FORECAST_WINDOW": "2.5",
    "PGCONN_FORECAST_HORIZON": "60",
    # Each test starts by terminating the role's connections, pgconn's reserved one included:
    # it is re-opened at once, as a lost one is in production every PGCONN_RESERVE_INTERVAL.
    "PGCONN_RESERVE_INTERVAL": "0.5",
}
STEP_S = 0.35


def forecast_redis_url(redis_url: str) -> str:
    return redis_url.rsplit("/", 1)[0] + "/3"


@pytest.fixture(scope="module")
def forecast_bot(
    bot: BotProcess, slack: SlackEmulator, heroku: HerokuEmulator, redis_server: LocalRedis
) -> Iterator[BotProcess]:
    process = start_bot(
        bot_env(
            slack_url=slack.url,
            heroku_url=heroku.url,
            redis_url=forecast_redis_url(redis_server.url),
            port=new_port(),
            **FORECAST_ENV,
        )
    )
    yield process
    process.stop()


@pytest.fixture
async def forecasting(
    system: System, forecast_bot: BotProcess, redis_server: LocalRedis
) -> AsyncIterator[System]:
    db = redis.Redis.from_url(forecast_redis_url(redis_server.url))
    db.flushdb()
    yield system
    await settled(forecast_bot)
    db.flushdb()


def warnings(slack: SlackEmulator) -> list[Message]:
    return [m for m in slack.top_level(ALERT_CHANNEL) if "connections are rising" in m.text]


def last_evaluated(redis_server: LocalRedis) -> float:
    raw = redis.Redis.from_url(forecast_redis_url(redis_server.url)).get(
        f"pgconn:forecast:my-app:{addon_name_for('my-app')}"
    )
    return float(json.loads(raw)["trend"]["at"]) if raw else 0.0


async def test_a_rising_count_is_warned_about_once_before_the_first_refusal(
    forecasting: System, redis_server: LocalRedis
) -> None:
    system = forecasting
    # A flat stretch first, a whole window of it: counted, and nothing said about it.
    flat_from = time.time()
    await system.slack.wait_for(lambda: last_evaluated(redis_server) > flat_from + 2.5 or None, timeout=10)
    assert warnings(system.slack) == []
    first_fatal: float | None = None
    warned_at: float | None = None
    deadline = time.monotonic() + 30
    while first_fatal is None and time.monotonic() < deadline:
        opened, refused = system.load.open_reporting(1, "worker.1")
        if refused:
            first_fatal = time.time()
            assert "too many connections for role" in refused[0]
        found = warnings(system.slack)
        if found and warned_at is None:
            warned_at = float(found[0].ts)
        await asyncio.sleep(STEP_S)
    assert first_fatal is not None and warned_at is not None, (first_fatal, warned_at)
    assert warned_at < first_fatal
    (warning,) = warnings(system.slack)
    # "+120 a minute: 20/20 in about 5 seconds": the rate and the time to the limit.
    match = re.search(r"\+(\d+) a minute: 20/20 in about (\d+) seconds?", warning.text)
    assert match is not None, warning.text
    assert 60 <= int(match.group(1)) <= 200
    # Once per rise: evaluations after the limit was reached add no second warning.
    await system.slack.wait_for(lambda: last_evaluated(redis_server) > first_fatal + 1 or None, timeout=10)
    assert len(warnings(system.slack)) == 1
