"""The PagerDuty outbox on the suite's real Redis, sent by the Escalator to the PagerDuty emulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis
from slack_sdk.web.async_client import AsyncWebClient

from bot.alerts.escalation import Escalator
from bot.state import connect_redis
from bot.state.incidents import Incident
from bot.state.pagerduty import PagerDutyOutbox
from emulators.pagerduty import PagerDutyEmulator
from emulators.serve import free_port
from sandbox.servers import LocalRedis

KEY = "P" + "2" * 31
# Its own Redis database: the end-to-end fixtures flush 0 and 1.
DB = 5


@pytest.fixture
async def outbox(redis_server: LocalRedis) -> AsyncIterator[PagerDutyOutbox]:
    url = redis_server.url.rsplit("/", 1)[0] + f"/{DB}"
    redis.Redis.from_url(url).flushdb()
    client = connect_redis(url)
    yield PagerDutyOutbox(client)
    await client.aclose()


def incident(n: int = 1, app: str = "my-app") -> Incident:
    return Incident(
        app=app, database="postgresql-a-1", id=f"{app}:postgresql-a-1:{1700000000000 + n}:abcdef",
        current=20, limit=20, opened_at=1700000000.0,
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def escalator(outbox: PagerDutyOutbox, url: str, clock: Clock, key: str | None = KEY) -> Escalator:
    return Escalator(
        base_url=url,
        retry_s=5.0,
        route=lambda app: (key, 60.0) if key else (None, None),
        # No thread to reply in (the incidents here have no ts): Slack is never called.
        slack=AsyncWebClient(token="xoxb-unused", base_url="http://127.0.0.1:9/api/"),
        outbox=outbox,
        clock=clock,
    )


async def test_one_trigger_per_incident_whoever_queues_it_and_follow_ups_only_after_it(
    outbox: PagerDutyOutbox, pagerduty: PagerDutyEmulator
) -> None:
    clock = Clock()
    first, second = escalator(outbox, pagerduty.url, clock), escalator(outbox, pagerduty.url, clock)
    a = incident()
    # An acknowledge of an incident PagerDuty never heard of is not sent.
    assert not await first.queue(a, "acknowledge")
    results = await asyncio.gather(*(e.queue(a, "trigger") for e in (first, second) * 5))
    assert sum(results) == 1
    assert await second.queue(a, "acknowledge") and await first.queue(a, "resolve")
    assert await outbox.pending() == 1


async def test_events_go_out_in_order_and_make_one_pagerduty_incident(
    outbox: PagerDutyOutbox, pagerduty: PagerDutyEmulator
) -> None:
    pagerduty.reset()
    clock = Clock()
    sender = escalator(outbox, pagerduty.url, clock)
    a = incident(2)
    for action in ("trigger", "acknowledge", "resolve"):
        assert await sender.queue(a, action)
    await asyncio.gather(sender.deliver(), escalator(outbox, pagerduty.url, clock).deliver())
    (pd,) = pagerduty.all_incidents()
    assert (pd.dedup_key, pd.log, pd.status) == (a.id, ["trigger", "acknowledge", "resolve"], "resolved")
    assert await outbox.pending() == 0
    await sender.aclose()


async def test_an_outage_is_retried_with_back_off_and_nothing_is_lost(
    outbox: PagerDutyOutbox, pagerduty: PagerDutyEmulator
) -> None:
    pagerduty.reset()
    clock = Clock()
    a = incident(3)
    sender = escalator(outbox, pagerduty.url, clock)
    assert await sender.queue(a, "trigger")
    pagerduty.fail(503, times=1)
    pagerduty.fail(429, times=1)
    await sender.deliver()  # 503: kept, due again in 5 s
    # What waits in Redis names the app, never its routing key (a secret).
    raw, _ = await outbox.first(a.id)
    assert raw is not None and KEY not in raw.dump() and raw.app == "my-app"
    await sender.deliver()  # not due yet: nothing sent
    assert [e.status for e in pagerduty.received()] == [503]
    clock.now += 5
    await sender.deliver()  # 429: kept, due in 10 s
    clock.now += 9
    await sender.deliver()
    assert [e.status for e in pagerduty.received()] == [503, 429]
    # A new process (this one "died"): the event is in Redis, not in memory.
    clock.now += 1
    await escalator(outbox, pagerduty.url, clock).deliver()
    assert [e.status for e in pagerduty.received()] == [503, 429, 202]
    assert pagerduty.incident(a.id) is not None and await outbox.pending() == 0


async def test_no_answer_at_all_is_retried(outbox: PagerDutyOutbox) -> None:
    clock = Clock()
    closed = f"http://127.0.0.1:{free_port()}"
    sender = escalator(outbox, closed, clock)
    assert await sender.queue(incident(4), "trigger")
    await sender.deliver()
    assert await outbox.pending() == 1
    event, failures = await outbox.first(incident(4).id)
    assert event is not None and failures == 1


async def test_a_refusal_is_not_retried(outbox: PagerDutyOutbox, pagerduty: PagerDutyEmulator) -> None:
    pagerduty.reset()
    clock = Clock()
    bad = escalator(outbox, pagerduty.url, clock, key="too-short")
    assert await bad.queue(incident(5), "trigger")
    await bad.deliver()
    assert [e.status for e in pagerduty.received()] == [400]
    assert await outbox.pending() == 0
    clock.now += 3600
    await bad.deliver()
    assert len(pagerduty.received()) == 1
