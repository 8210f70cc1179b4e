"""Escalation to PagerDuty end to end: two running bot processes of one deployment (my-app names a
routing key and escalates after 1 s), drain lines in, signed clicks, the PagerDuty emulator out.

The bots run on their own Redis database (2), so the session's other bots never see these incidents.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import redis

from bot.alerts.ownership import ACKNOWLEDGE, RESOLVE
from emulators.heroku import HerokuEmulator
from emulators.pagerduty import PagerDutyEmulator
from emulators.slack import Message, SlackEmulator
from sandbox.servers import LocalRedis
from tests.bot.samples import fatal_line, frame
from tests.conftest import System
from tests.end_to_end.conftest import ALERT_ENV, WAIT_S, Alerts, blocks_of
from tests.end_to_end.test_incident_ownership import HELD, click, said
from tests.harness import PUBLIC_URL, BotProcess, bot_env, new_port, settled, start_bot

ROUTING_KEY = "R0PGCONNTEST" + "7" * 20  # 32 characters, like an Events API v2 integration key
OTHER_TEAM_ADMIN = "UOTHERTEAM"


def pager_redis_url(redis_server: LocalRedis) -> str:
    return redis_server.url.rsplit("/", 1)[0] + "/2"


def pager_env(
    slack: SlackEmulator, heroku: HerokuEmulator, redis_server: LocalRedis, pd: PagerDutyEmulator
) -> dict[str, str]:
    routes = {
        "my-app": {"pagerduty_routing_key": ROUTING_KEY, "escalate_after": "1s"},
        # Another team's app: its admin is no admin of my-app.
        "std-app": {"admins": [OTHER_TEAM_ADMIN]},
    }
    return bot_env(
        slack_url=slack.url,
        heroku_url=heroku.url,
        redis_url=pager_redis_url(redis_server),
        port=new_port(),
        **ALERT_ENV,
        PGCONN_APP_ROUTES=json.dumps(routes),
        PGCONN_PAGERDUTY_URL=pd.url,
        PGCONN_PAGERDUTY_RETRY="0.3",
    )


@pytest.fixture(scope="module")
def pager_bots(
    slack: SlackEmulator, heroku: HerokuEmulator, redis_server: LocalRedis, pagerduty: PagerDutyEmulator
) -> Iterator[list[BotProcess]]:
    bots = [start_bot(pager_env(slack, heroku, redis_server, pagerduty)) for _ in range(2)]
    yield bots
    for process in bots:
        process.stop()


@pytest.fixture
async def pager(
    system: System, pager_bots: list[BotProcess], redis_server: LocalRedis, pagerduty: PagerDutyEmulator
) -> AsyncIterator[Alerts]:
    redis.Redis.from_url(pager_redis_url(redis_server)).flushdb()
    pagerduty.reset()
    system.slack.request_url = pager_bots[0].events_url
    system.heroku.webhooks.routes = {PUBLIC_URL: pager_bots[0].url}
    async with httpx.AsyncClient(timeout=30) as http:
        yield Alerts(system=system, bot=pager_bots[0], http=http, bots=pager_bots)
    for process in pager_bots:
        if process.alive():
            await settled(process)
    redis.Redis.from_url(pager_redis_url(redis_server)).flushdb()


def incident_id(redis_server: LocalRedis) -> str:
    store = redis.Redis.from_url(pager_redis_url(redis_server), decode_responses=True)
    (key,) = store.keys("pgconn:incident:my-app:*")
    return str(store.hget(key, "id"))


def outbox_empty(redis_server: LocalRedis) -> bool:
    return redis.Redis.from_url(pager_redis_url(redis_server)).zcard("pgconn:pagerduty:due") == 0


async def opened_on_both(pager: Alerts, hold: bool = True) -> Message:
    if hold:  # keeps the incident open (tests.end_to_end.test_incident_ownership.HELD)
        await asyncio.to_thread(pager.system.load.open, HELD, "web.1")
    bodies = [frame([fatal_line(proc=f"web.{i}")] * 5) for i in range(6)]
    responses = await asyncio.gather(
        *(pager.drain(body, bot=pager.bots[i % 2], count=5) for i, body in enumerate(bodies))
    )
    assert {r.status_code for r in responses} == {204}
    return await pager.one_parent()


async def test_an_unacknowledged_incident_escalates_once_then_acknowledge_and_resolve_follow(
    pager: Alerts, pagerduty: PagerDutyEmulator, redis_server: LocalRedis
) -> None:
    parent = await opened_on_both(pager)
    dedup = incident_id(redis_server)
    (escalated,) = await pager.until(lambda: said(pager, parent, "Escalated to PagerDuty"))
    assert "nobody acknowledged this incident in time" in escalated.text
    await pager.until(lambda: ":pager: Escalated to PagerDuty" in blocks_of(parent))
    incident = pagerduty.incident(dedup)
    # Critical from the refusals; warning once pgconn's probe counts the 17 held connections.
    assert incident is not None and incident.status == "triggered"
    assert incident.severity in ("critical", "warning")
    assert "my-app" in incident.summary and incident.routing_key == ROUTING_KEY
    # Both processes kept checking the incident; PagerDuty got one trigger, and has one incident.
    await pager.until(lambda: outbox_empty(redis_server))
    for process in pager.bots:
        await settled(process)
    assert len(pagerduty.received("trigger")) == 1 and len(pagerduty.all_incidents()) == 1
    assert len(said(pager, parent, "Escalated to PagerDuty")) == 1

    await click(pager, parent, ACKNOWLEDGE.id, bot=pager.bots[1])
    await pager.until(lambda: said(pager, parent, "PagerDuty acknowledged too"))
    assert pagerduty.incident(dedup).status == "acknowledged"  # type: ignore[union-attr]
    await click(pager, parent, RESOLVE.id, bot=pager.bots[0])
    await pager.until(lambda: said(pager, parent, "PagerDuty resolved too"))
    assert pagerduty.incident(dedup).log == ["trigger", "acknowledge", "resolve"]  # type: ignore[union-attr]
    assert pagerduty.incident(dedup).status == "resolved"  # type: ignore[union-attr]


async def test_an_admin_of_another_app_is_refused_and_nothing_changes(
    pager: Alerts, pagerduty: PagerDutyEmulator, redis_server: LocalRedis
) -> None:
    parent = await opened_on_both(pager)
    await click(pager, parent, RESOLVE.id, user=OTHER_TEAM_ADMIN)
    await settled(pager.bot)
    refusals = [e for e in pager.slack.ephemerals if "Only pgconn admins of `my-app`" in str(e.get("text"))]
    assert len(refusals) == 1
    store = redis.Redis.from_url(pager_redis_url(redis_server), decode_responses=True)
    (key,) = store.keys("pgconn:incident:my-app:*")
    assert (store.hget(key, "status"), store.hget(key, "resolved_by")) == ("open", "")
    assert said(pager, parent, "resolved this incident") == []


async def test_a_refusal_by_pagerduty_is_said_in_the_thread_and_not_retried(
    pager: Alerts, pagerduty: PagerDutyEmulator, redis_server: LocalRedis
) -> None:
    pagerduty.fail(400, times=1)
    parent = await opened_on_both(pager)
    (refused,) = await pager.until(lambda: said(pager, parent, "PagerDuty refused the *trigger*"))
    assert "HTTP 400" in refused.text and "emulated refusal" in refused.text
    await pager.until(lambda: outbox_empty(redis_server))
    for process in pager.bots:
        await settled(process)
    assert [e.status for e in pagerduty.received()] == [400] and pagerduty.all_incidents() == []
    assert ROUTING_KEY not in "".join(b.logs() for b in pager.bots)  # a secret: never logged


async def test_an_outage_is_retried_and_the_event_outlives_the_processes_that_queued_it(
    pager: Alerts, pagerduty: PagerDutyEmulator, redis_server: LocalRedis, pager_bots: list[BotProcess]
) -> None:
    """PagerDuty answers 503 until both processes are killed (SIGKILL: nothing kept in memory
    survives); a process started afterwards sends the trigger from the Redis outbox."""
    pagerduty.fail(503, times=10_000)
    parent = await opened_on_both(pager, hold=False)
    (warning,) = await pager.until(lambda: said(pager, parent, "PagerDuty did not take the *trigger*"))
    assert "HTTP 503" in warning.text and "tries again" in warning.text
    await pager.until(lambda: len(pagerduty.received("trigger")) >= 3)  # retried, with back-off
    # Killed between two attempts (a process killed while sending holds the incident's send lease,
    # bot.state.pagerduty.LEASE_S, and the next process waits that out).
    store = redis.Redis.from_url(pager_redis_url(redis_server))
    await pager.until(lambda: not store.keys("pgconn:pagerduty:lease:*"))
    for process in pager_bots:
        os.kill(process.process.pid, signal.SIGKILL)
        process.process.wait()
    assert not outbox_empty(redis_server)
    pagerduty.recover()
    dedup = incident_id(redis_server)
    assert pagerduty.incident(dedup) is None
    pager_bots[:] = [start_bot(pager.bots[0].env)]  # the next process (restarted dyno), same Redis
    await pager.until(lambda: said(pager, parent, "Escalated to PagerDuty (after"), timeout=WAIT_S)
    incident = pagerduty.incident(dedup)
    # One trigger, first; the incident resolved by itself meanwhile (the role has room: the probe
    # sees it) and its resolve, queued while PagerDuty was down, went out after the trigger.
    assert incident is not None and incident.triggers == 1 and incident.log[0] == "trigger"
    assert incident.log in (["trigger"], ["trigger", "resolve"])
    assert len(said(pager, parent, "PagerDuty did not take")) == 1  # said once, not at every retry
    await pager.until(lambda: outbox_empty(redis_server))
