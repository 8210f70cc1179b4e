"""The post-mortem's state on a real Redis: holder samples bounded, one writer, the latest kept."""

from __future__ import annotations

import asyncio
import uuid

from bot.postmortem.chart import HolderSample
from bot.postmortem.summary import BudgetFigure, Start
from bot.state import Redis, connect_redis
from bot.state.postmortems import KEEP, MAX_SAMPLES, PostmortemStore
from sandbox.servers import LocalRedis

T0 = 1_700_000_000.0


def fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def test_holder_samples_are_bounded_and_keep_the_first(redis: Redis) -> None:
    store, incident = PostmortemStore(redis), fresh("incident")
    for k in range(MAX_SAMPLES + 40):
        await store.add_holders(incident, HolderSample(T0 + k, {"web.1": k % 7, "worker.1": 2}))
    samples = await store.holders(incident)
    # The last MAX_SAMPLES, plus the very first (the incident's start), oldest first.
    assert len(samples) == MAX_SAMPLES + 1
    assert samples[0].at == T0 and samples[1].at == T0 + 40 and samples[-1].at == T0 + MAX_SAMPLES + 39
    assert samples[5].counts == {"web.1": 44 % 7, "worker.1": 2}  # the sample at T0 + 44
    assert await redis.llen(f"pgconn:holders:{incident}") == MAX_SAMPLES
    assert 0 < await redis.ttl(f"pgconn:holders:{incident}") <= 7 * 86400


async def test_one_writer_per_incident_across_processes(redis_server: LocalRedis, redis: Redis) -> None:
    incident = fresh("incident")
    clients = [connect_redis(redis_server.url) for _ in range(4)]
    try:
        won = await asyncio.gather(*(PostmortemStore(c).claim(incident) for c in clients for _ in range(5)))
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    assert won.count(True) == 1
    # Given back when it could not be written, so a retried resolution may write it.
    await PostmortemStore(redis).release(incident)
    assert await PostmortemStore(redis).claim(incident)


async def test_the_first_report_is_kept_and_the_latest_postmortems_by_count(redis: Redis) -> None:
    store, app, incident = PostmortemStore(redis), fresh("app"), fresh("incident")
    assert await store.start(incident) == Start()
    first = Start(cause="web.1 holds 13", cause_check="leak", budget=BudgetFigure(16, 20, "fits"))
    await store.note_start(incident, first)
    await store.note_start(incident, Start(cause="later"))
    assert await store.start(incident) == first
    assert await store.latest(app) is None
    for n in range(KEEP + 3):
        await store.save(app, f"i{n}", {"n": n})
    assert await store.latest(app) == {"n": KEEP + 2}
    assert await redis.llen(f"pgconn:postmortems:{app}") == KEEP
    # The ones pushed out are deleted, not left behind.
    assert await redis.exists(f"pgconn:postmortem:{app}:i0", f"pgconn:postmortem:{app}:i2") == 0
    assert await redis.exists(f"pgconn:postmortem:{app}:i3") == 1
