"""PagerDuty Events API v2: the events pgconn sends and what PagerDuty's answers mean.

One endpoint, `POST {PGCONN_PAGERDUTY_URL}/v2/enqueue`, one JSON event per request. From
PagerDuty's documentation (github.com/PagerDuty/developer-docs, docs/events-API-v2/):

- 02-Trigger-Events.md: `routing_key` is "the 32 character Integration Key"; `event_action` is
  `trigger`, `acknowledge` or `resolve`; `dedup_key` (at most 255 characters) correlates them, so
  pgconn sends the incident's id as the key: a trigger sent twice (a retry, two processes) is
  applied to the one open alert, and the acknowledge / resolve pgconn sends later reach it. A
  trigger needs `payload.summary` (at most 1024 characters), `payload.source` and
  `payload.severity` (`critical`, `error`, `warning`, `info`).
- 01-Overview.md, "Response Codes & Retry Logic": 202 accepted; 400 "Check that the JSON is
  valid", not to be retried; 429 "retry after some time", "preferably with a backoff of a few
  minutes"; 500 or any 5xx and network errors: retry after some time.

`send` maps every answer to one of three outcomes at this single boundary: accepted, refused (a
400: retrying the same event cannot help; the thread says why) and retry (429, 5xx, no answer).
The routing key travels only in the request body; it is never in a result, a message or a log line.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

log = logging.getLogger(__name__)

Action = Literal["trigger", "acknowledge", "resolve"]
Outcome = Literal["accepted", "refused", "retry"]
ENQUEUE_PATH = "/v2/enqueue"
SUMMARY_MAX = 1024
DEDUP_KEY_MAX = 255
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Event:
    """One Events API v2 event about one pgconn incident."""

    action: Action
    routing_key: str = field(repr=False)  # a secret: whoever holds it can page the team
    dedup_key: str
    # For a trigger only.
    summary: str = ""
    source: str = ""
    severity: str = "critical"
    details: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "routing_key": self.routing_key,
            "event_action": self.action,
            "dedup_key": self.dedup_key[:DEDUP_KEY_MAX],
        }
        if self.action == "trigger":
            body["payload"] = {
                "summary": self.summary[:SUMMARY_MAX],
                "source": self.source,
                "severity": self.severity,
                "component": "postgres",
                "class": "too many connections",
                "custom_details": self.details,
            }
            body["client"] = "pgconn"
        return body


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    status: int | None  # HTTP status; None when no answer came
    detail: str  # for the thread: what PagerDuty said, in its words


async def send(http: httpx.AsyncClient, base_url: str, event: Event) -> Result:
    """POST one event; never raises for anything PagerDuty or the network does."""
    try:
        response = await http.post(
            base_url.rstrip("/") + ENQUEUE_PATH, json=event.body(), timeout=TIMEOUT_S
        )
    except httpx.HTTPError as exc:
        return Result("retry", None, f"no answer ({type(exc).__name__})")
    return classify(response.status_code, response.content)


def classify(status: int, content: bytes) -> Result:
    """What an answer means for the event (01-Overview.md's table). Pure."""
    try:
        body = json.loads(content or b"{}")
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = str(body.get("message") or "")[:200]
    if status == 202:
        return Result("accepted", status, message or "Event processed")
    if status == 400:
        errors = body.get("errors")
        said = "; ".join(str(e)[:200] for e in errors[:3]) if isinstance(errors, list) else ""
        what = str(body.get("status") or "invalid event")[:40]
        return Result("refused", status, f"{what}: {said or message or 'bad request'}")
    if status == 429 or status >= 500:
        return Result("retry", status, message or ("rate limited" if status == 429 else "server error"))
    # Anything else (401, 403, 404 behind a proxy, a redirect): not PagerDuty's documented answers;
    # retrying as-is cannot fix a wrong URL or key, so it is reported like a refusal.
    return Result("refused", status, message or f"unexpected HTTP {status}")
