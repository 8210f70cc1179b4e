"""Everything pgconn logs, uvicorn's loggers included, goes through the scrubber and comes out
as one logfmt line per event (what `heroku logs` shows best)."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import threading
import warnings
from collections.abc import Iterator

import pytest

from bot.config import Settings
from bot.logs import configure_logging
from pgconn.main import server_config
from tests.conftest import System
from tests.support import API_KEY, BOT_TOKEN

LINE = re.compile(
    r'^time=\S+Z at=[a-z]+ logger=\S+ msg=("(?:[^"\\]|\\.)*"|\S+)( (error|stack)="(?:[^"\\]|\\.)*")*$'
)
SETTINGS = Settings.from_env(
    {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": "s",
        "HEROKU_API_KEY": API_KEY,
        "PGCONN_APPS": "my-app",
    }
)


@pytest.fixture
def fresh_logging() -> Iterator[None]:
    """configure_logging changes process-wide state: put it back afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level, sys.excepthook, threading.excepthook
    uvicorn_loggers = [logging.getLogger(n) for n in ("uvicorn", "uvicorn.error", "uvicorn.access")]
    uvicorn_saved = [(lg, lg.handlers[:], lg.propagate) for lg in uvicorn_loggers]
    # As in a fresh process: the emulators' own uvicorn servers in this test process configured
    # these loggers with uvicorn's defaults (handlers of their own, no propagation).
    for lg in uvicorn_loggers:
        lg.handlers[:], lg.propagate = [], True
    yield
    root.handlers[:], level, sys.excepthook, threading.excepthook = saved
    root.setLevel(level)
    logging.captureWarnings(False)
    for lg, handlers, propagate in uvicorn_saved:
        lg.handlers[:], lg.propagate = handlers, propagate


def test_uvicorn_and_library_loggers_go_through_the_scrubber_as_logfmt(
    fresh_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", [API_KEY, BOT_TOKEN])
    server_config(object(), SETTINGS)  # what `python -m bot` builds; uvicorn sets up logging here
    assert all(not logging.getLogger(n).handlers for n in ("uvicorn", "uvicorn.error"))
    logging.getLogger("uvicorn.error").error("could not bind with key %s", API_KEY)
    logging.getLogger("httpx").warning("GET https://user:hunter2hunter2@api.example.com/x failed")
    try:
        raise RuntimeError(f"token {BOT_TOKEN}\nsecond line")
    except RuntimeError:
        logging.getLogger("slack_bolt").exception("listener failed")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn(f"deprecated, key {API_KEY}", DeprecationWarning, stacklevel=1)
    thread = threading.Thread(target=lambda: (_ for _ in ()).throw(ValueError(API_KEY)), name="worker")
    thread.start()
    thread.join()

    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 5, err  # five events, five lines: tracebacks included
    assert all(LINE.match(line) for line in lines), err
    assert API_KEY not in err and BOT_TOKEN not in err and "hunter2" not in err
    assert "logger=uvicorn.error" in lines[0] and "[redacted]" in lines[0]
    assert 'stack="Traceback (most recent call last):\\n' in lines[2]
    assert "logger=py.warnings" in lines[3]
    assert "uncaught exception in thread worker" in lines[4]


async def test_the_running_bot_logs_only_logfmt_lines_uvicorn_included(system: System) -> None:
    """An invalid HTTP request makes uvicorn itself log ("Invalid HTTP request received.")."""
    reader, writer = await asyncio.open_connection("127.0.0.1", int(system.bot.env["PORT"]))
    writer.write(b"\x16\x03\x01 not http at all\r\n\r\n")
    await writer.drain()
    await reader.read()
    writer.close()
    await system.slack.wait_for(lambda: "logger=uvicorn.error" in system.bot.logs(), timeout=10)
    lines = system.bot.logs().splitlines()
    assert [line for line in lines if not LINE.match(line)] == []
