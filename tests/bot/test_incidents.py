"""Incident and metric state on a real Redis: compare-and-set, one winner, the window."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from bot.alerts import AlertEngine, AlertPolicy, Decision, Observation
from bot.config import Settings
from bot.detect import Severity
from bot.state import Redis, connect_redis
from bot.state.incidents import ACTIVE_SET, Incident, IncidentStore
from bot.state.metrics import WINDOW_S, MetricStore, Sample
from sandbox.servers import LocalRedis

T = AlertPolicy(resolve_after_s=300, update_interval_s=5, reply_interval_s=60, post_timeout_s=120)
T0 = 1_700_000_000.0


@pytest.fixture
async def other_redis(redis_server: LocalRedis) -> AsyncIterator[Redis]:
    """A second, independent client: what another bot process would have."""
    client = connect_redis(redis_server.url)
    yield client
    await client.aclose()


def fresh_app() -> str:
    return "app-" + uuid.uuid4().hex[:10]


class RecordingEngine(AlertEngine):
    """The real engine's step (load → decide → compare-and-set, again on a lost race), with
    its Slack effect recorded instead of posted: these tests are about the Redis race."""

    def __init__(self, store: IncidentStore, token: str) -> None:
        settings = Settings(
            slack_bot_token="x", slack_signing_secret="x", heroku_api_key="x", apps=("a",),
            alert_channel="C0ALERTS",
        )
        none: Any = None
        super().__init__(
            settings, heroku=none, inspector=none, slack=none, incidents=store, metrics=none, thresholds=T
        )
        self.token = token  # one poster per task: what many processes would be
        self.acted: list[tuple[Incident, Decision]] = []

    async def _act(self, incident: Incident, d: Decision, *, before: Incident | None) -> None:
        self.acted.append((incident, d))


async def process_signals(
    store: IncidentStore, app: str, db: str, obs: Observation, token: str, times: int, t0: float
) -> list[tuple[Incident, Decision]]:
    """One bot process taking `times` batches of one app: AlertEngine._step after _step, as its
    per-app worker does (never two steps of one app at once in a process)."""
    engine = RecordingEngine(store, token)
    for i in range(times):
        await engine._step(app, db, obs, t0 + i * 0.001)
    return engine.acted


async def test_commit_is_compare_and_set(redis: Redis) -> None:
    store = IncidentStore(redis)
    app, db = fresh_app(), "postgresql-a"
    assert await store.load(app, db) is None
    first = Incident(app=app, database=db, id="i1", opened_at=T0, signals=1)
    stored = await store.commit(None, first)
    assert stored is not None and stored.version == 1
    assert await store.load(app, db) == stored
    # Someone who read "nothing there" earlier loses.
    assert await store.commit(None, replace(first, signals=99)) is None
    # Someone who read version 1 wins once; a second writer from version 1 loses.
    v2 = await store.commit(stored, replace(stored, signals=2))
    assert v2 is not None and v2.version == 2
    assert await store.commit(stored, replace(stored, signals=3)) is None
    assert (await store.load(app, db)) == v2
    ttl = await redis.ttl(f"pgconn:incident:{app}:{db}")
    assert 0 < ttl <= 7 * 86400


async def test_active_set_follows_what_still_needs_work(redis: Redis) -> None:
    store = IncidentStore(redis)
    app, db = fresh_app(), "postgresql-b"
    open_ = await store.commit(None, Incident(app=app, database=db, id="i1"))
    assert open_ is not None and (app, db) in await store.active()
    done = replace(open_, status="resolved", ts="1.1", told_resolved=True)
    stored = await store.commit(open_, done)
    assert stored is not None and (app, db) not in await store.active()
    stale = await store.commit(stored, replace(stored, dirty=True))
    assert stale is not None and (app, db) in await store.active()
    assert await redis.sismember(ACTIVE_SET, f"{app}|{db}")


# Processes of one deployment racing for one app's incident, each taking 15 batches in turn.
PROCESSES = 4
BATCHES = 15


async def test_many_concurrent_first_signals_open_one_incident(redis: Redis) -> None:
    store = IncidentStore(redis)
    app, db = fresh_app(), "postgresql-c"
    obs = Observation(fatal=1, excerpt="FATAL: too many connections", limit=20)
    acted = await asyncio.gather(
        *(process_signals(store, app, db, obs, f"proc-{p}", BATCHES, T0) for p in range(PROCESSES))
    )
    winners = [incident for steps in acted for incident, d in steps if d.post]
    assert len(winners) == 1
    final = await store.load(app, db)
    assert final is not None
    assert final.signals == final.fatal == PROCESSES * BATCHES  # every signal counted exactly once
    assert final.poster == winners[0].poster and final.id == winners[0].id
    assert final.version == PROCESSES * BATCHES


async def test_two_redis_clients_racing_open_one_incident(redis: Redis, other_redis: Redis) -> None:
    stores = [IncidentStore(redis), IncidentStore(other_redis)]
    app, db = fresh_app(), "postgresql-d"
    obs = Observation(readings=(19,), limit=20)
    acted = await asyncio.gather(
        *(process_signals(stores[p % 2], app, db, obs, f"proc-{p}", BATCHES, T0) for p in range(PROCESSES))
    )
    assert sum(d.post for steps in acted for _, d in steps) == 1
    final = await stores[1].load(app, db)
    assert final is not None and final.signals == PROCESSES * BATCHES
    assert final.severity is Severity.CRITICAL


async def test_lease_and_mention_claims_are_exclusive(redis: Redis, other_redis: Redis) -> None:
    a, b = IncidentStore(redis), IncidentStore(other_redis)
    app = fresh_app()
    results = await asyncio.gather(*(s.lease(app, "db", f"o{i}", 5) for i, s in enumerate([a, b] * 10)))
    assert sum(results) == 1
    channel, ts = "C0OPS", f"{T0}.{uuid.uuid4().int % 10**6:06d}"
    claims = await asyncio.gather(*(s.claim_mention(channel, ts) for s in [a, b] * 10))
    assert sum(claims) == 1
    await a.release_mention(channel, ts)
    assert await b.claim_mention(channel, ts)


async def test_report_blocks_are_kept_with_the_incident(redis: Redis) -> None:
    store = IncidentStore(redis)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Connections:* 20/20 ✓"}}]
    await store.save_report("i-" + uuid.uuid4().hex, blocks)
    assert await store.report("missing") == []
    iid = "i-" + uuid.uuid4().hex
    await store.save_report(iid, blocks)
    assert await store.report(iid) == blocks


async def test_metric_window_keeps_recent_samples_in_order(redis: Redis) -> None:
    metrics = MetricStore(redis)
    app, db = fresh_app(), "postgresql-e"
    old = [Sample(T0 + i, i) for i in range(5)]
    await metrics.add({(app, db): old}, now=T0 + 5)
    recent = [Sample(T0 + WINDOW_S + i, 10 + i, waiting=i) for i in range(5)]
    await metrics.add({(app, db): recent, (app, "other"): [Sample(T0 + WINDOW_S, 1)]}, now=T0 + WINDOW_S + 4)
    got = await metrics.recent(app, db, now=T0 + WINDOW_S + 4)
    # Samples older than the window were trimmed on write, and are not read either.
    assert [s.active for s in got] == [10, 11, 12, 13, 14]
    assert [s.waiting for s in got] == [0, 1, 2, 3, 4]
    assert await redis.zcard(f"pgconn:metrics:{app}:{db}") == 5
    assert [s.active for s in await metrics.recent(app, "other", now=T0 + WINDOW_S)] == [1]
    # Identical readings at distinct times are distinct samples.
    same = [Sample(T0 + WINDOW_S + 10 + i * 1e-6, 7) for i in range(3)]
    await metrics.add({(app, db): same}, now=T0 + WINDOW_S + 10)
    assert [s.active for s in await metrics.recent(app, db, now=T0 + WINDOW_S + 10)][-3:] == [7, 7, 7]
