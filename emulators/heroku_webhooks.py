"""Heroku's side of app webhooks: every formation change and every release is POSTed to
each subscription that includes its entity, signed as Heroku signs it.

The body is Heroku's event envelope (`id`, `action`, `actor`, `resource`, `data`,
`previous_data`, `webhook_metadata` with the attempt, delivery, event and webhook ids).
`Heroku-Webhook-Hmac-SHA256` is the base64 HMAC-SHA256 of the raw body with the
subscription's secret. Level `notify` makes one attempt; `sync` retries a failed one
(here a few times, quickly; Heroku spreads its retries over hours). Each delivery is
kept with its attempts and served as `GET /apps/{app}/webhook-deliveries`.

Deliveries go over real HTTP. `routes` maps a public origin (what the subscriber
registered, e.g. https://pgconn.example.com) to where that server really listens, the
way DNS would.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from emulators.heroku_state import JSON, EmulatedApp, Webhook, iso, new_uuid, now

log = logging.getLogger(__name__)

VERSION = "application/vnd.heroku+json; version=3"


@dataclass
class Attempt:
    id: str
    code: int | None
    error_class: str | None
    status: str  # "scheduled", "succeeded", "failed"
    created_at: datetime
    updated_at: datetime
    seconds: float = 0.0  # until the subscriber answered (or the attempt failed)


@dataclass
class Delivery:
    id: str
    app: str
    webhook: Webhook
    event_id: str
    include: str  # "api:formation"
    url: str
    status: str = "pending"  # "pending", "scheduled", "retrying", "failed", "succeeded"
    attempts: list[Attempt] = field(default_factory=list)
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)
    next_attempt_at: datetime | None = None  # while a "sync" delivery waits for its retry
    # What the last attempt sent, exactly: a test replays it byte for byte.
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    envelope: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_json(self) -> JSON:
        last = self.attempts[-1] if self.attempts else None
        return {
            "created_at": iso(self.created_at),
            "event": {"id": self.event_id, "include": self.include},
            "id": self.id,
            "num_attempts": len(self.attempts),
            "next_attempt_at": iso(self.next_attempt_at) if self.next_attempt_at else None,
            "last_attempt": None
            if last is None
            else {
                "id": last.id,
                "code": last.code,
                "error_class": last.error_class,
                "status": last.status,
                "created_at": iso(last.created_at),
                "updated_at": iso(last.updated_at),
            },
            "status": self.status,
            "updated_at": iso(self.updated_at),
            "webhook": {"id": self.webhook.id, "level": self.webhook.level},
        }


def sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


class WebhookDispatcher:
    def __init__(self, *, sync_attempts: int = 3, retry_delay: float = 0.2, timeout: float = 10.0) -> None:
        self.sync_attempts = sync_attempts
        self.retry_delay = retry_delay
        self.timeout = timeout
        self.routes: dict[str, str] = {}
        self.deliveries: list[Delivery] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def publish(
        self,
        app: EmulatedApp,
        resource: str,
        action: str,
        data: JSON,
        previous_data: JSON | None = None,
    ) -> list[Delivery]:
        """One event; a delivery per subscription that includes it, sent in the background."""
        include = f"api:{resource}"
        event_id = new_uuid()
        at = iso(now())
        out = []
        for hook in list(app.webhooks):
            if include not in hook.include:
                continue
            delivery = Delivery(new_uuid(), app.name, hook, event_id, include, hook.url)
            delivery.envelope = {
                "id": event_id,
                "data": data,
                "actor": {"email": app.owner.email, "id": app.owner.id},
                "action": action,
                "version": VERSION,
                "resource": resource,
                "sequence": None,
                "created_at": at,
                "updated_at": at,
                "published_at": at,
                "previous_data": previous_data or {},
            }
            self.deliveries.append(delivery)
            task = asyncio.get_running_loop().create_task(self._deliver(delivery))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            out.append(delivery)
        return out

    async def settle(self) -> None:
        """Wait until every delivery in flight has finished (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def of(self, app: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.app == app]

    def _target(self, url: str) -> str:
        for origin, base in self.routes.items():
            if url.startswith(origin):
                return base.rstrip("/") + url[len(origin) :]
        return url

    async def _deliver(self, delivery: Delivery) -> None:
        attempts = self.sync_attempts if delivery.webhook.level == "sync" else 1
        async with httpx.AsyncClient(timeout=self.timeout) as http:
            for number in range(attempts):
                if number:
                    delivery.status = "retrying"
                    delivery.next_attempt_at = now() + timedelta(seconds=self.retry_delay * number)
                    await asyncio.sleep(self.retry_delay * number)
                    delivery.next_attempt_at = None
                if await self._attempt(http, delivery):
                    delivery.status = "succeeded"
                    break
            else:
                delivery.status = "failed"
        delivery.updated_at = now()

    async def _attempt(self, http: httpx.AsyncClient, delivery: Delivery) -> bool:
        attempt = Attempt(new_uuid(), None, None, "scheduled", now(), now())
        delivery.attempts.append(attempt)
        hook = delivery.webhook
        envelope = {
            **delivery.envelope,
            "webhook_metadata": {
                "attempt": {"id": attempt.id},
                "delivery": {"id": delivery.id},
                "event": {"id": delivery.event_id, "include": delivery.include},
                "webhook": {"id": hook.id},
            },
        }
        body = json.dumps(envelope).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "Heroku Webhooks"}
        if hook.secret:
            headers["Heroku-Webhook-Hmac-SHA256"] = sign(hook.secret, body)
        if hook.authorization:
            headers["Authorization"] = hook.authorization
        delivery.body, delivery.headers = body, headers
        started = time.monotonic()
        try:
            response = await http.post(self._target(delivery.url), content=body, headers=headers)
        except httpx.HTTPError as exc:
            attempt.status, attempt.error_class = "failed", type(exc).__name__
            log.info("heroku emulator: webhook delivery to %s failed: %s", delivery.url, type(exc).__name__)
        else:
            attempt.code = response.status_code
            attempt.status = "succeeded" if 200 <= response.status_code < 300 else "failed"
        attempt.updated_at = now()
        attempt.seconds = time.monotonic() - started
        return attempt.status == "succeeded"
