"""Actions in flight, kept in Redis so that a process that starts later finishes their story.

Heroku restarts every dyno at least daily and on every deploy: SIGTERM, then SIGKILL 30 s
later (../shared/contracts/README.md). A click whose work is still running then (a restart
being followed, Add PgBouncer half done) would otherwise leave its thread without an outcome
and its claim held. So each running action writes what it is and how far it got:

- `pgconn:inflight:{id}`: the action, its app, who clicked, where its thread is, its phase
  ("started": nothing sent yet; "sent": a change was sent, its answer not seen; "following":
  the restart was done and its dynos are being followed), what was done, what was being sent;
- `pgconn:process:{owner}`: the owning process is alive (refreshed every few seconds; deleted
  when it shuts down).

A record whose owner is gone is an orphan: whichever process takes it (SET NX) finishes it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

from redis.exceptions import RedisError

from bot.state import Redis
from bot.state.locks import claim_once, release_lock
from bot.state.remediation import lock_key

log = logging.getLogger(__name__)

RECORD_TTL_S = 86400
ALIVE_TTL_S = 15.0
ALIVE_EVERY_S = 5.0
TAKE_TTL_S = 600


@dataclass
class InFlight:
    id: str
    action: str
    app: str
    user: str
    channel: str
    message_ts: str | None
    thread_ts: str | None
    process_type: str | None
    claim_key: str
    lock_token: str
    owner: str
    phase: str = "started"  # "started", "sent", "following"
    done: list[str] = field(default_factory=list)
    sending: str | None = None  # what was sent without an answer yet
    result_ts: str | None = None  # the result message (restart: updated as dynos come up)
    result_text: str | None = None

    @classmethod
    def from_json(cls, raw: str | bytes) -> InFlight | None:
        try:
            data = json.loads(raw)
            return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        except (ValueError, TypeError):
            return None


def record_key(id_: str) -> str:
    return f"pgconn:inflight:{id_}"


def alive_key(owner: str) -> str:
    return f"pgconn:process:{owner}"


class InFlightStore:
    """Best effort throughout: without Redis an action still runs, it just cannot be recovered."""

    def __init__(self, redis: Redis | None, owner: str | None = None) -> None:
        self._redis = redis
        self.owner = owner or secrets.token_hex(8)

    @property
    def enabled(self) -> bool:
        return self._redis is not None

    async def save(self, record: InFlight) -> None:
        if self._redis is None:
            return
        # The heartbeat goes in the same transaction as the record: another process must never
        # see a live owner's record without its heartbeat (after Redis lost its keys — a flush, a
        # restart of a plan without persistence — the next beat could be seconds away, and the
        # running action would be "recovered" under its owner's feet).
        with contextlib.suppress(RedisError, OSError):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(record_key(record.id), json.dumps(asdict(record)), ex=RECORD_TTL_S)
                pipe.set(alive_key(self.owner), "1", px=int(ALIVE_TTL_S * 1000))
                await pipe.execute()

    async def end(self, record: InFlight) -> None:
        if self._redis is None:
            return
        with contextlib.suppress(RedisError, OSError):
            await self._redis.delete(record_key(record.id))

    async def beat(self) -> None:
        """This process is alive (call every ALIVE_EVERY_S)."""
        if self._redis is None:
            return
        with contextlib.suppress(RedisError, OSError):
            await self._redis.set(alive_key(self.owner), "1", px=int(ALIVE_TTL_S * 1000))

    async def gone(self) -> None:
        """Shutting down: this process's records are orphans for the next process at once."""
        if self._redis is None:
            return
        with contextlib.suppress(RedisError, OSError):
            await self._redis.delete(alive_key(self.owner))

    async def orphans(self) -> list[InFlight]:
        """Records whose owning process is gone, each taken by this process (no other gets it)."""
        if self._redis is None:
            return []
        found: list[InFlight] = []
        try:
            async for key in self._redis.scan_iter(match=record_key("*"), count=100):
                raw = await self._redis.get(key)
                record = InFlight.from_json(raw) if raw else None
                if record is None or record.owner == self.owner:
                    continue
                if await self._redis.exists(alive_key(record.owner)):
                    continue
                taken = f"pgconn:inflight-taken:{record.id}"
                if await claim_once(self._redis, taken, self.owner, TAKE_TTL_S):
                    found.append(record)
        except (RedisError, OSError) as exc:
            log.warning("could not look for interrupted actions: %s", type(exc).__name__)
        return found

    async def release_lock(self, app: str, token: str) -> None:
        """Free the app lock the record's process held (only if it still holds it)."""
        if self._redis is None:
            return
        await release_lock(self._redis, lock_key(app), token)

    async def free_claim(self, claim_key: str) -> None:
        if self._redis is None:
            return
        with contextlib.suppress(RedisError, OSError):
            await self._redis.delete(claim_key)


def describe(record: InFlight) -> dict[str, Any]:
    """For logs: what was interrupted, without anything secret (there is nothing secret in it)."""
    return {"action": record.action, "app": record.app, "phase": record.phase, "done": record.done}
