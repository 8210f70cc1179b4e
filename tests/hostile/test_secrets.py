"""Secrets never reach Slack or a log.

The suite runs with recognisable secrets (tests.support.SECRETS: the Heroku API key, the
app's database password, the signing secret, the bot token, the drain token). The last
test of the run reads everything every Slack emulator received during the whole session
and every log line of every bot process the session started, and finds none of them.
The bot token is expected in one place only: the Authorization header of Web API calls.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import quote, urlsplit

import pytest

from sandbox.process import ROOT
from tests.bot.samples import fatal_line, frame
from tests.conftest import System
from tests.hostile.conftest import TRAFFIC
from tests.hostile.helpers import (
    basic_auth,
    click,
    dedicated_bot,
    ephemeral,
    post_drain,
    post_report,
    slash,
    thread_reply,
)
from tests.hostile.log_control import PLANTED
from tests.support import API_KEY, DB_PASSWORD, DRAIN_TOKEN, SECRETS


def forms(secret: str) -> set[str]:
    """The secret as it would appear raw, URL-encoded, or base64'd (alone or as a password)."""
    return {
        secret,
        quote(secret, safe=""),
        base64.b64encode(secret.encode()).decode().rstrip("="),
        base64.b64encode(f"x:{secret}".encode()).decode().rstrip("="),
    }


def slack_texts() -> Iterator[tuple[str, str]]:
    for call in TRAFFIC.slack_calls:
        headers = {k: v for k, v in call.headers.items() if k.lower() != "authorization"}
        where = f"Slack {call.method}"
        yield where, call.body.decode("utf-8", "replace")
        yield where, call.query
        yield where, json.dumps(headers)
        yield where, json.dumps(call.params, default=str)
    for answer in TRAFFIC.bot_answers:
        yield "a bot's answer to Slack", answer


def leaks(texts: Iterator[tuple[str, str]]) -> list[str]:
    found = []
    for where, text in texts:
        for secret in SECRETS:
            for form in forms(secret):
                if form in text:
                    at = text.index(form)
                    found.append(f"{where}: {text[max(0, at - 60):at + 60]!r}")
    return found


def found(texts: Iterator[tuple[str, str]]) -> set[str]:
    """Which secrets the scan finds, in any of their forms."""
    return {s for where, text in texts for s in SECRETS for form in forms(s) if form in text}


def control_log(path: str, mode: str) -> str:
    """What pgconn's logging set-up writes when secrets are planted at `path`, with the
    redacting filter on (as built) or off (removed)."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.hostile.log_control", path, mode],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


@pytest.mark.parametrize(
    "path",
    [
        "exception",
        "library",
        "uvicorn",
    ],
)
def test_the_scan_finds_planted_secrets_without_the_filter_and_none_with_it(path: str) -> None:
    """The positive control: the whole-session scan below could pass by seeing nothing. Here
    the same scan (`leaks`) reads a log in which secrets were planted where the scrubber must
    catch them: it must find each one when the filter is removed, and none when it is on."""
    unfiltered = control_log(path, "off")
    assert found(iter([("unfiltered", unfiltered)])) == PLANTED[path], unfiltered
    filtered = control_log(path, "on")
    assert "[redacted]" in filtered
    assert leaks(iter([("filtered", filtered)])) == []


@pytest.fixture
def debug_bot(system: System) -> Iterator[None]:
    with dedicated_bot(system, PGCONN_LOG_LEVEL="DEBUG"):
        yield


async def test_a_debug_logging_bot_leaks_nothing_through_its_noisiest_paths(
    system: System, debug_bot: None
) -> None:
    """The paths that handle secrets, at DEBUG: database URLs with passwords (reachable and
    not), a rejected API key, the drain token right and wrong, every action."""
    bot = system.bot if system.slack.request_url == system.bot.events_url else None
    assert bot is None
    process = TRAFFIC.bots[-1]
    report = await post_report(system)
    await slash(system, "bare-app")  # DATABASE_URL (with its password) points at a closed port
    await system.slack.wait_for(lambda: len(system.slack.messages("C0OPS")) >= 2, timeout=15)
    system.load.open(3, "web.1")
    for action_id, label in (("pgconn.kill_idle", "Kill idle"), ("pgconn.add_pgbouncer", "Add PgBouncer")):
        await click(system, report, action_id)
        await thread_reply(system, report, label)
    system.heroku.inject(path="/addon-attachments", status=401)
    await slash(system, "my-app")
    assert "HEROKU_API_KEY" in await ephemeral(system, "HEROKU_API_KEY")
    await slash(system, "my-app watch")
    await ephemeral(system, "receives")
    # The drain URL watch registered carries my-app's own password (bot.drain_auth).
    drain = urlsplit(system.heroku.apps["my-app"].log_drains[0].url)
    nonce, per_app = str(drain.username), str(drain.password)
    tries = ((nonce, per_app), ("x", DRAIN_TOKEN), (nonce, per_app + "x"), (nonce, per_app[:-1]))
    for user, password in tries:
        await post_drain(process, "my-app", frame([fatal_line()]), authorization=basic_auth(user, password))
    await system.slack.wait_for(
        lambda: [m for m in system.slack.messages("C0ALERTS") if "out of database connections" in m.text],
        timeout=20,
    )
    process.stop()
    log = process.logs()
    assert " at=debug " in log and len(log) > 20_000
    assert leaks(iter([("the DEBUG bot's log", log)])) == []
    assert API_KEY in system.heroku.requests[0].headers["authorization"]  # it was in use all along
    assert DB_PASSWORD in system.heroku.apps["bare-app"].config_vars["DATABASE_URL"]


def test_no_secret_reached_slack_or_any_bot_log() -> None:
    """Runs last (see conftest): the whole session's Slack traffic and bot logs."""
    # The scan itself sees each secret in each form it looks for (on real logs: the control above).
    assert all(leaks(iter([("planted", f"x{form}y")])) for secret in SECRETS for form in forms(secret))
    texts = list(slack_texts())
    logs = [(f"bot log {bot.log_path}", bot.logs()) for bot in TRAFFIC.bots]
    scanned = sum(len(text) for _, text in texts + logs)
    # Proof the scan covers a real run, not an empty list: every bot's log was read, and in a
    # whole-suite run (hundreds of tests) the traffic of hundreds of end-to-end tests.
    assert TRAFFIC.bots and all(bot.log_path is not None and bot.log_path.exists() for bot in TRAFFIC.bots)
    assert max(len(text) for _, text in logs) > 1000
    assert TRAFFIC.slack_calls and TRAFFIC.bot_answers
    if TRAFFIC.tests >= 300:
        assert len(TRAFFIC.slack_calls) >= 400, len(TRAFFIC.slack_calls)
        assert len(TRAFFIC.bot_answers) >= 300, len(TRAFFIC.bot_answers)
        assert len(TRAFFIC.bots) >= 8, len(TRAFFIC.bots)
        assert scanned > 1_000_000, scanned
        assert sum(1 for c in TRAFFIC.slack_calls if c.method == "chat.postMessage") >= 150
    print(
        f"secret scan: {len(TRAFFIC.slack_calls)} Slack calls, {len(TRAFFIC.bot_answers)} bot answers, "
        f"{len(TRAFFIC.bots)} bot logs, {scanned:,} characters, {len(SECRETS)} secrets × 4 encodings"
    )
    assert leaks(iter(texts + logs)) == []
