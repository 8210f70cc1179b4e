"""The shared Redis primitives on a real Redis: one holder per lock, only the holder frees it,
exactly one claimer per key — across two clients, as two bot processes would be."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from bot.state import Redis, connect_redis
from bot.state.locks import claim_once, release_lock, take_lock
from sandbox.servers import LocalRedis


@pytest.fixture
async def two(redis_server: LocalRedis) -> AsyncIterator[tuple[Redis, Redis]]:
    a, b = connect_redis(redis_server.url), connect_redis(redis_server.url)
    yield a, b
    await a.aclose()
    await b.aclose()


def key() -> str:
    return f"pgconn:test-lock:{uuid.uuid4().hex}"


async def test_a_held_lock_is_refused_to_another_process_until_its_holder_frees_it(
    two: tuple[Redis, Redis],
) -> None:
    a, b = two
    k = key()
    token = await take_lock(a, k, 60)
    assert token is not None
    assert await take_lock(b, k, 60) is None
    await release_lock(a, k, token)
    assert await take_lock(b, k, 60) is not None


async def test_a_stale_token_does_not_free_the_lock_another_process_took_since(
    two: tuple[Redis, Redis],
) -> None:
    a, b = two
    k = key()
    stale = await take_lock(a, k, 60)
    assert stale is not None
    await a.delete(k)  # as if it had expired while its holder was frozen
    fresh = await take_lock(b, k, 60)
    assert fresh is not None
    await release_lock(a, k, stale)
    assert await b.get(k) == fresh
    assert await take_lock(a, k, 60) is None


async def test_release_never_raises_when_redis_is_gone() -> None:
    client = connect_redis("redis://127.0.0.1:1/0")  # nothing listens there
    try:
        await release_lock(client, key(), "token")  # the lock expires by itself
    finally:
        await client.aclose()


async def test_exactly_one_of_many_concurrent_claimers_wins(two: tuple[Redis, Redis]) -> None:
    a, b = two
    k = key()
    won = await asyncio.gather(*(claim_once(c, k, str(i), 60) for i in range(10) for c in (a, b)))
    assert won.count(True) == 1
    assert await a.ttl(k) > 0
