"""In-flight records on a real Redis: a record is an orphan only when its owner's heartbeat is gone."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from bot.state import Redis, connect_redis
from bot.state.inflight import InFlight, InFlightStore, alive_key, record_key
from sandbox.servers import LocalRedis


@pytest.fixture
async def two(redis_server: LocalRedis) -> AsyncIterator[tuple[Redis, Redis]]:
    a, b = connect_redis(redis_server.url), connect_redis(redis_server.url)
    yield a, b
    await a.aclose()
    await b.aclose()


def record(owner: str) -> InFlight:
    return InFlight(
        id=uuid.uuid4().hex, action="restart", app="my-app", user="UADMIN01", channel="C1",
        message_ts=None, thread_ts=None, process_type=None, claim_key="k", lock_token="t", owner=owner,
    )


async def test_a_record_saved_after_redis_lost_the_heartbeat_is_not_taken_from_its_live_owner(
    two: tuple[Redis, Redis],
) -> None:
    a, b = two
    running, other = InFlightStore(a), InFlightStore(b)
    await running.beat()
    await a.delete(alive_key(running.owner))  # Redis lost its keys (a flush, a restart) between beats
    mine = record(running.owner)
    await running.save(mine)
    try:
        assert [r.id for r in await other.orphans() if r.id == mine.id] == []
    finally:
        await a.delete(record_key(mine.id))


async def test_the_record_of_an_owner_that_is_gone_is_taken_by_exactly_one_process(
    two: tuple[Redis, Redis],
) -> None:
    a, b = two
    dying, first, second = InFlightStore(a), InFlightStore(b), InFlightStore(b)
    mine = record(dying.owner)
    await dying.save(mine)
    await dying.gone()
    try:
        taken = [r.id for r in await first.orphans()] + [r.id for r in await second.orphans()]
        assert taken.count(mine.id) == 1
    finally:
        await a.delete(record_key(mine.id))
