"""The PagerDuty outbox in Redis: events wait here until PagerDuty has taken (or refused) them.

An event is written here before anything is sent, so a 429, an outage, a restart of pgconn or a
process killed mid-send loses nothing: whichever process looks next sends it. Keys:

- `pgconn:pagerduty:queue:{dedup_key}` — list of the incident's events, oldest first. One
  incident's events go out in order (a resolve must not overtake the trigger it resolves).
- `pgconn:pagerduty:due` — sorted set: dedup key → when its first event may be sent next.
- `pgconn:pagerduty:attempts` — hash: dedup key → failed attempts of its first event.
- `pgconn:pagerduty:lease:{dedup_key}` — one process sends an incident's events at a time.

Adding and taking are Lua scripts (Redis runs each atomically), so an event added while another
process empties the queue is never stranded without a `due` entry. The routing key is not stored:
it is read from the configuration when the event is sent.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from redis.exceptions import RedisError

from bot.state import Redis, unavailable

QUEUE = "pgconn:pagerduty:queue:"
DUE = "pgconn:pagerduty:due"
ATTEMPTS = "pgconn:pagerduty:attempts"
LEASE = "pgconn:pagerduty:lease:"
TRIGGERED = "pgconn:pagerduty:triggered:"
# As long as the incident itself is kept (bot.state.incidents.INCIDENT_TTL_S).
TRIGGERED_TTL_S = 7 * 86400
# Long enough to cover one send (PagerDuty's answer within bot.pagerduty.TIMEOUT_S) and the
# thread reply after it; a process that dies holding it gives the queue up this much later.
LEASE_S = 30.0
BATCH = 20

# KEYS[1] queue, KEYS[2] due, KEYS[3] the incident's "triggered" marker; ARGV[1] dedup key,
# ARGV[2] event JSON, ARGV[3] now, ARGV[4] "trigger" or not, ARGV[5] the marker's TTL.
# One trigger per incident, ever, whichever processes try (the marker is set with it); an
# acknowledge or resolve only for an incident that was triggered (PagerDuty has nothing to
# acknowledge otherwise), queued after the trigger whatever happened in between.
# ZADD NX: an incident waiting out a back-off keeps waiting; its new event goes after the others.
_ADD = """
if ARGV[4] == 'trigger' then
  if not redis.call('SET', KEYS[3], '1', 'NX', 'EX', tonumber(ARGV[5])) then return 0 end
elseif redis.call('EXISTS', KEYS[3]) == 0 then
  return 0
end
redis.call('RPUSH', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], 'NX', ARGV[3], ARGV[1])
return 1
"""
# KEYS[1] queue, KEYS[2] due, KEYS[3] attempts; ARGV[1] dedup key, ARGV[2] now.
# The first event is done with (sent, or refused for good): the next one is due at once.
_DONE = """
redis.call('LPOP', KEYS[1])
redis.call('HDEL', KEYS[3], ARGV[1])
if redis.call('LLEN', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
else
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
end
return 1
"""


@dataclass(frozen=True)
class QueuedEvent:
    """What pgconn will send about an incident, and where to say how it went."""

    action: str  # trigger / acknowledge / resolve
    app: str
    database: str
    incident: str  # the incident id: the dedup key
    channel: str
    ts: str  # the thread
    summary: str = ""
    source: str = ""
    severity: str = "critical"
    details: dict[str, Any] = field(default_factory=dict)
    by: str = ""  # the Slack user whose click caused it ("" for the escalation itself)

    def dump(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def load(cls, raw: str) -> QueuedEvent:
        data = json.loads(raw)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class PagerDutyOutbox:
    """Raises StateUnavailable when Redis is down (the caller keeps or reports the event)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._add = redis.register_script(_ADD)
        self._done = redis.register_script(_DONE)

    async def add(self, event: QueuedEvent, now: float) -> bool:
        """Queue the event; False for a second trigger, or a follow-up of an incident never triggered."""
        keys = [QUEUE + event.incident, DUE, TRIGGERED + event.incident]
        args = [event.incident, event.dump(), repr(now), event.action, str(TRIGGERED_TTL_S)]
        try:
            return bool(await self._add(keys=keys, args=args))
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None

    async def triggered(self, dedup_key: str) -> bool:
        try:
            return bool(await self._redis.exists(TRIGGERED + dedup_key))
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None

    async def due(self, now: float) -> list[str]:
        """Dedup keys whose first event may be sent now."""
        try:
            keys = await self._redis.zrangebyscore(DUE, "-inf", repr(now), start=0, num=BATCH)
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None
        return [str(k) for k in keys]

    async def lease(self, dedup_key: str, owner: str) -> bool:
        try:
            return bool(await self._redis.set(LEASE + dedup_key, owner, nx=True, px=int(LEASE_S * 1000)))
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None

    async def release(self, dedup_key: str, owner: str) -> None:
        try:
            if await self._redis.get(LEASE + dedup_key) == owner:
                await self._redis.delete(LEASE + dedup_key)
        except (RedisError, OSError):
            pass  # it expires by itself

    async def first(self, dedup_key: str) -> tuple[QueuedEvent | None, int]:
        """The incident's oldest unsent event and how many times sending it failed."""
        try:
            raw = await self._redis.lindex(QUEUE + dedup_key, 0)
            attempts = await self._redis.hget(ATTEMPTS, dedup_key)
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None
        if raw is None:
            return None, 0
        return QueuedEvent.load(str(raw)), int(attempts or 0)

    async def done(self, dedup_key: str, now: float) -> None:
        try:
            await self._done(keys=[QUEUE + dedup_key, DUE, ATTEMPTS], args=[dedup_key, repr(now)])
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None

    async def later(self, dedup_key: str, at: float) -> int:
        """Sending failed: try again at `at`. The number of failed attempts so far."""
        try:
            attempts = await self._redis.hincrby(ATTEMPTS, dedup_key, 1)
            await self._redis.zadd(DUE, {dedup_key: at}, xx=True)
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None
        return int(attempts)

    async def pending(self) -> int:
        """Incidents with events not yet taken by PagerDuty."""
        try:
            return int(await self._redis.zcard(DUE))
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None
