"""Recent heroku-postgres connection samples per app and database, for the alert's sparkline.

`pgconn:metrics:{app}:{db}` is a sorted set scored by the time pgconn received the
sample (not the line's own timestamp: a drain may replay old lines, and the window
must follow this clock). Members are `{time}|{active}|{waiting}`, unique per sample.
Each write also trims the window and refreshes the TTL, in one pipeline, so the set
never grows past WINDOW_S of samples however long a database keeps reporting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from redis.exceptions import RedisError

from bot.state import Redis, unavailable

WINDOW_S = 30 * 60


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    active: int
    waiting: int | None = None


def metrics_key(app: str, database: str) -> str:
    return f"pgconn:metrics:{app}:{database}"


def _member(sample: Sample) -> str:
    waiting = "" if sample.waiting is None else str(sample.waiting)
    return f"{sample.at:.6f}|{sample.active}|{waiting}"


def _parse(member: str) -> Sample | None:
    at, _, rest = member.partition("|")
    active, _, waiting = rest.partition("|")
    try:
        return Sample(float(at), int(active), int(waiting) if waiting else None)
    except ValueError:
        return None


class MetricStore:
    def __init__(self, redis: Redis, window_s: float = WINDOW_S) -> None:
        self._redis = redis
        self._window_s = window_s

    async def add(self, batches: Mapping[tuple[str, str], Sequence[Sample]], now: float) -> None:
        """Store samples of several (app, database) pairs in one round trip."""
        if not batches:
            return
        pipe = self._redis.pipeline(transaction=False)
        for (app, database), samples in batches.items():
            if not samples:
                continue
            key = metrics_key(app, database)
            pipe.zadd(key, {_member(s): s.at for s in samples})
            pipe.zremrangebyscore(key, "-inf", now - self._window_s)
            pipe.expire(key, int(self._window_s) + 60)
        try:
            await pipe.execute()
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None

    async def recent(self, app: str, database: str, now: float) -> list[Sample]:
        """Samples of the last window, oldest first."""
        try:
            key = metrics_key(app, database)
            members = await self._redis.zrangebyscore(key, now - self._window_s, "+inf")
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None
        out = [s for s in (_parse(str(m)) for m in members) if s is not None]
        return out
