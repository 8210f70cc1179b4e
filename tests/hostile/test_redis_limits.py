"""pgconn against a Redis shaped like Heroku Key-Value Store `mini`, the plan app.json
provisions: TLS only (`rediss://`, a self-signed certificate) and 20 clients for the whole app.

A burst of 200 commands and clicks must not exhaust it (pgconn opens at most
PGCONN_REDIS_MAX_CONNECTIONS, default 8), and when Redis does refuse pgconn (someone else holds
every client slot), pgconn recovers by itself as soon as slots free up, and the alert signals
that arrived meanwhile are kept until Redis answers, not dropped.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import redis

from bot.state.incidents import incident_key
from sandbox.servers import LocalRedis
from tests.bot.samples import fatal_line, frame, logplex_headers
from tests.conftest import System
from tests.harness import ADMIN, ALERT_CHANNEL, OPS_CHANNEL, BotProcess
from tests.hostile.helpers import basic_auth, click, dedicated_bot, post_report, slash_body
from tests.support import blocks_text, drain_credentials

MINI_CLIENTS = 20  # Heroku Key-Value Store mini: 20 client connections
POOL = 8  # PGCONN_REDIS_MAX_CONNECTIONS' default
BURST = 200
CLICKS = 40
USERS = [f"UBURST{i:03d}" for i in range(20)]  # several people: a per-user throttle is not the subject
STATE_NOTE = "state store (Redis) is unreachable"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def mini_redis() -> Iterator[LocalRedis]:
    server = LocalRedis.start(tls=True, maxclients=MINI_CLIENTS)
    yield server
    server.stop()


@pytest.fixture
def mini_bot(system: System, mini_redis: LocalRedis) -> Iterator[BotProcess]:
    with dedicated_bot(
        system,
        redis_url=mini_redis.url,
        PGCONN_RESOLVE_AFTER="3600",
        PGCONN_ALERT_UPDATE_INTERVAL="0",
    ) as process:
        yield process


def connect(server: LocalRedis) -> redis.Redis:
    # Heroku's certificate is self-signed: pgconn accepts it, and so does this test's client.
    return redis.Redis.from_url(server.url, ssl_cert_reqs=None, socket_timeout=5, decode_responses=True)


class ClientSampler:
    """Polls Redis's INFO on one connection of its own: the most clients seen at once."""

    def __init__(self, server: LocalRedis) -> None:
        self.client = connect(server)
        self.most = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.most = max(self.most, int(self.client.info("clients")["connected_clients"]))
            time.sleep(0.01)

    def __enter__(self) -> ClientSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def health(bot: BotProcess) -> str:
    return str(httpx.get(f"{bot.url}/healthz", timeout=5).json()["redis"])


async def test_a_burst_of_commands_and_clicks_stays_within_mini_and_leaves_redis_usable(
    system: System, mini_redis: LocalRedis, mini_bot: BotProcess
) -> None:
    report = await post_report(system)
    before = len(system.slack.messages(OPS_CHANNEL))
    bodies = [slash_body(system, "my-app", user=USERS[i % len(USERS)]) for i in range(BURST - CLICKS)]
    limits = httpx.Limits(max_connections=BURST, max_keepalive_connections=BURST)
    with ClientSampler(mini_redis) as sampler:
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:

            async def send(body: bytes) -> int:
                headers = {"Content-Type": FORM, **system.slack.sign(body, int(time.time()))}
                return (await client.post(mini_bot.events_url, content=body, headers=headers)).status_code

            commands, clicks = await asyncio.gather(
                asyncio.gather(*(send(body) for body in bodies)),
                asyncio.gather(
                    *(click(system, report, "pgconn.kill_idle", user=ADMIN) for _ in range(CLICKS))
                ),
            )
        assert list(commands) + [c.status_code for c in clicks] == [200] * BURST
        await system.slack.wait_for(
            lambda: len(system.slack.messages(OPS_CHANNEL)) - before >= BURST - CLICKS + 1, timeout=120
        )
        # Every click answered: one ran (its result in the thread), the others were told so.
        await system.slack.wait_for(lambda: len(system.slack.thread(OPS_CHANNEL, report.ts)) == 1, timeout=60)
        await system.slack.wait_for(lambda: len(system.slack.ephemerals) >= CLICKS - 1, timeout=60)

    reports = [m for m in system.slack.messages(OPS_CHANNEL)[before:] if m.text.startswith("pgconn report")]
    assert len(reports) == BURST - CLICKS
    assert not [m for m in reports if STATE_NOTE in blocks_text(m.blocks)]
    assert not [e for e in system.slack.ephemerals if "state store" in str(e.get("text"))]
    assert "Kill idle" in system.slack.thread(OPS_CHANNEL, report.ts)[0].text
    # pgconn's pool, plus this test's sampler: never near mini's limit, and nobody was refused.
    print(f"\nmini burst: at most {sampler.most} Redis clients at once (pgconn's pool: {POOL})")
    assert sampler.most <= POOL + 1
    after = connect(mini_redis)
    assert after.ping()
    assert int(after.info("stats")["rejected_connections"]) == 0
    assert health(mini_bot) == "up"


