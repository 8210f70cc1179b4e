"""Heroku's Platform API rate limit, as pgconn paces itself against it. Pure: a clock is passed in.

Heroku gives each account a pool of 4,500 tokens refilled at about 75 a minute; every request
takes one and an empty pool answers 429 (id `rate_limit`). Every answer carries
`RateLimit-Remaining`; no `Retry-After` is documented, so the wait has to be worked out from the
refill rate (Dev Center "Platform API Reference", Rate Limits; ../shared/contracts/README.md).

pgconn keeps the last `RateLimit-Remaining` it saw, adds the refill since, and takes one token
locally for every request it sends (several requests run at once). From that estimate:
- plenty left: send;
- fewer than PACE_BELOW: wait for one token's refill before each request, so the pool stops
  draining instead of running dry in the middle of an incident;
- none left: a request would be refused, so it is not sent; the caller is told how long until
  the tokens it needs are back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

CAPACITY = 4500
REFILL_PER_S = 75 / 60
PACE_BELOW = 50  # tokens: below this, spend no faster than Heroku refills


@dataclass
class TokenEstimate:
    remaining: float | None = None  # None: no answer seen yet (then nothing is held back)
    at: float = 0.0
    next_slot: float = 0.0  # while pacing: when the next request may go

    def level(self, now: float) -> float | None:
        if self.remaining is None:
            return None
        return min(float(CAPACITY), self.remaining + (now - self.at) * REFILL_PER_S)

    def observe(self, remaining: int, now: float, in_flight: int = 0) -> None:
        """Heroku's `RateLimit-Remaining` on an answer; requests still in flight will take theirs."""
        self.remaining, self.at = float(remaining - in_flight), now

    def wait(self, now: float) -> float:
        """Seconds a request sent now should wait first: for a token when there is none, for its
        turn when pacing (below PACE_BELOW, one request per token refilled)."""
        level = self.level(now)
        if level is None:
            return 0.0
        wait = (1 - level) / REFILL_PER_S if level < 1 else 0.0
        if level < PACE_BELOW:
            wait = max(wait, self.next_slot - now)
        return max(0.0, wait)

    def take(self, now: float, max_wait_s: float) -> float | None:
        """Take a token for a request: how long to wait before sending it, or None (nothing
        taken) when that wait is longer than `max_wait_s`: the request would have to wait for
        tokens longer than anyone waits, so it is not sent (`wait(now)` says how long)."""
        wait = self.wait(now)
        if wait > max_wait_s:
            return None
        level = self.level(now)
        if level is not None:
            self.remaining, self.at = level - 1, now
            if level < PACE_BELOW:
                self.next_slot = max(self.next_slot, now + wait) + 1 / REFILL_PER_S
        return wait


def whole_seconds(wait_s: float) -> int:
    """A wait as people read it: rounded up, at least 1."""
    return max(1, math.ceil(wait_s))
