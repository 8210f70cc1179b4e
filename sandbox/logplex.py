"""The sandbox's logplex: app log lines delivered to the app's HTTPS log drains, as Heroku does.

Drains are whatever the Heroku emulator has registered for the app (pgconn's own, added
by `/pgconn APP watch`), so `unwatch` really stops the alerts. Bodies are logplex-1:
RFC 5424 lines, each octet-counted, Basic auth from the drain URL's userinfo.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx

log = logging.getLogger(__name__)

# PRI 190 = local7.info: what logplex uses for a dyno's stdout/stderr.
APP_OUTPUT_PRI = 190
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def syslog_line(msg: str, *, proc: str, pri: int = APP_OUTPUT_PRI, at: datetime | None = None) -> str:
    """One line as logplex writes it: `<PRI>1 TIMESTAMP host app PROC - MSG`."""
    ts = (at or datetime.now(UTC)).isoformat(timespec="microseconds")
    return f"<{pri}>1 {ts} host app {proc} - {msg}"


def frame(lines: list[str]) -> bytes:
    """A logplex-1 body: each line newline-terminated and prefixed with its byte count."""
    out = bytearray()
    for line in lines:
        data = (line + "\n").encode()
        out += b"%d %s" % (len(data), data)
    return bytes(out)


def shown_url(url: str) -> str:
    """The drain URL without its password, for the page."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass
class Delivery:
    at: float
    url: str  # without credentials
    status: int | None
    lines: list[str]
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "url": self.url,
            "status": self.status,
            "lines": self.lines,
            "error": self.error,
        }


# Logplex re-sends the same frame (same Logplex-Frame-Id) after a 429, a 5xx, a 5 s timeout or
# a dropped connection; any other 4xx drops it for good (heroku/logplex doc/README.http_drains.md,
# src/logplex_http_drain.erl). The sandbox tries a frame this many times.
ATTEMPTS = 3


def _deliver(
    target: str, shown: str, body: bytes, headers: dict[str, str], auth: tuple[str, str], lines: list[str]
) -> Delivery:
    delivery = Delivery(time.time(), shown, None, lines, "not sent")
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(0.2 * attempt)
        try:
            response = httpx.post(target, content=body, headers=headers, auth=auth, timeout=5)
        except httpx.HTTPError as exc:
            delivery = Delivery(time.time(), shown, None, lines, type(exc).__name__)
            continue
        delivery = Delivery(time.time(), shown, response.status_code, lines)
        if response.is_success or (400 <= response.status_code < 500 and response.status_code != 429):
            break
    return delivery


@dataclass
class Logplex:
    """Ships lines to drains and remembers the last deliveries for the page."""

    deliveries: list[Delivery] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def ship(self, drains: list[tuple[str, str]], lines: list[str]) -> list[Delivery]:
        """POST `lines` to every (url, drain token); blocking (call from a worker thread)."""
        done: list[Delivery] = []
        if not lines:
            return done
        for url, token in drains:
            parts = urlsplit(url)
            shown = shown_url(url)
            if parts.scheme not in ("http", "https") or parts.hostname not in _LOOPBACK:
                # The sandbox never sends anything off this machine.
                done.append(Delivery(time.time(), shown, None, lines, "not a loopback drain: skipped"))
                continue
            target = urlunsplit(
                (
                    parts.scheme,
                    f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname),
                    parts.path,
                    parts.query,
                    "",
                )
            )
            auth = (unquote(parts.username or ""), unquote(parts.password or ""))
            headers = {
                "Content-Type": "application/logplex-1",
                "Logplex-Msg-Count": str(len(lines)),
                "Logplex-Frame-Id": secrets.token_hex(16).upper(),
                "Logplex-Drain-Token": token,
                "User-Agent": "Logplex/v123",
            }
            done.append(_deliver(target, shown, frame(lines), headers, auth, lines))
        with self._lock:
            self.deliveries.extend(done)
            del self.deliveries[:-20]
        for d in done:
            log.info("logplex: %d lines to %s -> %s", len(d.lines), d.url, d.status or d.error)
        return done

    def recent(self) -> list[dict[str, Any]]:
        with self._lock:
            return [d.to_json() for d in reversed(self.deliveries)]