def incident_signals(server: LocalRedis, system: System) -> int:
    key = incident_key("my-app", system.heroku.apps["my-app"].addon.name)
    return int(connect(server).hget(key, "signals") or 0)


class SlotHog:
    """Another client of the same Redis taking every free slot (a second app on the plan, a
    leaking worker): from then on Redis refuses pgconn's new connections."""

    def __init__(self, server: LocalRedis) -> None:
        self.server = server
        self.held: list[redis.Redis] = []

    def take_every_slot(self, spare_pgconn: bool = False) -> None:
        admin = connect(self.server)
        self.held.append(admin)
        mine = {int(admin.client_id())}
        while True:
            client = connect(self.server)
            try:
                mine.add(int(client.client_id()))
            except redis.ConnectionError:
                break  # "max number of clients reached": full
            self.held.append(client)
        if not spare_pgconn:
            # pgconn's idle pooled connections go too (as after a Redis restart or failover);
            # every slot they free is taken at once.
            for entry in admin.client_list():
                if int(entry["id"]) not in mine:
                    admin.client_kill_filter(_id=entry["id"])
            self.take_every_slot(spare_pgconn=True)

    def release(self) -> None:
        for client in self.held:
            client.close()
        self.held = []


async def test_when_redis_refuses_pgconn_it_keeps_the_signals_and_recovers_by_itself(
    system: System, mini_redis: LocalRedis, mini_bot: BotProcess
) -> None:
    auth = basic_auth(*drain_credentials("my-app"))
    hog = SlotHog(mini_redis)
    hog.take_every_slot()
    try:
        async with httpx.AsyncClient(timeout=15) as client:
            for i in range(3):
                headers = {**logplex_headers(2, frame_id=f"REFUSED{i:026d}"), "Authorization": auth}
                body = frame([fatal_line()] * 2)
                response = await client.post(
                    f"{mini_bot.url}/drains/heroku/my-app", content=body, headers=headers
                )
                assert response.status_code == 204
        # Redis refuses pgconn for longer than the alert engine's retries used to last (5 × 1 s).
        deadline = time.monotonic() + 30
        while mini_bot.logs().count("alerts for my-app delayed") < 7 and "dropped" not in mini_bot.logs():
            assert time.monotonic() < deadline, mini_bot.logs()[-3000:]
            await asyncio.sleep(0.1)
        assert "dropped" not in mini_bot.logs()
        report = await post_report(system)
        assert STATE_NOTE in blocks_text(report.blocks)  # reads still answer, with the note
        assert health(mini_bot) == "down"
    finally:
        hog.release()

    # Slots free again: pgconn needs no restart, and no signal was lost.
    await system.slack.wait_for(lambda: incident_signals(mini_redis, system) == 6, timeout=30)
    parent = await system.slack.wait_for(
        lambda: next((m for m in system.slack.messages(ALERT_CHANNEL) if m.blocks), None), timeout=20
    )
    await system.slack.wait_for(
        lambda: "6 signals" in blocks_text(system.slack.messages(ALERT_CHANNEL)[0].blocks)
    )
    assert "dropped" not in mini_bot.logs()
    assert health(mini_bot) == "up"
    report = await post_report(system)
    assert STATE_NOTE not in blocks_text(report.blocks)
    assert [m.ts for m in system.slack.top_level(ALERT_CHANNEL)] == [parent.ts]
