"""Redis stopped mid-run and started again, under a bot of its own (the suite's Redis and
bot are not touched). While it is down, read-only answers still come, with a note, and
every destructive action is refused with the reason. When it is back, nothing runs twice
and no incident gets a second thread."""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import Iterator

import httpx
import pytest
import redis

from bot.state.incidents import incident_key
from bot.state.remediation import CLAIM_PENDING_TTL_S
from sandbox.servers import LocalRedis
from tests.bot.samples import fatal_line, frame
from tests.conftest import System
from tests.harness import ALERT_CHANNEL, OPS_CHANNEL, BotProcess, new_port, start_bot
from tests.hostile.helpers import (
    basic_auth,
    click,
    dedicated_bot,
    destructive_heroku_calls,
    ephemeral,
    new_message,
    post_drain,
    post_report,
    slash,
    thread_reply,
)
from tests.support import blocks_text, drain_credentials

ACTIONS = {
    "pgconn.kill_idle": "Kill idle",
    "pgconn.killall": "Kill all",
    "pgconn.restart": "Restart dynos",
    "pgconn.add_pgbouncer": "Add PgBouncer",
}
STATE_NOTE = "state store (Redis) is unreachable"


@pytest.fixture
def own_bot(system: System, own_redis: LocalRedis) -> Iterator[BotProcess]:
    # Incidents stay open for the whole test and the parent is redrawn at every signal.
    with dedicated_bot(
        system, redis_url=own_redis.url, PGCONN_RESOLVE_AFTER="3600", PGCONN_ALERT_UPDATE_INTERVAL="0"
    ) as process:
        yield process


def restart_keeping_data(server: LocalRedis) -> None:
    """Stop and start on the same port; SAVE first, as a Redis with persistence keeps its data.

    (A Redis that loses its data on restart loses the claims and incidents with it; what pgconn
    can promise then is in the README's Reliability section.)"""
    redis.Redis.from_url(server.url).save()
    server.stop_server()
    server.start_server()


def health(bot: BotProcess) -> dict[str, object]:
    return dict(httpx.get(f"{bot.url}/healthz", timeout=5).json())


async def test_with_redis_down_reads_answer_with_a_note_and_every_action_is_refused(
    system: System, own_redis: LocalRedis, own_bot: BotProcess
) -> None:
    assert health(own_bot)["redis"] == "up"
    up_report = await post_report(system)
    assert STATE_NOTE not in blocks_text(up_report.blocks)
    system.load.open(3, "web.1")
    own_redis.stop_server()
    assert health(own_bot)["redis"] == "down"

    report = await post_report(system)
    text = blocks_text(report.blocks)
    assert "Top holders" in text and "*3* `web.1`" in text
    assert STATE_NOTE in text and "buttons will refuse" in text
    before = len(system.slack.messages(OPS_CHANNEL))
    await slash(system, "my-app budget")
    assert "Connection budget" in blocks_text((await new_message(system, before)).blocks)
    await slash(system, "my-app audit")
    assert "audit log cannot be read" in await ephemeral(system, STATE_NOTE)

    since = len(system.heroku.requests)
    for action_id, label in ACTIONS.items():
        await click(system, report, action_id)
        refusal = await ephemeral(system, f"*{label}* refused")
        assert refusal == (
            f":no_entry: *{label}* refused: pgconn's state store (Redis) is unreachable, so it cannot "
            "guarantee this runs only once. Nothing was done; try again shortly."
        )
    assert system.load.alive() == 3
    assert destructive_heroku_calls(system, since) == []
    assert system.heroku.apps["my-app"].buildpacks == ["heroku/python"]
    assert system.slack.thread(OPS_CHANNEL, report.ts) == []

    # Redis is back: the refused click now runs, exactly once however often it is delivered.
    own_redis.start_server()
    await click(system, report, "pgconn.killall")
    reply = await thread_reply(system, report, "Kill all")
    assert "terminated 3 of 3 connections" in reply.text
    for _ in range(3):
        await click(system, report, "pgconn.killall")
    await system.slack.wait_for(
        lambda: sum("not run again" in str(e.get("text")) for e in system.slack.ephemerals) == 3
    )
    assert [m.text for m in system.slack.thread(OPS_CHANNEL, report.ts)] == [reply.text]
    assert redis.Redis.from_url(own_redis.url).xlen("pgconn:audit:my-app") == 1
    assert health(own_bot)["redis"] == "up"


async def test_a_click_done_before_a_redis_restart_is_not_run_again_after_it(
    system: System, own_redis: LocalRedis, own_bot: BotProcess
) -> None:
    report = await post_report(system)
    system.load.open(3, "web.1")
    await click(system, report, "pgconn.killall")
    reply = await thread_reply(system, report, "Kill all")
    assert "terminated 3 of 3" in reply.text
    restart_keeping_data(own_redis)
    system.load.open(3, "web.2")
    await click(system, report, "pgconn.killall")  # Slack redelivers, or a colleague clicks late
    assert "not run again" in await ephemeral(system, "not run again")
    assert system.load.alive() == 3
    assert len(system.slack.thread(OPS_CHANNEL, report.ts)) == 1


