"""Fuzzing the running bot (hypothesis): /pgconn text, block_actions payloads and drain bodies
go over real HTTP to the real process. Every case ends in a clear answer — an HTTP status
below 500, and for a slash command a message to the person — and the process keeps serving.

The pure parsers have their own property tests (tests/bot/test_commands.py, test_drain.py);
these check the whole path: Bolt, the listeners, the drain route and the alert engine.
"""

from __future__ import annotations

import copy
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.signing import signature_valid
from emulators.slack import slack_signature
from tests.bot.samples import app_line, fatal_line, frame, frame_bytes, metric_line, router_line
from tests.conftest import System
from tests.harness import ADMIN, GROUP_MEMBER, OPS_CHANNEL, BotProcess, settled
from tests.hostile.helpers import basic_auth, click_payload, deliver_payload, post_drain, post_report
from tests.support import drain_credentials


@pytest.fixture(scope="module", autouse=True)
def log_start(bot: BotProcess) -> int:
    """Where the session bot's log stood before this module's fuzzing began."""
    return len(bot.logs())


E2E = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], database=None
)

# Text as people type it, and as nobody should: unicode, control characters, very long.
slash_texts = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), max_size=300),
    st.text(st.characters(codec="ascii"), min_size=190, max_size=5000),
    st.lists(
        st.sampled_from(["my-app", "MY-APP", "std-app", "budget", "audit", "watch", "diagnose", "help",
                         "\x00", "\u202e", "<!channel>", "`", "*", "\n", "\t", "💥", "my-app\u200b"]),
        max_size=6,
    ).map(" ".join),
)


@given(text=slash_texts)
@E2E
async def test_any_slash_command_text_gets_an_answer(system: System, text: str) -> None:
    url = system.slack.new_response_url(channel=OPS_CHANNEL, user=ADMIN)
    token = url.rsplit("/", 1)[-1]
    messages = len(system.slack.messages(OPS_CHANNEL))
    response = await system.slack.send_slash_command(
        text, user_id=ADMIN, channel_id=OPS_CHANNEL, response_url=url
    )
    assert response.status_code == 200
    # The answer: through the response URL (errors, help, audit…) or a report in the channel.
    await system.slack.wait_for(
        lambda: any(r.token == token for r in system.slack.responses)
        or len(system.slack.messages(OPS_CHANNEL)) > messages,
        timeout=15,
    )
    assert system.bot.alive()


# --- block_actions payloads -------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
PATHS: list[tuple[Any, ...]] = [
    ("type",), ("user",), ("user", "id"), ("actions",), ("actions", 0), ("actions", 0, "action_id"),
    ("actions", 0, "value"), ("actions", 0, "action_ts"), ("actions", 0, "selected_option"),
    ("container",), ("container", "message_ts"), ("container", "channel_id"), ("channel",),
    ("channel", "id"), ("message",), ("message", "ts"), ("message", "thread_ts"), ("response_url",),
    ("team",), ("api_app_id",),
]
mutations = st.lists(
    st.tuples(st.sampled_from(PATHS), st.one_of(st.just("delete"), json_values.map(lambda v: ("set", v)))),
    min_size=1,
    max_size=4,
)


def mutate(payload: dict[str, Any], changes: list[tuple[tuple[Any, ...], Any]]) -> Any:
    out = copy.deepcopy(payload)
    for path, change in changes:
        node: Any = out
        for step in path[:-1]:
            try:
                node = node[step]
            except (KeyError, IndexError, TypeError):
                node = None
                break
        if not isinstance(node, dict | list):
            continue
        last = path[-1]
        if change == "delete":
            if isinstance(node, dict):
                node.pop(last, None)
            elif isinstance(last, int) and last < len(node):
                node.pop(last)
        elif isinstance(node, dict) or (isinstance(last, int) and last < len(node)):
            node[last] = change[1]
    return out


@given(
    action_id=st.sampled_from(["pgconn.kill_idle", "pgconn.restart", "pgconn.nonsense"]),
    changes=mutations,
)
@E2E
async def test_malformed_block_actions_payloads_never_crash_the_bot(
    system: System, action_id: str, changes: list[tuple[tuple[Any, ...], Any]]
) -> None:
    # One report for all examples (the system fixture is not reset between them).
    report = system.slack.find(OPS_CHANNEL, _REPORT[0]) if _REPORT else None
    if report is None:
        report = await post_report(system)
        _REPORT[:] = [report.ts]
    payload = mutate(click_payload(system, report, action_id), changes)
    response = await deliver_payload(system, payload)
    assert response.status_code in (200, 400, 404), response.text  # 404: Bolt has no listener for it
    assert system.bot.alive()
    await settled(system.bot)  # whatever the click set off has run to its end
    # However mangled, a payload never made anyone but an admin run anything.
    for message in system.slack.thread(OPS_CHANNEL, report.ts):
        assert message.text.split(" ran ")[0].endswith((f"<@{ADMIN}>", f"<@{GROUP_MEMBER}>")), message.text


