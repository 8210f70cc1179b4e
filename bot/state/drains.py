"""Which drain nonce of each app is current (bot.drain_auth), shared by every bot process.

`pgconn:drain-nonce:{app}` is a hash: `current`, and `previous` with `previous_until`, so the
frames logplex already sent with the old URL during a rotation are still taken for a minute.
An app never rotated has no hash: any credential pgconn made for it is taken. When Redis is
unreachable the check falls back to the credential alone (it still proves the master secret):
dropping the drain's lines then would lose the alerts they carry.
"""

from __future__ import annotations

import logging
import time

from redis.exceptions import RedisError

from bot.drain_auth import new_nonce
from bot.errors import StateUnavailable
from bot.state import Redis, unavailable

log = logging.getLogger(__name__)

# How long the URL a rotation replaced is still accepted (frames in flight, logplex retries).
ROTATION_GRACE_S = 60.0


def nonce_key(app: str) -> str:
    return f"pgconn:drain-nonce:{app}"


class DrainNonces:
    def __init__(self, redis: Redis | None) -> None:
        self._redis = redis
        # The current nonce per app as last read: the common case (logplex posting with the
        # current URL) is answered without a Redis round trip.
        self._current: dict[str, str] = {}

    async def rotate(self, app: str) -> str:
        """A new current nonce for `app`; the old one stays valid for ROTATION_GRACE_S."""
        nonce = new_nonce()
        if self._redis is None:
            raise StateUnavailable("REDIS_URL is not set, so pgconn cannot rotate drain passwords")
        try:
            old = await self._redis.hget(nonce_key(app), "current")
            previous, until = str(old or ""), str(time.time() + ROTATION_GRACE_S)
            await self._redis.hset(
                nonce_key(app), mapping={"current": nonce, "previous": previous, "previous_until": until}
            )
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None
        self._current[app] = nonce
        return nonce

    async def revoke(self, app: str) -> None:
        """No URL handed out so far is accepted any more (after `unwatch`)."""
        if self._redis is None:
            return
        try:
            await self._redis.hset(
                nonce_key(app), mapping={"current": new_nonce(), "previous": "", "previous_until": "0"}
            )
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None
        self._current.pop(app, None)

    async def accepts(self, app: str, nonce: str) -> bool:
        """Whether a drain credential with `nonce` (already verified against the master) is current."""
        if self._current.get(app) == nonce:
            return True
        if self._redis is None:
            return True
        try:
            stored = await self._redis.hgetall(nonce_key(app))
        except (RedisError, OSError) as exc:
            log.warning("drain %s: nonce not checked, Redis unavailable (%s)", app, type(exc).__name__)
            return True
        if not stored:
            return True
        current = str(stored.get("current") or "")
        self._current[app] = current
        if nonce == current:
            return True
        previous, until = str(stored.get("previous") or ""), float(stored.get("previous_until") or 0)
        return bool(previous) and nonce == previous and time.time() < until
