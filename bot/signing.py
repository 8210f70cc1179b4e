"""Slack request signatures, checked over the raw bytes before anything parses the request.

Bolt verifies as well, but it decodes the body and parses the timestamp first: a body
that is not UTF-8, a timestamp that is not a number or a signature that is not ASCII
made it raise, which answered 500 instead of 401. This check never raises — whatever
the bytes, the answer is yes or no — and with no signing secret it says no to
everything (an empty HMAC key is one anybody can sign with).

The headers are checked on their own first (`headers_fresh`), so a request that can
never pass is refused before its body is read at all.
"""

from __future__ import annotations

import hashlib
import hmac
import time

MAX_AGE_S = 5 * 60
# Unix seconds have 10 digits until the year 2286. int() of a longer run is wasted work,
# and beyond 4,300 digits it raises ValueError (Python's int max_str_digits).
_MAX_TIMESTAMP_DIGITS = 12
# "v0=" and 64 hex digits.
_SIGNATURE_CHARS = 3 + 64

# The most /slack/events reads. Slack's largest requests are interactions that carry a whole
# message or view: at most 50 (message) or 100 (modal) blocks of at most 3,000 characters of
# text each, JSON- and then form-encoded (up to ~3 bytes per character): a few hundred KB.
# Slash commands and Events API callbacks are a few KB. 1 MiB leaves room and keeps a flood
# of big bodies from taking a 512 MB dyno down (api.slack.com/reference/block-kit/blocks).
MAX_BODY_BYTES = 1024 * 1024


def headers_fresh(
    secret: str, timestamp: str | None, signature: str | None, *, now: float | None = None
) -> bool:
    """Whether a request with these headers could be valid at all (before reading its body)."""
    if not secret or not timestamp or not signature or len(signature) != _SIGNATURE_CHARS:
        return False
    if len(timestamp) > _MAX_TIMESTAMP_DIGITS or not (timestamp.isascii() and timestamp.isdigit()):
        return False
    return abs((time.time() if now is None else now) - int(timestamp)) <= MAX_AGE_S


def signature_valid(
    secret: str, body: bytes, timestamp: str | None, signature: str | None, *, now: float | None = None
) -> bool:
    """Slack's v0 scheme: `v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{body}`, within 5 minutes."""
    if not headers_fresh(secret, timestamp, signature, now=now):
        return False
    assert timestamp is not None and signature is not None
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    # Header values arrive latin-1 decoded; compare bytes so any byte compares, in constant time.
    return hmac.compare_digest(expected.encode(), signature.encode("latin-1", "replace"))