_REPORT: list[str] = []


@given(body=st.one_of(st.binary(max_size=3000), st.text(max_size=500).map(str.encode)))
@E2E
async def test_interactivity_bodies_that_are_not_payloads_are_refused_cleanly(
    system: System, body: bytes
) -> None:
    form = urlencode({"payload": body.decode("utf-8", "replace")}).encode()
    for sent in (body, form):
        response = await system.slack.deliver(sent, kind="raw")
        # Refused as malformed, or no listener for it (Bolt's 404); a 500 would be rewritten to
        # 400 by pgconn/asgi.py, which the log check after the fuzzing catches.
        assert response.status_code in (400, 404), (response.status_code, response.text)
    assert system.bot.alive()


# --- drain bodies ------------------------------------------------------------------------------

lines = st.one_of(
    st.just(fatal_line()),
    st.builds(metric_line, st.integers(0, 25)),
    st.builds(router_line),
    st.text(max_size=200).map(app_line),
)
drain_bodies = st.one_of(
    st.binary(max_size=2000),
    st.lists(lines, min_size=1, max_size=30).map(frame),
    st.lists(st.binary(max_size=300), min_size=1, max_size=10).map(frame_bytes),
    # Framed correctly, then damaged: a byte changed, inserted or cut.
    st.tuples(
        st.lists(lines, min_size=1, max_size=10).map(frame), st.integers(0, 10_000), st.binary(max_size=2)
    ).map(lambda t: t[0][: t[1] % len(t[0])] + t[2] + t[0][t[1] % len(t[0]) + 1 :]),
)


@given(body=drain_bodies, app=st.sampled_from(["my-app", "std-app", "not-ours"]))
@E2E
async def test_any_drain_body_gets_a_clear_status(system: System, body: bytes, app: str) -> None:
    response = await post_drain(system.bot, app, body, authorization=basic_auth(*drain_credentials(app)))
    assert response.status_code in (204, 400, 404), (response.status_code, response.text)
    if app == "not-ours":
        assert response.status_code == 404
    assert system.bot.alive()


# What the log says when an input was not handled on purpose: a listener's or a task's
# last-resort handler, Bolt failing on a payload it was given, or any traceback.
UNHANDLED = (
    "failed unexpectedly", "background task", "could not dispatch", "could not read",
    "Failed to run a middleware", "Traceback",
)


async def test_after_the_fuzzing_the_bot_still_serves(system: System, log_start: int) -> None:
    await settled(system.bot)
    async with httpx.AsyncClient(timeout=10) as client:
        health = (await client.get(f"{system.bot.url}/healthz")).json()
    assert health["ok"] is True and health["redis"] == "up"
    await post_report(system)
    # Every fuzzed input was handled on purpose: answered, or refused with a reason.
    log = system.bot.logs()[log_start:]
    assert [line for line in log.splitlines() if any(u in line for u in UNHANDLED)] == []
    assert "refused a signed Slack request: " in log  # the mangled ones did reach the bot


# --- the signature check itself, as a pure function ------------------------------------------------


@given(body=st.binary(max_size=200), timestamp=st.text(max_size=14), signature=st.text(max_size=80))
@settings(max_examples=1000)
def test_signature_check_never_raises_and_accepts_only_the_real_signature(
    body: bytes, timestamp: str, signature: str
) -> None:
    now = 1_700_000_000.0
    assert signature_valid("secret", body, timestamp, signature, now=now) is False or (
        signature == slack_signature("secret", timestamp, body)
    )
    ts = str(int(now))
    assert signature_valid("secret", body, ts, slack_signature("secret", ts, body), now=now)
    assert not signature_valid("", body, ts, slack_signature("", ts, body), now=now)


def test_signature_window_is_five_minutes() -> None:
    now = time.time()
    for age, ok in ((0, True), (299, True), (300, True), (301, False), (-301, False), (3600, False)):
        ts = str(int(now) - age)
        assert signature_valid("s", b"x", ts, slack_signature("s", ts, b"x"), now=int(now)) is ok, age
