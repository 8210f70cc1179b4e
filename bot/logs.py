"""Logging set-up: one line per event, and a last line of defence against leaked secrets.

Code never logs secrets on purpose; this filter also scrubs the configured ones and
anything that looks like a credential in a URL, in case a library does.

Every logger ends at the root's one handler, uvicorn's included (it is started with
`log_config=None`, so it installs no handlers of its own), and every line is logfmt, the
convention of Heroku's own lines (`at=info method=GET path=…`): `heroku logs` shows one event
per line, a traceback included (in `stack="…"`, its newlines escaped).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from collections.abc import Iterable
from types import TracebackType

# `scheme://user:password@` → `scheme://user:[redacted]@`. Linear in the length of the text
# (the unbounded form, `\w+://[^:/\s@]*:[^@\s]+@`, took ~3 s on 40 KB of crafted input, as
# every start position rescanned the rest): a scheme starts only where a word does, and no part
# runs past a "/", which ends a URL's userinfo (RFC 3986 §3.2.1: userinfo has no "/", "?" or
# "#"), so each character is scanned a bounded number of times.
_URL_PASSWORD = re.compile(r"((?<!\w)\w{1,32}://[^:/\s@]{0,256}:)[^\s/?#]{1,1024}@")


class RedactingFilter(logging.Filter):
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = {s for s in secrets if s and len(s) >= 6}

    def add(self, secret: str) -> None:
        if secret and len(secret) >= 6:
            self._secrets.add(secret)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "[redacted]")
        return _URL_PASSWORD.sub(r"\1[redacted]@", text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        clean = self.scrub(message)
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        return True


_BARE = re.compile(r"^[^\s\"=\\\x00-\x1f\x7f]+$")


def logfmt_value(value: str) -> str:
    """A logfmt value: bare when it can be, else double-quoted with JSON's escapes (newlines
    and every control character escaped, so one event is always one line)."""
    return value if _BARE.match(value) else json.dumps(value, ensure_ascii=False)


class LogfmtFormatter(logging.Formatter):
    """`time=2026-01-01T12:00:00.123Z at=warning logger=bot.alerts msg="…" [error=… stack="…"]`.

    Each value is scrubbed before it is quoted (a secret with a quote or backslash in it would
    not match once escaped)."""

    def __init__(self, redactor: RedactingFilter) -> None:
        super().__init__()
        self._redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        fields = [
            ("time", f"{stamp}.{int(record.msecs):03d}Z"),
            ("at", record.levelname.lower()),
            ("logger", record.name),
            ("msg", record.getMessage()),
        ]
        if record.exc_info:
            exc = record.exc_info[1]
            if exc is not None:
                detail = str(exc)
                fields.append(("error", f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__))
        stack = record.exc_text or (self.formatException(record.exc_info) if record.exc_info else "")
        if record.stack_info:
            stack = f"{stack}\n{record.stack_info}".strip()
        if stack:
            fields.append(("stack", stack))
        scrub = self._redactor.scrub
        return " ".join(f"{key}={logfmt_value(scrub(value))}" for key, value in fields)


def configure_logging(level: str, secrets: Iterable[str]) -> RedactingFilter:
    """One handler on the root, through the scrubber, in logfmt; warnings and uncaught
    exceptions (main thread and others) become log events too, so nothing bypasses it."""
    handler = logging.StreamHandler(sys.stderr)
    redactor = RedactingFilter(secrets)
    handler.setFormatter(LogfmtFormatter(redactor))
    handler.addFilter(redactor)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)

    def excepthook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        logging.getLogger("pgconn").critical("uncaught exception", exc_info=(kind, exc, tb))

    def thread_excepthook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            logging.getLogger("pgconn").error(
                "uncaught exception in thread %s",
                args.thread.name if args.thread else "?",
                exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
            )

    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook
    return redactor
