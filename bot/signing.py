"""Slack request signatures, checked over the raw bytes before anything parses the request.

Bolt verifies as well, but it decodes the body and parses the timestamp first: a body
that is not UTF-8, a timestamp that is not a number or a signature that is not ASCII
made it raise, which answered 500 instead of 401. This check never raises — whatever
the bytes, the answer is yes or no — and with no signing secret it says no to
everything (an empty HMAC key is one anybody can sign with).
"""

from __future__ import annotations

import hashlib
import hmac
import time

MAX_AGE_S = 5 * 60


def signature_valid(
    secret: str, body: bytes, timestamp: str | None, signature: str | None, *, now: float | None = None
) -> bool:
    """Slack's v0 scheme: `v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{body}`, within 5 minutes."""
    if not secret or not timestamp or not signature:
        return False
    if not (timestamp.isascii() and timestamp.isdigit()):
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > MAX_AGE_S:
        return False
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    # Header values arrive latin-1 decoded; compare bytes so any byte compares, in constant time.
    return hmac.compare_digest(expected.encode(), signature.encode("latin-1", "replace"))
