"""Heroku app webhooks, as pgconn receives them: the signature check and the event's kind.

Heroku signs every delivery with the secret given when subscribing:
`Heroku-Webhook-Hmac-SHA256` is the base64 HMAC-SHA256 of the raw body. The scheme
has no timestamp, so a captured delivery can be replayed; pgconn only drops cached
facts on one, so a replay costs a few Heroku calls and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass

SIGNATURE_HEADER = "Heroku-Webhook-Hmac-SHA256"
# What pgconn subscribes to: the formation (dyno counts and commands) and releases (config
# var changes, add-on plan changes, deploys) are what its budget and credentials come from.
INCLUDE = ("api:formation", "api:release")
RESOURCES = frozenset({"formation", "release"})
MAX_BODY_BYTES = 256 * 1024  # Heroku's formation and release payloads are a few kB
_WORD = re.compile(r"[a-z][a-z0-9_:.-]{0,39}")


def sign(secret: str, body: bytes) -> str:
    """What Heroku puts in the header for this body."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def signature_valid(secret: str | None, body: bytes, signature: str | None) -> bool:
    """Never raises; with no secret it says no to everything (an empty key anybody can sign with)."""
    if not secret or not signature:
        return False
    # Header values arrive latin-1 decoded; compare bytes so any byte compares, in constant time.
    return hmac.compare_digest(sign(secret, body).encode(), signature.strip().encode("latin-1", "replace"))


@dataclass(frozen=True)
class FormationChange:
    """What a formation event says changed: `previous_data` holds only the fields that did."""

    process_type: str
    quantity: int | None
    previous_quantity: int | None
    size: str | None
    previous_size: str | None


@dataclass(frozen=True)
class ReleaseInfo:
    version: int | None
    description: str  # "Set WEB_CONCURRENCY config vars", "Deploy 3f2a9c1e", …


@dataclass(frozen=True)
class WebhookEvent:
    resource: str  # "formation", "release", …
    action: str  # "create", "update", "destroy"
    # Heroku's id of this delivery; a retry of it (level "sync") or a replay carries the same.
    delivery_id: str | None = None
    actor: str | None = None  # the email of whoever made the change
    formation: FormationChange | None = None
    release: ReleaseInfo | None = None

    @property
    def relevant(self) -> bool:
        return self.resource in RESOURCES


def parse_event(body: bytes) -> WebhookEvent | None:
    """The event, or None when the body is not a Heroku webhook event.

    Only the fields pgconn uses are kept, each checked for type and size: they end up in
    log lines and Slack messages, and the body is outside input even when signed.
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    resource, action = data.get("resource"), data.get("action")
    if not isinstance(resource, str) or not _WORD.fullmatch(resource):
        return None
    # Both end up in a log line: only short, plain words are kept as they are.
    action = action if isinstance(action, str) and _WORD.fullmatch(action) else "unknown"
    payload = _dict(data.get("data"))
    previous = _dict(data.get("previous_data"))
    formation = None
    release = None
    if resource == "formation":
        ptype = _text(payload.get("type"), 40)
        if ptype is not None and _WORD.fullmatch(ptype):
            formation = FormationChange(
                process_type=ptype,
                quantity=_count(payload.get("quantity")),
                previous_quantity=_count(previous.get("quantity")),
                size=_text(payload.get("size"), 40),
                previous_size=_text(previous.get("size"), 40),
            )
    elif resource == "release":
        release = ReleaseInfo(
            version=_count(payload.get("version")),
            description=_text(payload.get("description"), 200) or "",
        )
    actor = _text(_dict(data.get("actor")).get("email"), 120)
    if actor is None and resource == "release":
        actor = _text(_dict(payload.get("user")).get("email"), 120)
    delivery = _text(_dict(_dict(data.get("webhook_metadata")).get("delivery")).get("id"), 64)
    return WebhookEvent(
        resource=resource,
        action=action,
        delivery_id=delivery if delivery and _ID.fullmatch(delivery) else None,
        actor=actor,
        formation=formation,
        release=release,
    )


_ID = re.compile(r"[A-Za-z0-9-]{1,64}")


def _dict(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _text(value: object, limit: int) -> str | None:
    """A short single-line string, or None."""
    if not isinstance(value, str) or not value.strip():
        return None
    return " ".join(value.split())[:limit]


def _count(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 100_000:
        return None
    return value
