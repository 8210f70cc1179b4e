"""Incidents in Redis: one per app and database, shared by every bot process.

Key layout (all under `pgconn:`):

- `pgconn:incident:{app}:{db}` — hash, the current (or last) incident of that database.
  Every field is written at once by a compare-and-set script keyed on `version`, so
  two processes deciding from the same state cannot both win: the loser re-reads and
  decides again. That is what makes "exactly one thread" hold across processes.
- `pgconn:incidents:active` — set of `{app}|{db}` whose incident still needs work
  (open, not yet posted, stale parent, resolution not yet told); the periodic check
  walks it instead of scanning keys.
- `pgconn:incident-report:{incident id}` — the report blocks posted with the parent,
  so later `chat.update`s can redraw the parent without calling Heroku again.
- `pgconn:incident-tick:{app}:{db}` — a short lease so only one process runs the
  periodic check (and its database probe) for an incident at a time.
- `pgconn:mention:{channel}:{ts}` — "already replied to this Slack message" marker.

Incident itself is a plain frozen dataclass: the pure decisions in `bot.alerts`
take one and return the next one; this module only stores them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

from redis.exceptions import RedisError

from bot.detect import Severity
from bot.state import Redis, unavailable
from bot.state.locks import claim_once

Status = Literal["open", "resolved"]

# Long enough to look back at last week's incident; refreshed on every write.
INCIDENT_TTL_S = 7 * 86400
MENTION_TTL_S = 7 * 86400
# Logplex re-sends a frame with the same Logplex-Frame-Id after a non-2xx answer, a 5 s
# timeout or a dropped connection (heroku/logplex src/logplex_http_drain.erl); its retries
# of one frame come within minutes, so an hour covers them at little memory (ids of frames
# that carried a signal only).
FRAME_TTL_S = 3600
FRAME_ID_MAX = 64
ACTIVE_SET = "pgconn:incidents:active"

_RANK = {Severity.OK: 0, Severity.WARN: 1, Severity.CRITICAL: 2}


def worse(a: Severity, b: Severity) -> Severity:
    return a if _RANK[a] >= _RANK[b] else b


@dataclass(frozen=True)
class Incident:
    """One exhaustion incident of one database, from the first signal to its resolution."""

    app: str
    database: str  # add-on name (postgresql-…), or the attachment when it could not be resolved
    id: str  # unique per incident; a new incident on the same database gets a new id
    version: int = 0  # bumped by the store on every successful write
    status: Status = "open"
    severity: Severity = Severity.WARN  # latest non-OK severity
    peak: Severity = Severity.WARN
    opened_at: float = 0.0
    last_seen: float = 0.0  # last drain signal of any kind (bad or a metric sample)
    last_bad: float = 0.0  # last signal at or above the warn threshold
    ok_since: float | None = None  # first reading below warn after last_bad
    resolved_at: float | None = None
    resolved_by: str = ""  # the Slack user who resolved it by hand; "" when it resolved by itself
    signals: int = 0  # bad drain signals: refused connections + metric samples at/above warn
    fatal: int = 0  # of which "too many connections" / reserved-slots lines
    current: int | None = None  # latest connection count pgconn knows
    limit: int | None = None
    last_metric_at: float | None = None  # last heroku-postgres sample (metrics drive resolution)
    excerpt: str = ""  # latest refused-connection line, as logged
    source: str = ""  # the proc that logged it: "web.3" (app output), "postgres.1234", "heroku-postgres"
    role: str | None = None
    # Slack side
    channel: str = ""
    ts: str = ""  # the parent message; "" until posted
    poster: str = ""  # token of whoever is posting the parent right now
    poster_at: float = 0.0
    post_failures: int = 0
    next_post_at: float = 0.0  # back-off after a failed post
    last_error: str = ""
    last_update_at: float = 0.0
    last_reply_at: float = 0.0
    dirty: bool = False  # the parent shows older numbers than these
    told: Severity = Severity.OK  # severity the thread was last told about
    told_resolved: bool = False
    # People (bot.alerts.ownership): who acknowledged it and since when, a snooze (no replies of
    # pgconn's own until `snoozed_until`, unless worse than `snooze_level`), and when it was
    # escalated to PagerDuty. (Who resolved it by hand: `resolved_by` above.)
    owner: str = ""
    owned_at: float = 0.0
    snoozed_by: str = ""
    snoozed_until: float = 0.0
    snooze_level: Severity = Severity.OK
    escalated_at: float = 0.0

    @property
    def key(self) -> str:
        return incident_key(self.app, self.database)

    @property
    def posted(self) -> bool:
        return bool(self.ts)

    @property
    def needs_attention(self) -> bool:
        """Whether the periodic check must keep looking at this incident."""
        if self.status == "open":
            return True
        return not self.posted or self.dirty or not self.told_resolved


def incident_key(app: str, database: str) -> str:
    return f"pgconn:incident:{app}:{database}"


def _member(app: str, database: str) -> str:
    return f"{app}|{database}"


# --- serialisation: a Redis hash of strings ------------------------------------

_FIELDS = {f.name: f for f in fields(Incident)}
_FLOATS = {"opened_at", "last_seen", "last_bad", "poster_at", "next_post_at", "last_update_at",
           "last_reply_at", "owned_at", "snoozed_until", "escalated_at"}
_OPT_FLOATS = {"ok_since", "resolved_at", "last_metric_at"}
_INTS = {"version", "signals", "fatal", "post_failures"}
_OPT_INTS = {"current", "limit"}
_BOOLS = {"dirty", "told_resolved"}
_SEVERITIES = {"severity", "peak", "told", "snooze_level"}


def to_hash(incident: Incident) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in asdict(incident).items():
        if value is None:
            out[name] = ""
        elif isinstance(value, bool):
            out[name] = "1" if value else "0"
        elif isinstance(value, float):
            out[name] = repr(value)
        else:
            out[name] = str(value)
    return out


def from_hash(raw: dict[str, str]) -> Incident:
    """The inverse of to_hash; unknown fields (from a newer version) are ignored."""
    kw: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in _FIELDS:
            continue
        if name in _FLOATS:
            kw[name] = float(value or 0)
        elif name in _OPT_FLOATS:
            kw[name] = float(value) if value else None
        elif name in _INTS:
            kw[name] = int(value or 0)
        elif name in _OPT_INTS:
            kw[name] = int(value) if value else None
        elif name in _BOOLS:
            kw[name] = value == "1"
        elif name in _SEVERITIES:
            kw[name] = Severity(value) if value in Severity._value2member_map_ else Severity.OK
        elif name == "role":
            kw[name] = value or None
        else:
            kw[name] = value
    return Incident(**kw)


# KEYS[1] the incident hash, KEYS[2] the active set.
# ARGV[1] expected version ("0" when there is no hash), ARGV[2] TTL, ARGV[3] set member,
# ARGV[4] "1" to keep it in the active set, ARGV[5..] field/value pairs of the new hash.
_COMPARE_AND_SET = """
local current = redis.call('HGET', KEYS[1], 'version') or '0'
if current ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
if ARGV[4] == '1' then
  redis.call('SADD', KEYS[2], ARGV[3])
