"""A PagerDuty Events API v2 emulator: `POST /v2/enqueue`, and PagerDuty's incidents behind it.

What the real API does, from PagerDuty's own documentation (github.com/PagerDuty/developer-docs,
docs/events-API-v2/01-Overview.md, 02-Trigger-Events.md, 05-Rate-Limits.md):

- `POST https://events.pagerduty.com/v2/enqueue`, a JSON body: `routing_key` (required, "the 32
  character Integration Key"), `event_action` (required: `trigger`, `acknowledge` or `resolve`),
  `dedup_key` (optional, at most 255 characters), and for a trigger `payload.summary` (required, at
  most 1024 characters), `payload.source` (required), `payload.severity` (required: `critical`,
  `error`, `warning` or `info`), optional `timestamp`, `component`, `group`, `class`,
  `custom_details`, and `links` / `images` / `client` / `client_url` beside the payload.
- Answers ("Response Codes & Retry Logic"): 202 accepted, do not retry; 400 bad request, do not
  retry; 429 too many calls, retry after some time (with "a backoff of a few minutes"); 500 or any
  5xx, retry after some time; a network error, retry after some time. The 202 body is
  `{"status": "success", "message": "Event processed", "dedup_key": "…"}`; the 400 body is
  `{"status": "invalid event", "message": "Event object is invalid", "errors": ["…"]}` (the form
  PagerDuty's client libraries document, e.g. the pagerduty Ruby gem's README).
- De-duplication: a trigger with the `dedup_key` of an open alert is applied to it (no second
  incident); once resolved, a trigger with that key opens a NEW incident and acknowledge /
  resolve events for it are dropped (still 202: the API is asynchronous). Follow-up events sent
  with another routing key than the trigger's are dropped too. A trigger without `dedup_key` gets
  a generated one, returned in the answer.
- Limits: about 120 events a minute per integration key, then 429 ("Request Limit Exceeded");
  payloads at most 512 KB.

Test controls: `fail(status, times)` answers the next events with a status (429, 500, 503) without
ingesting them (an outage, as a client sees it; a refused connection is a closed port);
`rate_limit_per_minute`
(120, as documented); `events` (every request received, accepted or not) and `incidents`
(PagerDuty's state, keyed by dedup_key: the latest incident of each key).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulators.serve import RunningServer, serve_in_thread

ROUTING_KEY_LENGTH = 32
DEDUP_KEY_MAX = 255
SUMMARY_MAX = 1024
MAX_BODY_BYTES = 512 * 1024
ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")
RATE_LIMIT_PER_MINUTE = 120


@dataclass
class PagerDutyIncident:
    """One PagerDuty incident (its alert), as the service's incident list would show it."""

    number: int
    dedup_key: str
    routing_key: str
    status: str  # "triggered", "acknowledged", "resolved"
    summary: str
    source: str
    severity: str
    triggers: int = 1  # trigger events applied to it (de-duplicated into this one)
    log: list[str] = field(default_factory=list)  # event actions applied, in order


@dataclass
class ReceivedEvent:
    at: float
    status: int  # what the emulator answered
    body: dict[str, Any] | None
    outcome: str  # "created", "deduplicated", "acknowledged", "resolved", "dropped", "invalid", …


@dataclass
class _Failure:
    status: int
    times: int


