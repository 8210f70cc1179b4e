"""Instruments the whole session for the secret scan in test_secrets.py.

Every Slack emulator records what it received, but the per-test `system` fixture clears
those records; and bot processes write their logs to temporary files. So, from the moment
pytest collects this directory (before any test runs):

- every call any SlackEmulator records is also kept here, with the bot's answers to every
  request Slack delivered to it;
- every bot process started (tests.harness.start_bot → sandbox.process.start_bot) is
  remembered, with its log.

test_secrets.py's scan is moved to the very end of the run so it sees all of it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

import sandbox.process
from emulators.slack import SlackEmulator
from emulators.slack_state import RecordedCall
from sandbox.servers import LocalRedis


@dataclass
class SessionTraffic:
    slack_calls: list[RecordedCall]
    bot_answers: list[str]
    bots: list[sandbox.process.BotProcess]
    tests: int = 0  # how many tests this session runs


TRAFFIC = SessionTraffic(slack_calls=[], bot_answers=[], bots=[])
SCAN_LAST = "test_secrets.py::test_no_secret_reached_slack_or_any_bot_log"


def _instrument() -> None:
    record = SlackEmulator._record
    deliver = SlackEmulator.deliver

    @functools.wraps(record)
    def recording(self: SlackEmulator, *args: Any, **kwargs: Any) -> RecordedCall:
        call = record(self, *args, **kwargs)
        TRAFFIC.slack_calls.append(call)
        return call

    @functools.wraps(deliver)
    async def delivering(self: SlackEmulator, *args: Any, **kwargs: Any) -> httpx.Response:
        response = await deliver(self, *args, **kwargs)
        TRAFFIC.bot_answers.append(response.text)
        return response

    original = sandbox.process.BotProcess

    @dataclass
    class TrackedBotProcess(original):  # type: ignore[valid-type,misc]
        def __post_init__(self) -> None:
            TRAFFIC.bots.append(self)

    SlackEmulator._record = recording  # type: ignore[method-assign]
    SlackEmulator.deliver = delivering  # type: ignore[method-assign]
    # start_bot looks BotProcess up in its module when it runs, so it builds tracked ones.
    sandbox.process.BotProcess = TrackedBotProcess  # type: ignore[misc]


_instrument()


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    TRAFFIC.tests = len(items)
    last = [item for item in items if item.nodeid.endswith(SCAN_LAST)]
    if last:
        items[:] = [item for item in items if item not in last] + last


@pytest.fixture
def own_redis() -> Iterator[LocalRedis]:
    """A Redis of the test's own, so stopping or flooding it leaves the session's alone."""
    server = LocalRedis.start()
    yield server
    server.stop()
