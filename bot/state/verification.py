"""Verifications of fixes, kept in Redis so that any process finishes them, exactly once.

A fix (Kill idle, Kill all, a restart, Add PgBouncer) schedules a check of its effect a while
later (bot.verification). The check must survive a restart of pgconn (Heroku restarts every
dyno daily and on each deploy) and must be said once however many processes run:

- `pgconn:verify:{id}`: the pending check (JSON: what was done, by whom, in which thread, the
  numbers before, its phase);
- `pgconn:verify:due`: a sorted set of pending ids scored by when each is due. A process
  *takes* a due id by moving its score forward by a lease, in one Lua script: exactly one
  process wins it; if that process dies mid-check, the lease runs out and another takes it
  (the pattern of bot.state.inflight, without heartbeats: a check is short and idempotent
  until it is said);
- `pgconn:verified:{id}`: the claim on saying the verdict (SET NX): one line per check even if
  two processes both finished it after a lease ran out;
- `pgconn:verifications:{channel}:{thread}` and `pgconn:verifications:{app}`: the results
  (action, who, before, after, verdict, when), newest last, for the incident's post-mortem
  timeline and the App Home. They outlive the incident by RESULT_TTL_S.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from redis.exceptions import RedisError

from bot.state import Redis, unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

DUE_KEY = "pgconn:verify:due"
RECORD_TTL_S = 8 * 86400  # longer than the longest wait for a release
RESULT_TTL_S = 30 * 86400
RESULTS_PER_APP = 200
LEASE_S = 120.0

# Take the due ids, each by moving its score to now + lease: ZADD XX in the same script, so
# two processes never take the same one (Redis runs a script atomically).
_TAKE_DUE = """
local due = redis.call('zrangebyscore', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(due) do
  redis.call('zadd', KEYS[1], 'XX', ARGV[2], id)
end
return due
"""


@dataclass
class PendingCheck:
    """One fix whose effect is still to be checked."""

    id: str
    action: str  # the public action id
    app: str
    user: str
    channel: str
    thread_ts: str | None
    at: float  # when the fix ran
    before: int | None  # the role's connections before the fix
    limit: int | None
    dynos_before: int | None = None
    just_after: int | None = None  # right after the fix (Kill idle/all): the base of "climbing back"
    # Add PgBouncer: "release" while waiting for the deploy that carries the buildpack, then
    # "settle" until the connections have had time to settle behind it.
    phase: str = "settle"
    release_after: int | None = None  # the release version when the fix ran
    slug_before: str | None = None  # that release's slug: a config change keeps it, a build does not
    release_version: int | None = None  # the release followed
    release_at: float | None = None
    release_notes: list[str] = field(default_factory=list)
    give_up_at: float | None = None
    process_type: str | None = None  # a restart of one process type
    buildpacks: list[str] = field(default_factory=list)  # what the followed release was built with
    attempts: int = 0  # checks that failed (Heroku or the database unreachable)

    @classmethod
    def from_json(cls, raw: str | bytes) -> PendingCheck | None:
        return _load(cls, raw)


@dataclass(frozen=True)
class VerificationResult:
    """What a fix did, as checked: the line said in its thread, and the numbers behind it."""

    id: str
    action: str
    app: str
    user: str
    channel: str
    thread_ts: str | None
    acted_at: float
    checked_at: float
    before: int | None
    after: int | None
    limit: int | None
    verdict: str  # "verified", "not_fixed", "climbing", "not_verified"
    line: str

    @classmethod
    def from_json(cls, raw: str | bytes) -> VerificationResult | None:
        return _load(cls, raw)


def _load(cls: type[T], raw: str | bytes) -> T | None:
    """A record written by any version of pgconn: unknown fields dropped, bad JSON None."""
    try:
        data = json.loads(raw)
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})  # type: ignore[attr-defined]
    except (ValueError, TypeError, AttributeError):
        return None


def record_key(id_: str) -> str:
    return f"pgconn:verify:{id_}"


def said_key(id_: str) -> str:
    return f"pgconn:verified:{id_}"


def thread_key(channel: str, thread_ts: str) -> str:
    return f"pgconn:verifications:{channel}:{thread_ts}"


def app_key(app: str) -> str:
    return f"pgconn:verifications:{app}"


def new_id() -> str:
    return secrets.token_hex(8)


class VerificationStore:
    def __init__(self, redis: Redis | None) -> None:
        self._redis = redis

    @property
    def enabled(self) -> bool:
        return self._redis is not None

    def _r(self) -> Redis:
        if self._redis is None:
            raise unavailable(RuntimeError("no REDIS_URL"))
        return self._redis

    async def schedule(self, check: PendingCheck, due_at: float) -> None:
        """Keep the check and make it due at `due_at` (rescheduling keeps the same id)."""
        try:
            async with self._r().pipeline(transaction=True) as pipe:
                pipe.set(record_key(check.id), json.dumps(asdict(check)), ex=RECORD_TTL_S)
                pipe.zadd(DUE_KEY, {check.id: due_at})
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None

    async def take_due(self, now: float, limit: int = 20, lease_s: float = LEASE_S) -> list[PendingCheck]:
        """The checks due by `now`, each now this process's for `lease_s` (no other gets it)."""
        try:
            ids = await self._r().eval(_TAKE_DUE, 1, DUE_KEY, str(now), str(now + lease_s), str(limit))
            out: list[PendingCheck] = []
            for id_ in ids or []:
                raw = await self._r().get(record_key(str(id_)))
                check = PendingCheck.from_json(raw) if raw else None
                if check is None:
                    await self._r().zrem(DUE_KEY, str(id_))  # its record expired or was mangled
                    continue
                out.append(check)
            return out
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None

    async def nudge(self, app: str, now: float) -> int:
        """A release of `app` arrived (its webhook): its checks waiting for one are due now."""
        n = 0
        for check in await self.pending(app):
            if check.phase == "release":
                with contextlib.suppress(RedisError, OSError):
                    n += int(await self._r().zadd(DUE_KEY, {check.id: now}, xx=True, ch=True) or 0)
        return n

    async def pending(self, app: str | None = None) -> list[PendingCheck]:
        try:
            ids = await self._r().zrange(DUE_KEY, 0, -1)
            out = []
            for id_ in ids:
                raw = await self._r().get(record_key(str(id_)))
                check = PendingCheck.from_json(raw) if raw else None
                if check is not None and (app is None or check.app == app):
                    out.append(check)
            return out
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None

    async def claim_saying(self, check: PendingCheck) -> bool:
        """True for the one process that says this check's verdict."""
        try:
            return bool(await self._r().set(said_key(check.id), "1", nx=True, ex=RECORD_TTL_S))
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None

    async def finish(self, check: PendingCheck, result: VerificationResult) -> None:
        """Store the result with its thread and app, and drop the pending check."""
        body = json.dumps(asdict(result))
        try:
            async with self._r().pipeline(transaction=True) as pipe:
                if result.thread_ts:
                    key = thread_key(result.channel, result.thread_ts)
                    pipe.rpush(key, body)
                    pipe.expire(key, RESULT_TTL_S)
                pipe.rpush(app_key(result.app), body)
                pipe.ltrim(app_key(result.app), -RESULTS_PER_APP, -1)
                pipe.expire(app_key(result.app), RESULT_TTL_S)
                pipe.zrem(DUE_KEY, check.id)
                pipe.delete(record_key(check.id))
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None

    async def drop(self, check: PendingCheck) -> None:
        with contextlib.suppress(RedisError, OSError):
            async with self._r().pipeline(transaction=True) as pipe:
                pipe.zrem(DUE_KEY, check.id)
                pipe.delete(record_key(check.id))
                await pipe.execute()

    async def for_thread(self, channel: str, thread_ts: str) -> list[VerificationResult]:
        """Every verified effect of a fix clicked in this thread (an incident's), oldest first."""
        return await self._results(thread_key(channel, thread_ts))

    async def for_app(self, app: str) -> list[VerificationResult]:
        """The app's latest verified effects (at most RESULTS_PER_APP), oldest first."""
        return await self._results(app_key(app))

    async def _results(self, key: str) -> list[VerificationResult]:
        try:
            raws: list[Any] = await self._r().lrange(key, 0, -1)
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None
        return [r for r in (VerificationResult.from_json(raw) for raw in raws) if r is not None]