else
  redis.call('SREM', KEYS[2], ARGV[3])
end
return 1
"""


class IncidentStore:
    """Loads incidents and writes them with compare-and-set; raises StateUnavailable when Redis is down."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._cas = redis.register_script(_COMPARE_AND_SET)

    async def load(self, app: str, database: str) -> Incident | None:
        try:
            raw: dict[str, str] = await self._redis.hgetall(incident_key(app, database))  # type: ignore[assignment]
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None
        return from_hash(raw) if raw else None

    async def commit(self, previous: Incident | None, new: Incident) -> Incident | None:
        """Write `new` if the stored incident is still `previous`; the stored copy, or None if it moved on."""
        expected = previous.version if previous is not None else 0
        stored = replace(new, version=expected + 1)
        args: list[str] = [
            str(expected),
            str(INCIDENT_TTL_S),
            _member(new.app, new.database),
            "1" if stored.needs_attention else "0",
        ]
        for name, value in to_hash(stored).items():
            args += [name, value]
        try:
            won = await self._cas(keys=[stored.key, ACTIVE_SET], args=args)
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None
        return stored if won else None

    async def active(self) -> list[tuple[str, str]]:
        """(app, database) of every incident that still needs work, in any process."""
        try:
            members = await self._redis.smembers(ACTIVE_SET)
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None
        out = []
        for member in sorted(members):
            app, _, database = str(member).partition("|")
            if app and database:
                out.append((app, database))
        return out

    async def lease(self, app: str, database: str, owner: str, seconds: float) -> bool:
        """A short exclusive lease for the periodic check of one incident."""
        try:
            won = await self._redis.set(
                f"pgconn:incident-tick:{app}:{database}", owner, nx=True, px=max(1, int(seconds * 1000))
            )
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None
        return bool(won)

    async def save_report(self, incident_id: str, blocks: list[dict[str, Any]]) -> None:
        try:
            await self._redis.set(
                f"pgconn:incident-report:{incident_id}", json.dumps(blocks), ex=INCIDENT_TTL_S
            )
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None

    async def report(self, incident_id: str) -> list[dict[str, Any]]:
        try:
            raw = await self._redis.get(f"pgconn:incident-report:{incident_id}")
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None
        if not raw:
            return []
        blocks = json.loads(raw)
        return blocks if isinstance(blocks, list) else []

    async def claim_mention(self, channel: str, ts: str) -> bool:
        """True exactly once per Slack message: whoever gets it replies."""
        try:
            return await claim_once(self._redis, f"pgconn:mention:{channel}:{ts}", "1", MENTION_TTL_S)
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None

    async def claim_frame(self, app: str, frame_id: str) -> bool:
        """True the first time a drain frame id is seen for `app`, by any process."""
        key = f"pgconn:frame:{app}:{frame_id[:FRAME_ID_MAX]}"
        try:
            return await claim_once(self._redis, key, "1", FRAME_TTL_S)
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None

    async def release_mention(self, channel: str, ts: str) -> None:
        """Give the message back when the reply could not be posted, so a redelivery may try again."""
        try:
            await self._redis.delete(f"pgconn:mention:{channel}:{ts}")
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None
