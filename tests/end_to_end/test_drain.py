"""The drain route over real HTTP to a running bot: framing, auth, and what reaches Slack."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import pytest

from bot.drain import MAX_BODY_BYTES
from handlers.drain import authorised, drain_password
from tests.bot.samples import app_line, fatal_line, fatal_message, frame, frame_bytes, router_line
from tests.end_to_end.conftest import Alerts, blocks_of
from tests.support import DRAIN_TOKEN, drain_credentials


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# --- credentials, as a pure function ------------------------------------------------


def test_drain_password_parsing() -> None:
    assert drain_password(basic("x", "s3cret")) == "s3cret"
    assert drain_password(basic("", "with:colon")) == "with:colon"
    assert drain_password("basic " + base64.b64encode(b"x:y").decode()) == "y"
    for bad in (None, "", "Basic", "Bearer abc", "Basic !!!notbase64", basic("x", "y")[:-2] + "=",
                "Basic " + base64.b64encode(b"no-colon").decode(),
                "Basic " + base64.b64encode(b"x:\xff\xfe").decode()):
        assert drain_password(bad) is None, bad


def test_no_drain_token_configured_means_nothing_is_accepted() -> None:
    nonce, password = drain_credentials("my-app")
    assert authorised(basic(nonce, password), DRAIN_TOKEN, "my-app")
    assert not authorised(basic(nonce, password), None, "my-app")
    assert not authorised(basic(nonce, ""), "", "my-app")
    assert not authorised(basic(nonce, password + "x"), DRAIN_TOKEN, "my-app")
    assert not authorised(basic(nonce, password[:-1]), DRAIN_TOKEN, "my-app")
    # Each app has its own password, and the master secret itself opens no drain.
    assert not authorised(basic(nonce, password), DRAIN_TOKEN, "std-app")
    assert not authorised(basic("x", DRAIN_TOKEN), DRAIN_TOKEN, "my-app")


# --- over HTTP -----------------------------------------------------------------------------


def noise(count: int) -> list[str]:
    """Ordinary log traffic: router lines and app output, no signal in it."""
    return [
        router_line(path=f"/items/{i}") if i % 2 else app_line(f"GET /items/{i} 200 in {i % 97}ms")
        for i in range(count)
    ]


@pytest.mark.parametrize("count", [1, 100, 1000])
async def test_frames_of_many_sizes_are_accepted_quietly(alerts: Alerts, count: int) -> None:
    response = await alerts.drain(frame(noise(count)), count=count)
    assert response.status_code == 204
    assert response.content == b""
    # Ordinary traffic opens nothing: a signal sent afterwards is the first thing in the channel.
    assert (await alerts.drain(frame([fatal_line()]))).status_code == 204
    parent = await alerts.one_parent()
    assert "1 signal" in blocks_of(parent) and alerts.parents() == [parent]


async def test_a_fatal_line_among_a_thousand_is_found(alerts: Alerts) -> None:
    lines = noise(1000)
    lines[637] = fatal_line(form="django", proc="web.2")
    assert (await alerts.drain(frame(lines), count=1000)).status_code == 204
    parent = await alerts.one_parent()
    assert "django.db.utils.OperationalError" in blocks_of(parent)


async def chunks(body: bytes, cuts: list[int]) -> AsyncIterator[bytes]:
    start = 0
    for cut in [*cuts, len(body)]:
        yield body[start:cut]
        start = cut
        await asyncio.sleep(0.01)  # separate TCP writes: the server sees separate chunks


async def test_lines_split_oddly_across_chunks_and_inside_messages(alerts: Alerts) -> None:
    tricky = [
        app_line("a message with\nan embedded newline and 83 <40>1 something that looks like a frame"),
        app_line("trailing spaces   "),
        fatal_line(form="rails", proc="worker.3"),
        app_line("ünïcödé ✓ and a split multi-byte character"),
    ]
    body = frame(tricky)
    fatal_at = body.index(b"too many")
    cuts = sorted({1, 2, 3, body.index(b"<190>", 20) - 1, fatal_at + 3, body.index("✓".encode()) + 1})
    response = await alerts.http.post(
        f"{alerts.bot.url}/drains/heroku/my-app",
        content=chunks(body, cuts),  # sent chunked: no Content-Length
        auth=drain_credentials("my-app"),
        headers={"Content-Type": "application/logplex-1"},
    )
    assert response.status_code == 204
    parent = await alerts.one_parent()
    assert "too many connections" in blocks_of(parent)


async def test_non_utf8_bytes_are_content_not_an_error(alerts: Alerts) -> None:
    prefix = b"<190>1 2024-05-01T12:00:00+00:00 host app web.1 - "
    body = frame_bytes(
        [
            prefix + b"\xff\xfe\x80 binary garbage \xc3\x28\n",
            prefix + b"\xe2\x82 " + fatal_message(form="libpq").encode() + b" \xff\n",
        ]
    )
    assert (await alerts.drain(body, count=2)).status_code == 204
    parent = await alerts.one_parent()
    assert "too many connections" in blocks_of(parent)


@pytest.mark.parametrize(
    "body",
    [
        b"500 <190>1 2024-05-01T12:00:00+00:00 host app web.1 - too short for its count\n",
        b"10 <190>1 2024-05-01T12:00:00+00:00 host app web.1 - count too small\n",
        b"<190>1 2024-05-01T12:00:00+00:00 host app web.1 - no count at all\n",
        b"0 ",
        b"",
    ],
    ids=["count-too-big", "count-too-small", "no-count", "zero", "empty"],
)
async def test_malformed_framing_is_a_400_and_the_bot_keeps_serving(alerts: Alerts, body: bytes) -> None:
    response = await alerts.drain(body)
    assert response.status_code == 400
    assert b"byte" in response.content or b"empty" in response.content
    assert (await alerts.drain(frame([app_line("still here")]))).status_code == 204


async def test_a_wrong_count_in_the_middle_keeps_what_came_before_it(alerts: Alerts) -> None:
    good = frame([fatal_line()])
    bad = b"90 " + app_line("x" * 10).encode() + b"\n"
    # Logplex drops a frame for good on a 4xx: the well-framed head is used, the rest is not.
    assert (await alerts.drain(good + bad + good, count=3)).status_code == 204
    parent = await alerts.one_parent()
    await alerts.system.slack.wait_for(lambda: "1 signal" in blocks_of(parent))
    assert "1 refused connection" in blocks_of(parent) and "2 signals" not in blocks_of(parent)


async def test_oversized_body_is_refused(alerts: Alerts) -> None:
    line = app_line("x" * 8000)
    body = frame([line] * (MAX_BODY_BYTES // 8000 + 2))
    assert len(body) > MAX_BODY_BYTES
    assert (await alerts.drain(body)).status_code == 413
    # Without a Content-Length (chunked), the limit still holds.
    response = await alerts.http.post(
        f"{alerts.bot.url}/drains/heroku/my-app",
        content=chunks(body, list(range(65536, len(body), 65536))),
        auth=drain_credentials("my-app"),
    )
    assert response.status_code == 413


@pytest.mark.parametrize(
    "auth",
    [None, ("x", "wrong-token"), ("x", DRAIN_TOKEN[:-1]), ("x", DRAIN_TOKEN + "x"), ("x", "")],
    ids=["missing", "wrong", "prefix", "longer", "empty"],
)
async def test_wrong_or_missing_credentials_are_401(alerts: Alerts, auth: tuple[str, str] | None) -> None:
    response = await alerts.drain(frame([fatal_line()]), auth=auth)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
    # Checked before the app: a stranger cannot tell which apps exist.
    assert (await alerts.drain(frame([fatal_line()]), app="not-ours", auth=auth)).status_code == 401


async def test_other_auth_schemes_are_401(alerts: Alerts) -> None:
    for header in (f"Bearer {DRAIN_TOKEN}", DRAIN_TOKEN, f"Basic {DRAIN_TOKEN}"):
        response = await alerts.drain(frame([fatal_line()]), auth=None, headers={"Authorization": header})
        assert response.status_code == 401, header


async def test_unknown_app_is_404(alerts: Alerts) -> None:
    response = await alerts.drain(frame([fatal_line()]), app="not-ours")
    assert response.status_code == 404
    assert (await alerts.drain(frame([fatal_line()]), app="bare-app")).status_code == 204
    parent = await alerts.one_parent()
    assert "bare-app" in parent.text and alerts.parents() == [parent]
    assert DRAIN_TOKEN not in alerts.system.bot.logs() and DRAIN_TOKEN not in alerts.bot.logs()
