"""What the Home tab shows without asking Heroku: the last reading of each app, in Redis.

- `pgconn:reading:{app}` — JSON of the last `Reading`: written by every report pgconn builds
  (`/pgconn APP`, `diagnose`, the Home tab's Refresh), so opening the Home tab costs Redis
  reads only. Kept a week; the Home tab says how old it is and offers Refresh when stale.
- `pgconn:home-refresh:{app}` — a claim (SET NX) held while one Refresh of the app runs
  and for a few seconds after: a double click, a second viewer or a second process
  pressing Refresh meanwhile reads Heroku once.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass

from redis.exceptions import RedisError

from bot.errors import StateUnavailable
from bot.state import Redis
from bot.state.locks import claim_once

log = logging.getLogger(__name__)

READING_TTL_S = 7 * 86400
REFRESH_CLAIM_S = 30


@dataclass(frozen=True)
class Reading:
    """The numbers of one report of an app, when it was built."""

    app: str
    at: float
    database: str  # the add-on (postgresql-…): where the drain's samples and incidents are kept
    used: int | None
    limit: int | None
    verdict: str | None  # "fits" / "tight" / "over", None when the budget could not be computed
    budget_line: str  # the report's one-line verdict ("Budget: *14* of 20 connections — fits …")
    notes: tuple[str, ...] = ()  # what that report could not read


def reading_key(app: str) -> str:
    return f"pgconn:reading:{app}"


def _unreachable(exc: BaseException) -> StateUnavailable:
    log.warning("redis unavailable: %s", type(exc).__name__)
    return StateUnavailable("pgconn's state store (Redis) is unreachable")


def _parse(app: str, raw: str | None) -> Reading | None:
    if not raw:
        return None
    try:
        data = json.loads(raw)
        return Reading(
            app=app,
            at=float(data["at"]),
            database=str(data.get("database") or ""),
            used=None if data.get("used") is None else int(data["used"]),
            limit=None if data.get("limit") is None else int(data["limit"]),
            verdict=data.get("verdict") if data.get("verdict") in ("fits", "tight", "over") else None,
            budget_line=str(data.get("budget_line") or ""),
            notes=tuple(str(n) for n in data.get("notes") or ()),
        )
    except (ValueError, KeyError, TypeError):
        log.warning("reading of %s is not what pgconn stores; ignored", app)
        return None


class ReadingStore:
    def __init__(self, redis: Redis | None) -> None:
        self._redis = redis

    def _r(self) -> Redis:
        if self._redis is None:
            raise StateUnavailable("REDIS_URL is not set, so pgconn keeps no readings")
        return self._redis

    async def save(self, reading: Reading) -> None:
        data = asdict(reading)
        data["notes"] = list(reading.notes)
        try:
            await self._r().set(reading_key(reading.app), json.dumps(data), ex=READING_TTL_S)
        except (RedisError, OSError) as exc:
            raise _unreachable(exc) from None

    async def load_many(self, apps: list[str]) -> dict[str, Reading | None]:
        """The last reading of each app (None: never read, or kept no longer), in one round trip."""
        if not apps:
            return {}
        try:
            raws = await self._r().mget([reading_key(a) for a in apps])
        except (RedisError, OSError) as exc:
            raise _unreachable(exc) from None
        pairs = zip(apps, raws, strict=True)
        return {app: _parse(app, None if raw is None else str(raw)) for app, raw in pairs}

    async def claim_refresh(self, app: str, user: str) -> str | None:
        """None when this caller may refresh `app` now; else who holds the refresh (a user id)."""
        redis = self._r()
        key = f"pgconn:home-refresh:{app}"
        try:
            if await claim_once(redis, key, user, REFRESH_CLAIM_S):
                return None
            holder = await redis.get(key)
        except (RedisError, OSError) as exc:
            raise _unreachable(exc) from None
        return str(holder or "someone")

    async def release_refresh(self, app: str) -> None:
        """The refresh is done: the next one may run (best effort; the claim expires anyway)."""
        if self._redis is None:
            return
        try:
            await self._redis.delete(f"pgconn:home-refresh:{app}")
        except (RedisError, OSError):
            log.warning("the Home refresh claim of %s stays until it expires (%ds)", app, REFRESH_CLAIM_S)
