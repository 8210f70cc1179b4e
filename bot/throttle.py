"""Throttling: how much one person, one app and everyone together may make pgconn do.

Every `/pgconn` command costs Slack and Heroku calls, and a report about 4 Heroku API calls of
an account-wide pool of 4,500 that refills at 75 a minute. A member (or a bot) repeating a
command once a second would drain it within the hour, and then the real Kill all fails during
the real incident. So:

- per person: at most PGCONN_USER_RATE commands a minute;
- per app: at most PGCONN_APP_RATE Heroku-reading commands (report, budget, diagnose) a minute,
  from everyone together;
- per process: at most PGCONN_MAX_IN_FLIGHT commands worked on at once (button clicks are
  counted but never refused: they are the fixes);
- Heroku's own count: when `RateLimit-Remaining` drops below PGCONN_HEROKU_RESERVE, reads are
  refused and the buttons keep the rest.

Counts are kept in Redis per minute, so every process shares them; with Redis unreachable they
are not kept (reads are not worth refusing for that), and the in-flight bound still holds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from redis.exceptions import RedisError

from bot import ratelimit
from bot.state import Redis

log = logging.getLogger(__name__)

# The verbs that read Heroku (each about 4 API calls).
HEROKU_READS = frozenset({"report", "budget", "diagnose"})
WINDOW_S = 60


class HerokuBudget:
    """The account's rate-limit tokens: what Heroku last reported (`RateLimit-Remaining`), plus
    the refill since (about 75 a minute, up to 4,500). The refill matters: while reads are
    refused no call reports a newer count, and a count that never rose would refuse them forever."""

    CAPACITY = ratelimit.CAPACITY  # the same pool bot.ratelimit paces each request against
    REFILL_PER_S = ratelimit.REFILL_PER_S

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._seen: tuple[int, float] | None = None

    def observe(self, header: str | None) -> None:
        if header and header.isdigit() and len(header) < 10:
            self._seen = (int(header), self._clock())

    @property
    def remaining(self) -> int | None:
        if self._seen is None:
            return None
        count, at = self._seen
        return min(self.CAPACITY, int(count + (self._clock() - at) * self.REFILL_PER_S))


class Throttle:
    def __init__(
        self,
        redis: Redis | None,
        budget: HerokuBudget,
        *,
        user_rate: int,
        app_rate: int,
        max_in_flight: int,
        heroku_reserve: int,
    ) -> None:
        self._redis = redis
        self.budget = budget
        self.user_rate = user_rate
        self.app_rate = app_rate
        self.max_in_flight = max_in_flight
        self.heroku_reserve = heroku_reserve
        self.in_flight = 0

    async def _count(self, key: str) -> int | None:
        """This minute's count for `key`, after adding one; None when Redis cannot say."""
        if self._redis is None:
            return None
        window = int(time.time() // WINDOW_S)
        name = f"pgconn:rate:{key}:{window}"
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(name)
                pipe.expire(name, WINDOW_S * 2)
                count, _ = await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("throttle: count not kept (%s)", type(exc).__name__)
            return None
        return int(count)

    async def refusal(self, user: str, verb: str, app: str | None) -> str | None:
        """Why this command must not run now (a sentence for the person), or None."""
        if verb == "help":
            return None
        count = await self._count(f"user:{user}")
        if count is not None and count > self.user_rate:
            log.warning("throttled %s: %d commands this minute", user, count)
            return (
                f":hourglass: You have run more than {self.user_rate} `/pgconn` commands in the last minute. "
                "Nothing was done; try again in a minute."
            )
        if verb not in HEROKU_READS or app is None:
            return None
        remaining = self.budget.remaining
        if remaining is not None and remaining < self.heroku_reserve:
            log.warning("throttled %s %s: Heroku reports %d API calls left", verb, app, remaining)
            return (
                f":hourglass: Heroku's API allowance for pgconn's key is down to {remaining} calls; pgconn "
                f"keeps the last {self.heroku_reserve} for fixes, so reports are paused until it refills "
                "(75 a minute). The buttons on earlier reports still work."
            )
        count = await self._count(f"app:{app}")
        if count is not None and count > self.app_rate:
            log.warning("throttled %s %s: %d reads of the app this minute", verb, app, count)
            return (
                f":hourglass: `{app}` has been read more than {self.app_rate} times in the last minute "
                "(each costs Heroku API calls). Nothing was done; the latest report above is still current, "
                "or try again in a minute."
            )
        return None

    def enter(self, *, bounded: bool) -> bool:
        """Count one more piece of work; False (nothing counted) when a bounded one must wait."""
        if bounded and self.in_flight >= self.max_in_flight:
            return False
        self.in_flight += 1
        return True

    def leave(self) -> None:
        self.in_flight -= 1
