"""Remediation state in Redis: exactly-once clicks, per-app locks and the audit stream.

A click is identified by (action, app, message): Slack retries, double clicks and
several bot processes all map to the same key, and `SET NX` lets exactly one win.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from bot.errors import ActionBusy, AlreadyDone, StateUnavailable
from bot.state import Redis, unavailable
from bot.state.locks import release_lock, take_lock

CLAIM_TTL_S = 600
# A claim lives this long until its action holds the app lock. A claim whose SET reached Redis
# after the click was already refused (Redis hung, then resumed) therefore blocks the button
# for seconds, not for CLAIM_TTL_S; so does the claim of a process that died right after it.
CLAIM_PENDING_TTL_S = 5
LOCK_TTL_S = 900
AUDIT_MAXLEN = 500

@dataclass(frozen=True)
class Claim:
    key: str
    user: str
    at: float


@dataclass(frozen=True)
class AuditRecord:
    at: float
    user: str
    action: str
    app: str
    ok: bool
    result: str


def claim_key(action: str, app: str, message_ref: str) -> str:
    return f"pgconn:click:{app}:{action}:{message_ref}"


def lock_key(app: str) -> str:
    """One action at a time per app, across processes."""
    return f"pgconn:lock:{app}"


class ActionLedger:
    def __init__(self, redis: Redis | None) -> None:
        self._redis = redis

    def _r(self) -> Redis:
        if self._redis is None:
            raise unavailable(RuntimeError("no REDIS_URL"))
        return self._redis

    async def claim(self, action: str, app: str, message_ref: str, user: str) -> Claim:
        """Claim a click or raise AlreadyDone (with who and when) if another delivery has it."""
        key = claim_key(action, app, message_ref)
        now = time.time()
        # Ours alone: when a retried SET finds the key its lost first attempt wrote, it is still ours.
        nonce = secrets.token_hex(8)
        try:
            won = await self._r().set(
                key,
                json.dumps({"user": user, "at": now, "state": "running", "nonce": nonce}),
                nx=True,
                ex=CLAIM_PENDING_TTL_S,
            )
            if won:
                return Claim(key=key, user=user, at=now)
            raw = await self._r().get(key)
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None
        prior = json.loads(raw) if raw else {}
        if prior.get("nonce") == nonce:
            return Claim(key=key, user=user, at=now)
        state = "done" if prior.get("state") == "done" else "running"
        at = time.strftime("%H:%M", time.gmtime(prior.get("at", now)))
        raise AlreadyDone(f"already {state} by <@{prior.get('user', '?')}> at {at} UTC")

    async def hold(self, claim: Claim) -> None:
        """The action is about to run (its app lock is held): keep the claim for CLAIM_TTL_S."""
        # Should Redis fail here, the app lock still keeps a second run out while this one runs,
        # and finish() writes the done marker afresh.
        with contextlib.suppress(RedisError, OSError):
            await self._r().expire(claim.key, CLAIM_TTL_S)

    async def finish(self, claim: Claim, *, done: bool) -> None:
        """Mark the claim done; a claim whose action did nothing is released so it can be retried."""
        # On failure the TTL ends the claim anyway; the outcome was already reported.
        with contextlib.suppress(RedisError, OSError):
            if done:
                await self._r().set(
                    claim.key,
                    json.dumps({"user": claim.user, "at": claim.at, "state": "done"}),
                    ex=CLAIM_TTL_S,
                )
            else:
                await self._r().delete(claim.key)

    async def lock(self, app: str) -> str:
        try:
            token = await take_lock(self._r(), lock_key(app), LOCK_TTL_S)
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None
        if token is None:
            raise ActionBusy(f"another pgconn action is still running on {app}; wait for it to finish")
        return token

    async def unlock(self, app: str, token: str) -> None:
        await release_lock(self._r(), lock_key(app), token)


class AuditLog:
    def __init__(self, redis: Redis | None) -> None:
        self._redis = redis

    async def record(self, rec: AuditRecord) -> bool:
        if self._redis is None:
            return False
        fields: dict[Any, Any] = {
            "at": f"{rec.at:.3f}",
            "user": rec.user,
            "action": rec.action,
            "app": rec.app,
            "ok": "1" if rec.ok else "0",
            "result": rec.result[:500],
        }
        try:
            await self._redis.xadd(f"pgconn:audit:{rec.app}", fields, maxlen=AUDIT_MAXLEN, approximate=True)
            return True
        except (RedisError, OSError):
            return False

    async def recent(self, app: str, count: int = 10) -> list[AuditRecord]:
        unreadable = StateUnavailable(
            "pgconn's state store (Redis) is unreachable, so the audit log cannot be read right now"
        )
        if self._redis is None:
            raise unreadable
        try:
            rows: list[tuple[str, dict[str, str]]] = await self._redis.xrevrange(  # type: ignore[assignment]
                f"pgconn:audit:{app}", count=count
            )
        except (RedisError, OSError):
            raise unreadable from None
        return [
            AuditRecord(
                at=float(f.get("at", 0)),
                user=f.get("user", ""),
                action=f.get("action", ""),
                app=f.get("app", app),
                ok=f.get("ok") == "1",
                result=f.get("result", ""),
            )
            for _, f in rows
        ]
