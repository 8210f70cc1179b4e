"""bot.state.connect_redis against a TLS Redis shaped like Heroku Key-Value Store mini
(`rediss://`, self-signed certificate, 20 clients): the pool never opens more than its cap,
and connections whose connect or TLS handshake was cut short are neither leaked nor handed out
half set up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import redis as sync_redis

from bot.state import connect_redis
from sandbox.servers import LocalRedis


@pytest.fixture(scope="module")
def mini() -> Iterator[LocalRedis]:
    server = LocalRedis.start(tls=True, maxclients=20)
    yield server
    server.stop()


def clients(server: LocalRedis) -> int:
    probe = sync_redis.Redis.from_url(server.url, ssl_cert_reqs=None)
    try:
        return int(probe.info("clients")["connected_clients"]) - 1  # not counting the probe
    finally:
        probe.close()


async def test_two_hundred_concurrent_commands_use_at_most_the_pool_cap(mini: LocalRedis) -> None:
    client = connect_redis(mini.url, max_connections=4)
    try:
        most = 0

        async def command(i: int) -> None:
            nonlocal most
            await client.set(f"burst:{i}", i)
            most = max(most, len(client.connection_pool._in_use_connections))

        await asyncio.gather(*(command(i) for i in range(200)))
        assert most <= 4
        assert clients(mini) <= 4
        assert await client.get("burst:199") == "199"
    finally:
        await client.aclose()


async def test_connects_cut_short_mid_handshake_are_not_leaked_or_reused_half_set_up(
    mini: LocalRedis,
) -> None:
    """Commands cancelled at random moments of connecting (TCP, TLS, HELLO/SELECT), the pool
    dropped between them so every command connects anew: afterwards the pool holds nothing in
    use, the server sees no more than the cap, and every write lands in the URL's database (a
    connection handed out before its SELECT would write to database 0)."""
    url = mini.url.rsplit("/", 1)[0] + "/3"
    client = connect_redis(url, max_connections=4)
    try:
        # How long a fresh connect (TCP, TLS, HELLO, SELECT) plus one command takes here; the cuts
        # are then spread evenly over that span, so some land in each stage whatever the machine.
        spans = []
        for i in range(10):
            await client.connection_pool.disconnect()
            started = time.perf_counter()
            await client.set(f"warm:{i}", i)
            spans.append(time.perf_counter() - started)
        span = sorted(spans)[len(spans) // 2]
        cut = attempts = 0
        while attempts < 150 or (cut < 20 and attempts < 1500):  # until enough cuts really happened
            await client.connection_pool.disconnect()
            try:
                await asyncio.wait_for(
                    client.set(f"cut:{attempts}", 1), timeout=span * (attempts % 150) / 150
                )
            except TimeoutError:
                cut += 1
            attempts += 1
        assert cut >= 20, (cut, attempts)
        await asyncio.gather(*(client.set(f"after:{i}", i) for i in range(20)))
        pool = client.connection_pool
        assert pool._in_use_connections == set()
        # The server closes dropped sockets a moment later; a leaked connection would stay.
        deadline = time.monotonic() + 10
        while clients(mini) > 4:
            assert time.monotonic() < deadline, clients(mini)
            await asyncio.sleep(0.05)
        db0 = sync_redis.Redis.from_url(mini.url, ssl_cert_reqs=None)
        assert db0.keys("after:*") == [] and db0.keys("cut:*") == []
        db3 = sync_redis.Redis.from_url(url, ssl_cert_reqs=None)
        assert len(db3.keys("after:*")) == 20
    finally:
        await client.aclose()
