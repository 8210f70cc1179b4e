"""Shared state in Redis: every bot process sees the same incidents, claims and audit.

Redis is optional for read-only work: when it is down, reports still answer with a
note, and anything that must run exactly once is refused (`StateUnavailable`).

This module connects; each feature's keys live in a module of its own:
- locks.py — the primitives the others use: the token lock and claim-once;
- remediation.py — button claims, the per-app action lock, the audit stream;
- incidents.py — alert incidents (compare-and-set), mention and frame claims;
- metrics.py — recent connection samples for the alert's sparkline;
- prevention.py — the budget snapshot, open warning and webhook delivery claims;
- webhooks.py — each app's webhook signing secret;
- drains.py — each app's current drain nonce;
- inflight.py — actions in flight and each process's heartbeat (finished by the next process).
"""

from __future__ import annotations

import logging
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from bot.errors import StateUnavailable

log = logging.getLogger(__name__)

Redis = aioredis.Redis


def connect_redis(url: str, max_connections: int = 8) -> Redis:
    kwargs: dict[str, Any] = {
        "decode_responses": True,
        "socket_timeout": 2.0,
        "socket_connect_timeout": 2.0,
        "health_check_interval": 30,
        "retry_on_timeout": False,
        # After Redis restarts, every pooled connection is dead: the first command on each
        # would fail. A connection error means the command did not run, so it is retried on a
        # fresh connection. A timeout is not retried: the command may have run.
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), 2, supported_errors=(RedisConnectionError,)),
    }
    if url.startswith("rediss://"):
        # Heroku Redis presents a self-signed certificate (documented by Heroku).
        kwargs["ssl_cert_reqs"] = None
    # A burst (200 clicks, a drain flood) waits for a free connection instead of failing at the
    # plain pool's cap. The cap is PGCONN_REDIS_MAX_CONNECTIONS: Heroku Key-Value Store mini allows
    # 20 clients for all of the app's dynos together.
    pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=5, **kwargs)
    # The client owns its pool: aclose() closes its connections too (the plain constructor leaves
    # them open, holding client slots of the plan until the process exits).
    return aioredis.Redis.from_pool(pool)


async def redis_ok(redis: Redis | None) -> bool:
    if redis is None:
        return False
    try:
        return bool(await redis.ping())
    except (RedisError, OSError):
        return False


# Shown under a report while Redis is down.
STATE_DOWN_NOTE = (
    "pgconn's state store (Redis) is unreachable: this report is live, but its buttons will refuse "
    "to run until Redis is back, because exactly-once cannot be guaranteed without it"
)


def required(redis: Redis | None) -> Redis:
    """The client, or StateUnavailable when pgconn runs without Redis."""
    if redis is None:
        raise unavailable(RuntimeError("no REDIS_URL"))
    return redis


def unavailable(exc: BaseException) -> StateUnavailable:
    log.warning("redis unavailable: %s", type(exc).__name__)
    return StateUnavailable(
        "pgconn's state store (Redis) is unreachable, so it cannot guarantee this runs only once"
    )
