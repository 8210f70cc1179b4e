"""Alert-thread fixtures: bot processes tuned for fast incidents, on their own Redis database.

The session bot (tests/conftest.py) keeps the production defaults; these bots redraw
the parent at once, reply without a rate limit and resolve after two seconds, so the
whole lifecycle fits in a test. They use Redis database 1, so the session bot's
periodic check (which walks database 0) never touches their incidents.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import httpx
import pytest
import redis

from bot.render.text import MAX_TEXT
from emulators.heroku import HerokuEmulator
from emulators.heroku_state import addon_name_for
from emulators.slack import Message, SlackEmulator
from sandbox.servers import LocalRedis
from tests.bot.samples import logplex_headers
from tests.conftest import System
from tests.harness import ALERT_CHANNEL, PUBLIC_URL, BotProcess, bot_env, new_port, settled, start_bot
from tests.support import watched_drain_credentials

RESOLVE_AFTER_S = 2.0
ALERT_ENV = {
    "PGCONN_RESOLVE_AFTER": str(int(RESOLVE_AFTER_S)),
    "PGCONN_ALERT_UPDATE_INTERVAL": "0",
    "PGCONN_ALERT_REPLY_INTERVAL": "0",
    "PGCONN_ALERT_TICK": "0.2",
    # A fix is checked a second later (bot.verification), so a post-mortem can show its effect.
    "PGCONN_VERIFY_AFTER": "1",
}
# Generous: a test waits for an event, and only a broken bot makes it wait this long.
WAIT_S = 20.0

T = TypeVar("T")


def alerts_redis_url(redis_url: str) -> str:
    """The alert bots' Redis: database 1 of the session's server (the system fixture flushes 0)."""
    return redis_url.rsplit("/", 1)[0] + "/1"


# Every alert bot of the session: a test's teardown waits for all of them (an incident may end in
# any of them, and its post-mortem follows the end), so nothing lands in the next test's Slack.
ALERT_BOTS: list[BotProcess] = []


def start_alert_bot(slack: SlackEmulator, heroku: HerokuEmulator, redis_server: LocalRedis) -> BotProcess:
    process = start_bot(
        bot_env(
            slack_url=slack.url,
            heroku_url=heroku.url,
            redis_url=alerts_redis_url(redis_server.url),
            port=new_port(),
            **ALERT_ENV,
        )
    )
    ALERT_BOTS.append(process)
    return process


@pytest.fixture(scope="session")
def alert_bot(
    bot: BotProcess, slack: SlackEmulator, heroku: HerokuEmulator, redis_server: LocalRedis
) -> Iterator[BotProcess]:
    process = start_alert_bot(slack, heroku, redis_server)
    yield process
    process.stop()


@pytest.fixture(scope="session")
def second_alert_bot(
    alert_bot: BotProcess, slack: SlackEmulator, heroku: HerokuEmulator, redis_server: LocalRedis
) -> Iterator[BotProcess]:
    """Another process of the same deployment: same Redis, same Slack, same apps."""
    process = start_alert_bot(slack, heroku, redis_server)
    yield process
    process.stop()


@dataclass
class Alerts:
    """One test's view of the alert machinery: drain requests in, the alert channel out."""

    system: System
    bot: BotProcess
    http: httpx.AsyncClient
    channel: str = ALERT_CHANNEL
    bots: list[BotProcess] = field(default_factory=list)

    @property
    def slack(self) -> SlackEmulator:
        return self.system.slack

    async def drain(
        self,
        body: bytes,
        *,
        app: str = "my-app",
        bot: BotProcess | None = None,
        auth: tuple[str, str] | None | Literal["app"] = "app",
        count: int = 1,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        target = bot or self.bot
        return await self.http.post(
            f"{target.url}/drains/heroku/{app}",
            content=body,
            # "app": the app's current drain credential (bot.drain_auth), as logplex would send it.
            auth=watched_drain_credentials(self.system.heroku, app)
            if auth == "app"
            else auth or httpx.USE_CLIENT_DEFAULT,
            headers={**logplex_headers(count), **(headers or {})},
        )

    def parents(self) -> list[Message]:
        # Alert threads have blocks; the plain notices of watch/unwatch (bot.watch) do not.
        return [m for m in self.slack.top_level(self.channel) if m.bot_id == self.slack.bot_id and m.blocks]

    def replies(self, parent: Message) -> list[Message]:
        return self.slack.thread(self.channel, parent.ts)

    async def one_parent(self, where: Callable[[Message], bool] = lambda m: True) -> Message:
        return await self.slack.wait_for(
            lambda: next((m for m in self.parents() if where(m)), None), timeout=WAIT_S
        )

    async def until(self, predicate: Callable[[], T | None], timeout: float = WAIT_S) -> T:
        return await self.slack.wait_for(predicate, timeout=timeout)


def blocks_of(message: Message | dict[str, object]) -> str:
    blocks = message.blocks if isinstance(message, Message) else message.get("blocks", [])
    return "\n".join(_texts(blocks))


def _texts(node: object) -> list[str]:
    out: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "text" and isinstance(value, str):
                out.append(value[:MAX_TEXT])
            else:
                out += _texts(value)
    elif isinstance(node, list):
        for item in node:
            out += _texts(item)
    return out


@pytest.fixture
async def alerts(
    system: System, alert_bot: BotProcess, redis_server: LocalRedis
) -> AsyncIterator[Alerts]:
    redis.Redis.from_url(alerts_redis_url(redis_server.url)).flushdb()
    system.slack.request_url = alert_bot.events_url
    system.heroku.webhooks.routes = {PUBLIC_URL: alert_bot.url}
    async with httpx.AsyncClient(timeout=30) as http:
        yield Alerts(system=system, bot=alert_bot, http=http)
    # Leave no incident open: this bot lives for the whole session, and its ticker would resolve
    # one during a later test, posting "Resolved" into that test's Slack (a test of another
    # module that expected an empty alert channel failed so). Heroku's webhook deliveries first:
    # one still being retried (a release of a fix) brought a budget warning into the next test.
    await system.slack.wait_for(
        lambda: all(d.status in ("succeeded", "failed") for d in system.heroku.webhooks.deliveries),
        timeout=WAIT_S,
    )
    for process in ALERT_BOTS:
        if process.process.poll() is None:
            await settled(process)
    redis.Redis.from_url(alerts_redis_url(redis_server.url)).flushdb()


def addon(app: str) -> str:
    return addon_name_for(app)