class PagerDutyEmulator:
    def __init__(self) -> None:
        self.url = ""
        self.lock = threading.Lock()
        self.events: list[ReceivedEvent] = []
        # dedup_key → the latest incident with that key (older, resolved ones in `history`).
        self.incidents: dict[str, PagerDutyIncident] = {}
        self.history: list[PagerDutyIncident] = []
        self.rate_limit_per_minute = RATE_LIMIT_PER_MINUTE
        self._accepted_at: dict[str, deque[float]] = {}
        self._failures: list[_Failure] = []
        self._running: RunningServer | None = None
        self.app = Starlette(routes=[Route("/v2/enqueue", self._enqueue, methods=["POST"])])

    # -- test controls ----------------------------------------------------------------------

    def start(self) -> RunningServer:
        self._running = serve_in_thread(self.app)
        self.url = self._running.url
        return self._running

    def stop(self) -> None:
        if self._running is not None:
            self._running.stop()

    def reset(self) -> None:
        with self.lock:
            self.events.clear()
            self.incidents.clear()
            self.history.clear()
            self._accepted_at.clear()
            self._failures.clear()
            self.rate_limit_per_minute = RATE_LIMIT_PER_MINUTE

    def fail(self, status: int, times: int = 1) -> None:
        """Answer the next `times` events with `status` (429, 500, 503…), ingesting nothing."""
        with self.lock:
            self._failures.append(_Failure(status, times))

    def recover(self) -> None:
        with self.lock:
            self._failures.clear()

    def incident(self, dedup_key: str) -> PagerDutyIncident | None:
        with self.lock:
            return self.incidents.get(dedup_key)

    def all_incidents(self) -> list[PagerDutyIncident]:
        with self.lock:
            return [*self.history, *self.incidents.values()]

    def received(self, action: str | None = None) -> list[ReceivedEvent]:
        with self.lock:
            return [
                e for e in self.events if action is None or (e.body or {}).get("event_action") == action
            ]

    # -- the API ------------------------------------------------------------------------------

    async def _enqueue(self, request: Request) -> Response:
        raw = await request.body()
        with self.lock:
            failure = self._failures[0] if self._failures else None
            if failure is not None:
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.pop(0)
        body = _parse(raw)
        if failure is not None:
            with self.lock:
                self.events.append(ReceivedEvent(time.time(), failure.status, body, "failed"))
            if failure.status == 400:
                return self._invalid(body, ["emulated refusal"], record=False)
            return _answer(failure.status, {"status": "error", "message": "emulated failure"})
        if len(raw) > MAX_BODY_BYTES:
            return self._invalid(body, ["Event payload is larger than 512 KB"])
        if body is None:
            return self._invalid(None, ["Request body is not valid JSON"])
        errors = validate(body)
        if errors:
            return self._invalid(body, errors)
        routing_key = str(body["routing_key"])
        with self.lock:
            if self._rate_limited(routing_key):
                self.events.append(ReceivedEvent(time.time(), 429, body, "rate limited"))
                # 05-Rate-Limits.md: "The response to the API call will say 429 - Request Limit
                # Exceeded and PagerDuty will not ingest the event."
                return _answer(429, {"status": "throttle event", "message": "Request Limit Exceeded"})
            dedup_key, outcome = self._apply(body)
            self.events.append(ReceivedEvent(time.time(), 202, body, outcome))
        return _answer(202, {"status": "success", "message": "Event processed", "dedup_key": dedup_key})

    def _invalid(self, body: dict[str, Any] | None, errors: list[str], *, record: bool = True) -> Response:
        if record:
            with self.lock:
                self.events.append(ReceivedEvent(time.time(), 400, body, "invalid"))
        return _answer(
            400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
        )

    def _rate_limited(self, routing_key: str) -> bool:
        # "approximately 120 calls/minute per integration key … calculated over a 60 second window
        # looking back from the current time".
        now = time.monotonic()
        window = self._accepted_at.setdefault(routing_key, deque())
        while window and now - window[0] > 60:
            window.popleft()
        if len(window) >= self.rate_limit_per_minute:
            return True
        window.append(now)
        return False

    def _apply(self, body: dict[str, Any]) -> tuple[str, str]:
        action = body["event_action"]
        routing_key = str(body["routing_key"])
        dedup_key = str(body.get("dedup_key") or uuid.uuid4().hex)
        current = self.incidents.get(dedup_key)
        is_open = current is not None and current.status != "resolved"
        if action == "trigger":
            if current is not None and is_open and current.routing_key == routing_key:
                current.triggers += 1
                current.log.append("trigger")
                return dedup_key, "deduplicated"
            if current is not None:
                self.history.append(current)
            payload = body["payload"]
            number = len(self.history) + len(self.incidents) + 1
            self.incidents[dedup_key] = PagerDutyIncident(
                number=number,
                dedup_key=dedup_key,
                routing_key=routing_key,
                status="triggered",
                summary=str(payload["summary"]),
                source=str(payload["source"]),
                severity=str(payload["severity"]),
                log=["trigger"],
            )
            return dedup_key, "created"
        # acknowledge / resolve: only an open incident of the same routing key takes them.
        if current is None or not is_open or current.routing_key != routing_key:
            return dedup_key, "dropped"
        current.log.append(action)
        if action == "acknowledge":
            if current.status == "triggered":
                current.status = "acknowledged"
            return dedup_key, "acknowledged"
        current.status = "resolved"
        return dedup_key, "resolved"


def _parse(raw: bytes) -> dict[str, Any] | None:
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _answer(status: int, body: dict[str, Any]) -> Response:
    return JSONResponse(body, status_code=status)


def validate(body: dict[str, Any]) -> list[str]:
    """The Events API v2's checks of one event (02-Trigger-Events.md's parameter table)."""
    errors: list[str] = []
    routing_key = body.get("routing_key")
    if not isinstance(routing_key, str) or not routing_key:
        errors.append("'routing_key' is missing or blank")
    elif len(routing_key) != ROUTING_KEY_LENGTH:
        errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    action = body.get("event_action")
    if action not in ACTIONS:
        errors.append(
            "'event_action' is invalid (must be one of the following: 'trigger', 'acknowledge' or "
            "'resolve')"
        )
    dedup_key = body.get("dedup_key")
    if dedup_key is not None and (not isinstance(dedup_key, str) or len(dedup_key) > DEDUP_KEY_MAX):
        errors.append("'dedup_key' must be a string of at most 255 characters")
    if action in ("acknowledge", "resolve") and not dedup_key:
        errors.append("'dedup_key' is required for acknowledge and resolve events")
    if action == "trigger":
        payload = body.get("payload")
        if not isinstance(payload, dict):
            errors.append("'payload' is missing or not an object")
        else:
            summary = payload.get("summary")
            if not isinstance(summary, str) or not summary.strip():
                errors.append("'payload.summary' is missing or blank")
            elif len(summary) > SUMMARY_MAX:
                errors.append("'payload.summary' is longer than 1024 characters")
            if not isinstance(payload.get("source"), str) or not payload["source"].strip():
                errors.append("'payload.source' is missing or blank")
            if payload.get("severity") not in SEVERITIES:
                errors.append(
                    "'payload.severity' is invalid (must be one of the following: 'critical', 'warning', "
                    "'error' or 'info')"
                )
    return errors
