"""Logging set-up: one line per event, and a last line of defence against leaked secrets.

Code never logs secrets on purpose; this filter also scrubs the configured ones and
anything that looks like a credential in a URL, in case a library does.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

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


def configure_logging(level: str, secrets: Iterable[str]) -> RedactingFilter:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    redactor = RedactingFilter(secrets)
    handler.addFilter(redactor)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    return redactor
