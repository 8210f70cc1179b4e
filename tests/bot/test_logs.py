"""bot.logs.RedactingFilter: configured secrets and URL passwords never leave a log record.

The URL rule's cases and its linear time are in tests/bot/test_hardening.py; the end-to-end
control (the filter on and off under the session's secret scan) in tests/hostile/test_secrets.py.
"""

from __future__ import annotations

import io
import logging
import sys

from bot.logs import RedactingFilter

SECRET = "tok-0123456789"


def formatted(redactor: RedactingFilter, msg: str, *args: object, exc: BaseException | None = None) -> str:
    """The line a handler carrying the filter writes for one record."""
    record = logging.LogRecord("lib", logging.ERROR, __file__, 1, msg, args or None, None)
    if exc is not None:
        try:
            raise exc
        except BaseException:  # noqa: BLE001 - captured for the record, as logging does
            record.exc_info = sys.exc_info()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(redactor)
    handler.handle(record)
    return stream.getvalue()


def test_a_configured_secret_is_scrubbed_from_the_message_its_arguments_and_the_traceback() -> None:
    redactor = RedactingFilter([SECRET])
    assert formatted(redactor, f"token {SECRET} refused") == "token [redacted] refused\n"
    assert formatted(redactor, "token %s refused (%d)", SECRET, 3) == "token [redacted] refused (3)\n"
    line = formatted(redactor, "failed", exc=RuntimeError(f"bad token {SECRET}"))
    assert "RuntimeError: bad token [redacted]" in line and SECRET not in line


def test_secrets_added_later_are_scrubbed_too_and_short_ones_are_not_secrets() -> None:
    redactor = RedactingFilter(["", "abc"])  # too short to mean anything: scrubbing them would garble logs
    assert formatted(redactor, "abc %s", SECRET) == f"abc {SECRET}\n"
    redactor.add(SECRET)
    assert formatted(redactor, "abc %s", SECRET) == "abc [redacted]\n"


def test_a_url_password_is_scrubbed_wherever_the_record_carries_it() -> None:
    redactor = RedactingFilter()
    url = "postgres://u:hunter2hunter2@db.example.com:5432/d"
    assert formatted(redactor, "connect %s", url) == "connect postgres://u:[redacted]@db.example.com:5432/d\n"
    line = formatted(redactor, "failed", exc=ValueError(f"bad {url}"))
    assert "hunter2" not in line and "postgres://u:[redacted]@db.example.com" in line


def test_clean_records_are_left_as_they_are() -> None:
    redactor = RedactingFilter([SECRET])
    record = logging.LogRecord("lib", logging.INFO, __file__, 1, "%d rows from %s", (3, "web.1"), None)
    assert redactor.filter(record) is True
    assert record.getMessage() == "3 rows from web.1"
