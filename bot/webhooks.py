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
class WebhookEvent:
    resource: str  # "formation", "release", …
    action: str  # "create", "update", "destroy"

    @property
    def relevant(self) -> bool:
        return self.resource in RESOURCES


def parse_event(body: bytes) -> WebhookEvent | None:
    """The event's resource and action; None when the body is not a Heroku webhook event."""
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
    return WebhookEvent(resource=resource, action=action)