async def test_a_click_refused_while_redis_hangs_can_run_soon_after_it_answers_again(
    system: System, own_redis: LocalRedis, own_bot: BotProcess
) -> None:
    """Redis frozen (SIGSTOP): the claim times out and the click is refused — but Redis still
    applies the claim when it resumes. That stray claim must not hold the button for long."""
    report = await post_report(system)
    system.load.open(3, "web.1")
    assert own_redis.process is not None
    own_redis.process.send_signal(signal.SIGSTOP)
    try:
        await click(system, report, "pgconn.killall")
        assert "refused: pgconn's state store (Redis) is unreachable" in await ephemeral(system, "refused")
        assert system.load.alive() == 3
    finally:
        own_redis.process.send_signal(signal.SIGCONT)
    stray = redis.Redis.from_url(own_redis.url).ttl(f"pgconn:click:my-app:pgconn.killall:{report.ts}")
    assert 0 < stray <= CLAIM_PENDING_TTL_S  # the refused click's claim landed late, and expires in seconds
    # "Try again shortly" holds: clicking again runs it once the stray claim is gone.
    deadline = asyncio.get_running_loop().time() + 20
    while not system.slack.thread(OPS_CHANNEL, report.ts):
        assert asyncio.get_running_loop().time() < deadline, system.slack.dump()
        await click(system, report, "pgconn.killall")
        await asyncio.sleep(1)
    reply = await thread_reply(system, report, "Kill all")
    assert "terminated 3 of 3 connections" in reply.text
    assert len(system.slack.thread(OPS_CHANNEL, report.ts)) == 1


def incident_signals(server: LocalRedis, system: System) -> int:
    key = incident_key("my-app", system.heroku.apps["my-app"].addon.name)
    raw = redis.Redis.from_url(server.url, decode_responses=True).hget(key, "signals")
    return int(raw or 0)


async def test_signals_while_redis_is_down_update_the_same_incident_thread_when_it_returns(
    system: System, own_redis: LocalRedis, own_bot: BotProcess
) -> None:
    auth = basic_auth(*drain_credentials("my-app"))
    assert (await post_drain(own_bot, "my-app", frame([fatal_line()]), authorization=auth)).status_code == 204
    parent = await system.slack.wait_for(
        lambda: next((m for m in system.slack.messages(ALERT_CHANNEL) if m.blocks), None), timeout=20
    )
    await system.slack.wait_for(lambda: incident_signals(own_redis, system) == 1)

    # Down briefly (stopped with its data saved): the drain keeps answering, the engine holds
    # the signals and retries until Redis is back.
    redis.Redis.from_url(own_redis.url).save()
    own_redis.stop_server()
    response = await post_drain(own_bot, "my-app", frame([fatal_line()] * 2), authorization=auth, count=2)
    assert response.status_code == 204
    own_redis.start_server()
    await system.slack.wait_for(lambda: incident_signals(own_redis, system) == 3, timeout=20)

    # Restarted (with its data): later signals still go to the same incident and thread.
    restart_keeping_data(own_redis)
    response = await post_drain(own_bot, "my-app", frame([fatal_line()] * 4), authorization=auth, count=4)
    assert response.status_code == 204
    await system.slack.wait_for(lambda: incident_signals(own_redis, system) == 7, timeout=20)
    # As long as the wait above: the redraw follows the stored count, on a loaded machine later.
    await system.slack.wait_for(
        lambda: "7 signals" in blocks_text(system.slack.messages(ALERT_CHANNEL)[0].blocks), timeout=20
    )
    assert [m.ts for m in system.slack.top_level(ALERT_CHANNEL)] == [parent.ts]
    assert own_bot.alive()


async def test_without_redis_url_the_bot_runs_an_embedded_redis_and_stops_it_on_exit(system: System) -> None:
    """REDIS_URL unset (off a dyno): `python -m bot` starts a private redis-server, uses it for
    claims and the audit, and stops it when it exits."""
    env = {k: v for k, v in system.bot.env.items() if k != "REDIS_URL"}
    process = start_bot({**env, "PORT": str(new_port())})
    system.slack.request_url = process.events_url
    try:
        assert health(process)["redis"] == "up"
        found = re.search(r"using an embedded Redis on (redis://[\w.:/]+)", process.logs())
        assert found is not None, process.logs()
        embedded = redis.Redis.from_url(found.group(1), socket_connect_timeout=2)
        assert embedded.ping() and found.group(1) != system.redis_url
        report = await post_report(system)
        system.load.open(3, "web.1")
        await click(system, report, "pgconn.killall")
        reply = await thread_reply(system, report, "Kill all")
        assert "terminated 3 of 3" in reply.text
        await click(system, report, "pgconn.killall")  # the same click again: the claim holds
        assert "not run again" in await ephemeral(system, "not run again")
        assert embedded.xlen("pgconn:audit:my-app") == 1
    finally:
        system.slack.request_url = system.bot.events_url
        process.stop()
    with pytest.raises(redis.ConnectionError):
        embedded.ping()
