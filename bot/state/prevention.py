"""What pgconn remembers between webhook deliveries, per app, in Redis.

- `pgconn:budget-watch:{app}`: the last budget snapshot and the open warning thread (JSON).
- `pgconn:webhook-delivery:{app}:{id}`: a delivery already taken (SET NX), so a replayed
  or retried delivery does nothing.
- `pgconn:budget-watch-lock:{app}`: one evaluation per app at a time across processes,
  so two deliveries arriving together cannot both open a warning thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator

from redis.exceptions import RedisError

from bot.errors import StateUnavailable
from bot.prevention.decisions import BudgetSnapshot, OpenWarning, WatchState
from bot.state import Redis
from bot.state.locks import claim_once, release_lock, take_lock

log = logging.getLogger(__name__)

# Heroku retries a "sync" delivery for up to 72 hours; a replay after that is a new change anyway.
DELIVERY_TTL_S = 3 * 24 * 3600
LOCK_TTL_S = 60
LOCK_WAIT_S = 30.0

def state_key(app: str) -> str:
    return f"pgconn:budget-watch:{app}"


# A delivery's claim: "running" while one process evaluates it, then "done" for Heroku's 72 h.
RUNNING = "running"
DONE = "done"
RUNNING_TTL_S = 120


def delivery_key(app: str, delivery_id: str) -> str:
    return f"pgconn:webhook-delivery:{app}:{delivery_id}"


def _unreachable(exc: BaseException) -> StateUnavailable:
    log.warning("redis unavailable: %s", type(exc).__name__)
    return StateUnavailable(
        "pgconn's state store (Redis) is unreachable, so it cannot tell whether this change was "
        "already handled"
    )


class BudgetWatchStore:
    def __init__(self, redis: Redis | None) -> None:
        self._redis = redis

    def _r(self) -> Redis:
        if self._redis is None:
            raise StateUnavailable("REDIS_URL is not set, so pgconn cannot remember an app's budget")
        return self._redis

    async def claim_delivery(self, app: str, delivery_id: str) -> bool:
        """True the first time a delivery id is seen; False for a replay or a retry.

        The claim says "running" for RUNNING_TTL_S only: a process that dies while evaluating
        (a dyno restart) leaves nothing that would turn Heroku's retries away for 72 hours."""
        try:
            return await claim_once(self._r(), delivery_key(app, delivery_id), RUNNING, RUNNING_TTL_S)
        except (RedisError, OSError) as exc:
            raise _unreachable(exc) from None

    async def finish_delivery(self, app: str, delivery_id: str) -> None:
        """The delivery was evaluated: its replays and retries are answered "already handled"."""
        try:
            await self._r().set(delivery_key(app, delivery_id), DONE, ex=DELIVERY_TTL_S)
        except (RedisError, OSError) as exc:
            raise _unreachable(exc) from None

    async def delivery_done(self, app: str, delivery_id: str) -> bool:
        """True when the delivery was evaluated; False while it still runs (or was freed)."""
        try:
            value = await self._r().get(delivery_key(app, delivery_id))
        except (RedisError, OSError) as exc:
            raise _unreachable(exc) from None
        return value is not None and str(value) != RUNNING

    async def release_delivery(self, app: str, delivery_id: str) -> None:
        """Forget a delivery whose handling failed, so Heroku's retry of it is handled."""
        with contextlib.suppress(RedisError, OSError, StateUnavailable):
            await self._r().delete(delivery_key(app, delivery_id))

    async def load(self, app: str) -> WatchState:
        try:
            raw = await self._r().get(state_key(app))
        except (RedisError, OSError) as exc:
            raise _unreachable(exc) from None
        if not raw:
            return WatchState()
        try:
            data = json.loads(raw)
        except ValueError:
            log.warning("budget watch %s: stored state is not JSON; starting afresh", app)
            return WatchState()
        if not isinstance(data, dict):
            return WatchState()
        return WatchState(
            snapshot=BudgetSnapshot.from_json(data.get("snapshot")),
            warning=OpenWarning.from_json(data.get("warning")),
        )

    async def save(self, app: str, state: WatchState) -> None:
        data = {
            "snapshot": state.snapshot.to_json() if state.snapshot else None,
            "warning": state.warning.to_json() if state.warning else None,
        }
        try:
            await self._r().set(state_key(app), json.dumps(data))
        except (RedisError, OSError) as exc:
            raise _unreachable(exc) from None

    async def forget(self, app: str) -> None:
        try:
            await self._r().delete(state_key(app))
        except (RedisError, OSError) as exc:
            raise _unreachable(exc) from None

    @contextlib.asynccontextmanager
    async def lock(self, app: str) -> AsyncIterator[None]:
        """Hold the app's evaluation lock; waits for another process's evaluation to end."""
        redis = self._r()
        key = f"pgconn:budget-watch-lock:{app}"
        deadline = time.monotonic() + LOCK_WAIT_S
        try:
            while (token := await take_lock(redis, key, LOCK_TTL_S)) is None:
                if time.monotonic() > deadline:
                    raise StateUnavailable(f"another pgconn process has been evaluating {app} for too long")
                await asyncio.sleep(0.05)
        except (RedisError, OSError) as exc:
            raise _unreachable(exc) from None
        try:
            yield
        finally:
            await release_lock(redis, key, token)
