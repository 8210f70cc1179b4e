"""Every fix verified in its thread: real connections that change after a fix, the real bot
processes, the Heroku emulator's releases and their signed `api:release` webhooks.

Two bot processes share Redis database 2 and check a fix PGCONN_VERIFY_AFTER seconds after it
(here 2 s instead of a minute); releases are followed by their webhook only (PGCONN_VERIFY_POLL is
a minute, longer than any wait here), so a verdict after a deploy proves the webhook woke it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import redis

from bot.heroku import PLATFORM_ACCEPT
from emulators.heroku import HerokuEmulator
from emulators.slack import Message, SlackEmulator
from sandbox.servers import LocalRedis
from tests.conftest import System
from tests.end_to_end.test_remediation import click, post_report
from tests.harness import ADMIN, OPS_CHANNEL, PUBLIC_URL, BotProcess, bot_env, new_port, settled, start_bot
from tests.support import API_KEY, ROLE_LIMIT

VERIFY_ENV = {
    "PGCONN_VERIFY_AFTER": "2",
    "PGCONN_VERIFY_POLL": "60",
    "PGCONN_FORECAST_INTERVAL": "0",
}
WAIT_S = 20.0


def verify_redis_url(redis_url: str) -> str:
    return redis_url.rsplit("/", 1)[0] + "/2"


def start_verify_bot(slack: SlackEmulator, heroku: HerokuEmulator, redis_server: LocalRedis) -> BotProcess:
    return start_bot(
        bot_env(
            slack_url=slack.url,
            heroku_url=heroku.url,
            redis_url=verify_redis_url(redis_server.url),
            port=new_port(),
            **VERIFY_ENV,
        )
    )


@pytest.fixture(scope="module")
def verify_bots(
    bot: BotProcess, slack: SlackEmulator, heroku: HerokuEmulator, redis_server: LocalRedis
) -> Iterator[tuple[BotProcess, BotProcess]]:
    a = start_verify_bot(slack, heroku, redis_server)
    b = start_verify_bot(slack, heroku, redis_server)
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture
async def verifying(
    system: System, verify_bots: tuple[BotProcess, BotProcess], redis_server: LocalRedis
) -> AsyncIterator[System]:
    db = redis.Redis.from_url(verify_redis_url(redis_server.url))
    db.flushdb()
    a, _ = verify_bots
    system.slack.request_url = a.events_url
    system.heroku.webhooks.routes = {PUBLIC_URL: a.url}
    yield system
    for process in verify_bots:
        await settled(process)
    db.flushdb()


def results(redis_server: LocalRedis, thread_ts: str) -> list[dict[str, object]]:
    db = redis.Redis.from_url(verify_redis_url(redis_server.url))
    return [json.loads(r) for r in db.lrange(f"pgconn:verifications:{OPS_CHANNEL}:{thread_ts}", 0, -1)]


def pending(redis_server: LocalRedis) -> int:
    return int(redis.Redis.from_url(verify_redis_url(redis_server.url)).zcard("pgconn:verify:due"))


async def verdict(system: System, report: Message, word: str) -> Message:
    return await system.slack.wait_for(
        lambda: next(
            (m for m in system.slack.thread(OPS_CHANNEL, report.ts) if "checked by pgconn" in m.text
             and word in m.text),
            None,
        ),
        timeout=WAIT_S,
    )


async def result_posted(system: System, report: Message, contains: str) -> Message:
    return await system.slack.wait_for(
        lambda: next((m for m in system.slack.thread(OPS_CHANNEL, report.ts) if contains in m.text), None),
        timeout=WAIT_S,
    )


async def test_kill_all_is_verified_a_while_later_with_before_and_after(
    verifying: System, redis_server: LocalRedis
) -> None:
    system = verifying
    report = await post_report(system)
    held = system.load.open(12, "web.1")
    await click(system, report, "pgconn.killall")
    await result_posted(system, report, "ran *Kill all*")
    line = await verdict(system, report, "verified:")
    # Before: the 12 held and pgconn's own reserved connections; after: only pgconn's.
    (stored,) = results(redis_server, report.ts)
    assert stored["verdict"] == "verified" and stored["user"] == ADMIN and stored["action"] == "killall"
    before, after = int(str(stored["before"])), int(str(stored["after"]))
    assert held == 12 and before >= 12 and after <= 3
    assert f"verified: {before}/{ROLE_LIMIT} → {after}/{ROLE_LIMIT} 2 seconds after *Kill all*" in line.text
    assert not any(b.get("type") == "actions" for b in line.blocks)  # it held: no button


async def test_connections_climbing_back_after_kill_idle_are_said_with_the_button_that_fits(
    verifying: System, redis_server: LocalRedis
) -> None:
    system = verifying
    report = await post_report(system)
    system.load.open(10, "worker.1")
    await click(system, report, "pgconn.kill_idle")
    await result_posted(system, report, "ran *Kill idle*")
    # The cause is still there: the worker opens its connections again right after the kill.
    assert system.load.open(8, "worker.1") == 8
    line = await verdict(system, report, "climbing back")
    assert "the cause is still there" in line.text
    (stored,) = results(redis_server, report.ts)
    assert stored["verdict"] == "climbing" and int(str(stored["after"])) >= 8
    # The button that fits is in the verification line, and it works like any other.
    (actions,) = [b for b in line.blocks if b.get("type") == "actions"]
    (button,) = actions["elements"]
    response = await system.slack.click(
        action_id=button["action_id"], value=button["value"], user_id=ADMIN, channel_id=OPS_CHANNEL,
        message_ts=line.ts,
    )
    assert response.status_code == 200
    assert button["action_id"] == "pgconn.restart" and button["value"] == "my-app:worker"
    await result_posted(system, report, "restarted 1 worker dyno")


async def test_a_restart_is_verified_by_dynos_up_and_connections_under_the_limit(verifying: System) -> None:
    system = verifying
    report = await post_report(system)
    system.load.open(5, "web.2")
    await click(system, report, "pgconn.restart")
    await result_posted(system, report, "dynos are up")
    line = await verdict(system, report, "verified: all 4 dynos up")
    assert "after the restart" in line.text


async def test_a_verification_survives_its_process_and_is_said_once_across_processes(
    verifying: System,
    verify_bots: tuple[BotProcess, BotProcess],
    redis_server: LocalRedis,
    slack: SlackEmulator,
    heroku: HerokuEmulator,
) -> None:
    system = verifying
    # A third process takes the click, and is stopped (a dyno restart of pgconn) before its
    # fix is due to be checked: one of the two others says it, once.
    doomed = start_verify_bot(slack, heroku, redis_server)
    try:
        system.slack.request_url = doomed.events_url
        report = await post_report(system)
        system.load.open(6, "web.3")
        await click(system, report, "pgconn.killall")
        await result_posted(system, report, "ran *Kill all*")
    finally:
        doomed.stop()
    system.slack.request_url = verify_bots[0].events_url
    await verdict(system, report, "verified:")
    await system.slack.wait_for(lambda: pending(redis_server) == 0 or None, timeout=WAIT_S)
    for process in verify_bots:
        await settled(process)
    said = [m for m in system.slack.thread(OPS_CHANNEL, report.ts) if "checked by pgconn" in m.text]
    assert len(said) == 1 and len(results(redis_server, report.ts)) == 1


async def test_add_pgbouncer_is_verified_after_the_release_that_carries_it(
    verifying: System, redis_server: LocalRedis, verify_bots: tuple[BotProcess, BotProcess]
) -> None:
    system = verifying
    app = system.heroku.apps["my-app"]
    await system.slack.send_slash_command("my-app watch", user_id=ADMIN, channel_id=OPS_CHANNEL)
    await system.slack.wait_for(lambda: app.webhooks or None, timeout=WAIT_S)
    report = await post_report(system)
    # Before: 4 connections in each of the 4 dynos (web.1-3, worker.1).
    for dyno in ("web.1", "web.2", "web.3", "worker.1"):
        assert system.load.open(4, dyno) == 4
    await click(system, report, "pgconn.add_pgbouncer")
    await result_posted(system, report, "ran *Add PgBouncer*")
    # Its own config vars made a release on the same slug: no deploy yet, nothing said. The
    # webhook of that release was handled (delivered, and the bot settled) before looking.
    deliveries = system.heroku.webhooks.of
    await system.slack.wait_for(
        lambda: any(d.include == "api:release" and d.status == "succeeded" for d in deliveries("my-app"))
        or None,
        timeout=WAIT_S,
    )
    await system.slack.wait_for(lambda: pending(redis_server) == 1 or None, timeout=WAIT_S)
    for process in verify_bots:
        await settled(process)
    assert not [m for m in system.slack.thread(OPS_CHANNEL, report.ts) if "checked by pgconn" in m.text]
    # The deploy: the Procfile starts every process behind bin/start-pgbouncer.
    source = "https://example.com/my-app-v2.tgz"
    system.heroku.sources[source] = {
        "web": "bin/start-pgbouncer gunicorn app.wsgi -w 3",
        "worker": "bin/start-pgbouncer celery -A app worker -c 4",
    }
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            f"{system.heroku.url}/apps/my-app/builds",
            json={"source_blob": {"url": source, "version": "v2"}},
            headers={"Authorization": f"Bearer {API_KEY}", "Accept": PLATFORM_ACCEPT},
        )
    assert response.status_code == 201
    version = app.current_release.version
    # Behind PgBouncer each dyno holds one server connection.
    for dyno in ("web.1", "web.2", "web.3", "worker.1"):
        assert system.load.open(1, dyno) == 1
    line = await verdict(system, report, "verified:")
    assert f"after release v{version}" in line.text and "per dyno" in line.text
    (stored,) = results(redis_server, report.ts)
    assert stored["action"] == "add_pgbouncer" and int(str(stored["before"])) >= 16
    assert int(str(stored["after"])) <= 4 + 3


async def test_a_deploy_without_bin_start_pgbouncer_is_not_fixed(verifying: System) -> None:
    system = verifying
    app = system.heroku.apps["my-app"]
    await system.slack.send_slash_command("my-app watch", user_id=ADMIN, channel_id=OPS_CHANNEL)
    await system.slack.wait_for(lambda: app.webhooks or None, timeout=WAIT_S)
    report = await post_report(system)
    await click(system, report, "pgconn.add_pgbouncer")
    await result_posted(system, report, "ran *Add PgBouncer*")
    source = "https://example.com/my-app-v3.tgz"
    system.heroku.sources[source] = {
        "web": "bin/start-pgbouncer gunicorn app.wsgi -w 3",
        "worker": "celery -A app worker -c 4",  # forgotten
    }
    async with httpx.AsyncClient(timeout=10) as http:
        await http.post(
            f"{system.heroku.url}/apps/my-app/builds",
            json={"source_blob": {"url": source}},
            headers={"Authorization": f"Bearer {API_KEY}", "Accept": PLATFORM_ACCEPT},
        )
    line = await verdict(system, report, "not fixed:")
    assert "starts worker without `bin/start-pgbouncer`" in line.text
