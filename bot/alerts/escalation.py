"""Escalation to PagerDuty: the outbox's sender, and what each delivery says in the thread. I/O.

The alert engine decides *when* (bot.alerts.ownership.escalation_due, every second in every
process: AlertEngine._escalations) and queues a `trigger`; Acknowledge and Resolve in Slack queue
`acknowledge` / `resolve`. Everything goes through the Redis outbox (bot.state.pagerduty), so it
survives a 429, an outage, a restart, a process killed mid-send: every process sends what is due.

Per PagerDuty's "Response Codes & Retry Logic" (developer-docs, events-API-v2/01-Overview.md):
202 is done; 400 is reported in the thread and not retried; 429, 5xx and no answer are retried
with a doubling back-off (the first retry after PGCONN_PAGERDUTY_RETRY seconds, at most every 10
minutes), the first failure and the eventual delivery said in the thread, so nothing is lost
silently. The dedup key is the incident's id, so a trigger sent twice (a retry whose first answer
was lost) is one PagerDuty incident.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable

import httpx
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import pagerduty
from bot.detect import Severity
from bot.errors import StateUnavailable
from bot.render.ownership import delivery_reply
from bot.render.text import duration
from bot.state.incidents import Incident
from bot.state.pagerduty import PagerDutyOutbox, QueuedEvent

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 600.0
# (routing key, escalate after seconds) of an app, or Nones when it names no PagerDuty service.
Route = Callable[[str], "tuple[str | None, float | None]"]


class Escalator:
    def __init__(
        self,
        *,
        base_url: str,
        retry_s: float,
        route: Route,
        slack: AsyncWebClient,
        outbox: PagerDutyOutbox | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.base_url = base_url
        self.retry_s = retry_s
        self.route = route
        self.slack = slack
        self.outbox = outbox
        self.clock = clock
        self.owner = secrets.token_hex(8)
        # Its own pool: PagerDuty's answers are not Heroku's (the shared client counts Heroku's
        # rate-limit headers), and a slow PagerDuty must not hold Heroku's connections.
        self.http = httpx.AsyncClient(headers={"User-Agent": "pgconn/0.1"})

    def escalate_after(self, app: str) -> float | None:
        key, after = self.route(app)
        return after if key else None

    async def queue(self, incident: Incident, action: pagerduty.Action, by: str = "") -> bool:
        """Put an event about the incident in the outbox. False when there is nothing to send: the
        app names no PagerDuty service, a trigger was already queued (by any process), or an
        acknowledge / resolve of an incident PagerDuty never heard of."""
        if self.outbox is None or not self.route(incident.app)[0]:
            return False
        after = self.escalate_after(incident.app) or 0.0
        event = QueuedEvent(
            action=action,
            app=incident.app,
            database=incident.database,
            incident=incident.id,
            channel=incident.channel,
            ts=incident.ts,
            summary=_summary(incident, after),
            source=f"{incident.database} of Heroku app {incident.app}",
            severity="critical" if incident.severity is Severity.CRITICAL else "warning",
            details={
                "connections": f"{incident.current}/{incident.limit}" if incident.limit else None,
                "refused_connections": incident.fatal,
                "signals": incident.signals,
                "slack_channel": incident.channel,
                "slack_thread_ts": incident.ts,
            },
            by=by,
        )
        queued = await self.outbox.add(event, self.clock())
        if queued:
            log.info("pagerduty %s queued for incident %s", action, incident.id)
        return queued

    async def deliver(self) -> None:
        """Send every event that is due, one incident at a time per process (a lease)."""
        if self.outbox is None:
            return
        for dedup_key in await self.outbox.due(self.clock()):
            if not await self.outbox.lease(dedup_key, self.owner):
                continue
            try:
                await self._drain(dedup_key)
            finally:
                await self.outbox.release(dedup_key, self.owner)

    async def _drain(self, dedup_key: str) -> None:
        assert self.outbox is not None
        while True:
            event, failures = await self.outbox.first(dedup_key)
            if event is None:
                await self.outbox.done(dedup_key, self.clock())
                return
            key = self.route(event.app)[0]
            if not key:
                log.warning(
                    "pagerduty %s for %s dropped: the app names no routing key now", event.action, event.app
                )
                await self.outbox.done(dedup_key, self.clock())
                continue
            result = await pagerduty.send(
                self.http,
                self.base_url,
                pagerduty.Event(
                    action=event.action,  # type: ignore[arg-type]
                    routing_key=key,
                    dedup_key=event.incident,
                    summary=event.summary,
                    source=event.source,
                    severity=event.severity,
                    details=event.details,
                ),
            )
            if result.outcome == "retry":
                wait = self._backoff(failures)
                attempts = await self.outbox.later(dedup_key, self.clock() + wait)
                log.warning(
                    "pagerduty %s for %s not taken (%s %s); retrying, attempt %d",
                    event.action, event.incident, result.status, result.detail, attempts,
                )
                if attempts == 1:
                    await self._say(event, delivery_reply(event, result, attempts, wait))
                return
            if result.outcome == "refused":
                log.warning("pagerduty refused %s for %s: %s", event.action, event.incident, result.detail)
            else:
                log.info("pagerduty took %s for %s", event.action, event.incident)
            await self.outbox.done(dedup_key, self.clock())
            await self._say(event, delivery_reply(event, result, failures + 1, 0.0))

    def _backoff(self, failures: int) -> float:
        return float(min(MAX_BACKOFF_S, self.retry_s * 2.0 ** max(0, failures)))

    async def _say(self, event: QueuedEvent, text: str) -> None:
        if not event.channel or not event.ts:
            return
        try:
            await self.slack.chat_postMessage(channel=event.channel, thread_ts=event.ts, text=text)
        except SlackApiError as exc:
            # The event's fate is in the log either way; the thread is where people look first.
            log.warning("pagerduty reply in %s not posted: %s", event.ts, exc.response.get("error"))

    async def pending(self) -> int:
        if self.outbox is None:
            return 0
        try:
            return await self.outbox.pending()
        except StateUnavailable:
            return 0

    async def aclose(self) -> None:
        await self.http.aclose()


def _summary(incident: Incident, after_s: float) -> str:
    conn = f" ({incident.current}/{incident.limit} connections)" if incident.limit else ""
    what = "out of" if incident.severity is Severity.CRITICAL else "close to the limit of"
    return (
        f"{incident.app} ({incident.database}) is {what} database connections{conn}; "
        f"not acknowledged in Slack within {duration(after_s)}"
    )
