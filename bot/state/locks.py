"""The Redis primitives every feature's state is built on: a token lock and a claim-once key.

- A **token lock** (`take_lock` / `release_lock`): `SET key token NX EX ttl`, freed only by the
  holder of the token, so a holder whose lock expired (a frozen process) cannot free the lock
  another process took since. Used for the per-app action lock (state/remediation.py) and the
  per-app budget evaluation lock (state/prevention.py).
- A **claim** (`claim_once`): `SET key value NX EX ttl`; exactly one of any number of callers,
  in any number of processes, gets True.

Callers map Redis errors to their own sentence (each feature says what cannot be done);
release is best effort because every lock expires by itself.
"""

from __future__ import annotations

import contextlib
import secrets

from redis.exceptions import RedisError

from bot.state import Redis

# Compare-and-delete in one step (Redis runs a script atomically): the pattern of the
# "Distributed Locks with Redis" page (redis.io/docs/latest/develop/use/patterns/distributed-locks/).
_RELEASE_IF_HELD = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


async def claim_once(redis: Redis, key: str, value: str, ttl_s: int) -> bool:
    """True for the one caller that sets `key`; False when it was already set. Raises RedisError."""
    return bool(await redis.set(key, value, nx=True, ex=ttl_s))


async def take_lock(redis: Redis, key: str, ttl_s: int) -> str | None:
    """The lock's token when it was free (now ours for ttl_s), else None. Raises RedisError."""
    token = secrets.token_hex(8)
    return token if await redis.set(key, token, nx=True, ex=ttl_s) else None


async def release_lock(redis: Redis, key: str, token: str) -> None:
    """Free the lock if `token` still holds it; never raises (the lock expires by itself)."""
    with contextlib.suppress(RedisError, OSError):
        await redis.eval(_RELEASE_IF_HELD, 1, key, token)
