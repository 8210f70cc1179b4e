"""Heroku HTTPS log-drain bodies (logplex-1) → LogLines. Pure: no I/O.

A logplex POST body is a run of octet-counted RFC 5424 messages (RFC 6587
"octet counting"):

    83 <40>1 2012-11-30T06:45:29+00:00 host app web.3 - State changed from starting to up\\n

`83` is the byte length of what follows the single space, the trailing newline
included. Heroku's syslog header has one `-` (MSGID) and *no* structured-data
field, so the message starts right after `PROCID - `.

What decides a 400 is the framing, never the content: a count that is not a
number or runs past the end raises MalformedFrame (the only exception this
module raises for any input bytes); a correctly framed message whose syslog
header does not parse is kept, with empty header fields and its raw text.

Speed matters (a busy app sends thousands of lines a second through one
process), so the loop works on bytes with `find`/slices and one `split` per
message — no regex per line.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.errors import MalformedFrame

# Logplex batches a few hundred lines of at most ~10 KB each; anything bigger
# is not a drain talking to us. The route should check Content-Length with
# check_body_size() before reading the body; parse_frames checks again.
MAX_BODY_BYTES = 1024 * 1024

# The octet count of a message inside MAX_BODY_BYTES has at most 7 digits; a
# longer digit run cannot fit, so looking further for the space is pointless.
_MAX_COUNT_DIGITS = len(str(MAX_BODY_BYTES))


@dataclass(frozen=True, slots=True)
class LogLine:
    """One syslog message from a drain.

    app_name is "app" for the app's own output (and heroku-postgres metrics),
    "heroku" for platform lines (router, dyno manager); proc_id is e.g.
    "web.3", "router", "heroku-postgres", "postgres.1234". Both are "" when
    the syslog header could not be parsed; message then holds the raw text.
    """

    timestamp: str
    hostname: str
    app_name: str
    proc_id: str
    message: str


def check_body_size(size: int) -> None:
    """Raise MalformedFrame when a body of `size` bytes is too large to be a drain frame.

    For the HTTP route to call with Content-Length before reading the body.
    """
    if size > MAX_BODY_BYTES:
        raise MalformedFrame(f"body of {size} bytes exceeds {MAX_BODY_BYTES}")


def parse_frames_partly(body: bytes) -> tuple[list[LogLine], MalformedFrame | None]:
    """The messages before the first framing error, and that error (None when there is none).

    Logplex drops a frame for good on a 4xx (other than 429), so a body whose head parses is
    used for what it holds rather than refused whole.
    """
    lines: list[LogLine] = []
    try:
        parse_frames(body, lines)
    except MalformedFrame as exc:
        return lines, exc
    return lines, None


def parse_frames(body: bytes, into: list[LogLine] | None = None) -> list[LogLine]:
    """Split a logplex-1 body into LogLines, in order.

    Raises MalformedFrame (with the byte offset) for: an empty body (Heroku
    never posts one, so it is a misconfigured sender), an oversized body, a
    missing or non-numeric count, a count with a leading zero (RFC 6587:
    NONZERO-DIGIT *DIGIT, so zero-length frames are invalid too), a count that
    runs past the end, and anything between frames (no separators allowed: a
    count that is too short leaves the tail of its message where the next
    count should be, which is exactly how a wrong count is noticed).
    """
    n = len(body)
    if n == 0:
        raise MalformedFrame("empty body")
    check_body_size(n)
    lines: list[LogLine] = [] if into is None else into
    append = lines.append
    find = body.find
    pos = 0
    while pos < n:
        sp = find(b" ", pos, pos + _MAX_COUNT_DIGITS + 1)
        if sp <= pos:  # -1: no space in reach; == pos: count is empty
            raise MalformedFrame(f"expected an octet count at byte {pos}")
        digits = body[pos:sp]
        # bytes.isdigit() is ASCII-only, so int() below cannot fail or accept
        # "+1", " 1" or "1_0".
        if not digits.isdigit() or digits[0] == 48:  # 48 == ord("0")
            raise MalformedFrame(f"bad octet count {_show(digits)} at byte {pos}")
        start = sp + 1
        end = start + int(digits)
        if end > n:
            raise MalformedFrame(
                f"frame at byte {pos} claims {int(digits)} bytes, only {n - start} left"
            )
        append(_parse_message(body[start:end]))
        pos = end
    return lines


def _parse_message(raw: bytes) -> LogLine:
    # Non-UTF-8 output from an app is content, not a framing error.
    text = raw.decode("utf-8", "replace")
    # Heroku ends every message with "\n" (counted in the octets); exactly one
    # is stripped so a message that really ends in newlines keeps the rest.
    if text[-1:] == "\n":
        text = text[:-1]
    # "<PRI>1 TIMESTAMP HOST APP PROC MSGID MSG": MSG keeps any spaces.
    parts = text.split(" ", 6)
    if len(parts) >= 6:
        head = parts[0]
        # "<190>1": PRI of 1-3 digits, then version 1.
        if head[:1] == "<" and head[-2:] == ">1" and head[1:-2].isdigit():
            return LogLine(
                parts[1], parts[2], parts[3], parts[4], parts[6] if len(parts) == 7 else ""
            )
    return LogLine("", "", "", "", text)


def _show(raw: bytes) -> str:
    """A short, printable rendering of offending bytes for an error message."""
    return repr(raw[:12])
