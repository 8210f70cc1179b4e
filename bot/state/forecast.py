"""Forecast state per app and database in Redis: armed or warned (bot.forecast.trend's
ForecastState), the last trend for the App Home, and a per-app lease so that one process at a
time counts and evaluates (a count costs a query on the reserved connection)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from redis.exceptions import RedisError

from bot.forecast.trend import ForecastState, Trend
from bot.state import Redis, unavailable

STATE_TTL_S = 86400


def state_key(app: str, database: str) -> str:
    return f"pgconn:forecast:{app}:{database}"


def lease_key(app: str) -> str:
    return f"pgconn:forecast-lease:{app}"


class ForecastStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def lease(self, app: str, owner: str, ttl_s: float) -> bool:
        """True for the one process that evaluates the app's forecast for the next `ttl_s`."""
        try:
            return bool(await self._redis.set(lease_key(app), owner, nx=True, px=max(1, int(ttl_s * 1000))))
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None

    async def load(self, app: str, database: str) -> ForecastState:
        try:
            raw = await self._redis.get(state_key(app, database))
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None
        if not raw:
            return ForecastState()
        try:
            data: dict[str, Any] = json.loads(raw)["state"]
            return ForecastState(**{k: v for k, v in data.items() if k in ForecastState.__dataclass_fields__})
        except (ValueError, TypeError, KeyError):
            return ForecastState()

    async def save(
        self, app: str, database: str, state: ForecastState, trend: Trend, limit: int | None
    ) -> None:
        body = {"state": asdict(state), "trend": asdict(trend), "limit": limit}
        try:
            await self._redis.set(state_key(app, database), json.dumps(body), ex=STATE_TTL_S)
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None

    async def last(self, app: str, database: str) -> dict[str, Any] | None:
        """The last evaluation (state, trend, limit) as stored: for the App Home."""
        try:
            raw = await self._redis.get(state_key(app, database))
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None
        return json.loads(raw) if raw else None
