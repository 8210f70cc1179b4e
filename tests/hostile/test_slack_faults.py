"""Slack failing under the bot: rate limits and refusals. A post is retried within Slack's
limits, falls back to the response URL when the channel is the problem, and is never
dropped silently — the person is told, or the operator's log says what was lost."""

from __future__ import annotations

import pytest

from tests.conftest import System
from tests.harness import ADMIN, OPS_CHANNEL
from tests.hostile.helpers import click, ephemeral, new_message, post_report, slash

NOT_IN = "C0NOTIN"


def post_calls(system: System, method: str = "chat.postMessage") -> list[float]:
    return [c.received_at for c in system.slack.received if c.method == method]


async def test_ratelimited_post_is_retried_after_retry_after_and_posted_once(system: System) -> None:
    system.slack.inject("chat.postMessage", error="ratelimited", status=429, retry_after=1, times=2)
    report = await post_report(system)
    calls = post_calls(system)
    assert len(calls) == 3
    assert calls[1] - calls[0] >= 1.0 and calls[2] - calls[1] >= 1.0  # Retry-After honoured each time
    assert [m.ts for m in system.slack.messages(OPS_CHANNEL)] == [report.ts]


async def test_post_ratelimited_beyond_the_retries_tells_the_person_instead(system: System) -> None:
    system.slack.inject("chat.postMessage", error="ratelimited", status=429, retry_after=1, times=10)
    await slash(system, "my-app")
    text = await ephemeral(system, "could not post its answer", timeout=20)
    assert "`ratelimited`" in text and "pgconn report for my-app" in text
    assert len(post_calls(system)) == 4  # the first try and three retries, no more
    assert system.slack.messages(OPS_CHANNEL) == []


@pytest.mark.parametrize("error", ["channel_not_found", "not_in_channel", "is_archived"])
async def test_channel_refusals_fall_back_to_the_response_url_in_channel(system: System, error: str) -> None:
    system.slack.inject("chat.postMessage", error=error)
    report = await post_report(system)  # posted in the channel through the response URL
    assert "Top holders" in str(report.blocks)
    assert len(post_calls(system)) == 1 and len(system.slack.responses) == 1


async def test_a_channel_the_bot_is_not_in_gets_the_report_through_the_response_url(system: System) -> None:
    if NOT_IN not in system.slack.channels:
        system.slack.add_channel(NOT_IN, "not-in", member=False)
    await slash(system, "my-app", channel=NOT_IN)
    message = await new_message(system, 0, channel=NOT_IN)
    assert "Top holders" in str(message.blocks)
    assert [c.error for c in system.slack.received if c.method == "chat.postMessage"] == ["not_in_channel"]


async def test_invalid_blocks_tells_the_person_what_slack_said(system: System) -> None:
    system.slack.inject("chat.postMessage", error="invalid_blocks")
    await slash(system, "my-app")
    text = await ephemeral(system, "could not post its answer")
    assert "Slack said `invalid_blocks`" in text and "pgconn report for my-app" in text


async def test_an_action_result_that_cannot_be_posted_reaches_the_clicker(system: System) -> None:
    report = await post_report(system)
    system.load.open(2, "web.1")
    system.slack.inject("chat.postMessage", error="channel_not_found")
    await click(system, report, "pgconn.killall")
    text = await ephemeral(system, "ran *Kill all*")
    assert f"<@{ADMIN}> ran *Kill all* on `my-app`: terminated 2 of 2 connections" in text
    assert system.load.alive() == 0


async def test_a_ratelimited_response_url_is_retried_after_retry_after(system: System) -> None:
    system.slack.inject("response_url", error="rate_limited", status=429, retry_after=1, times=2)
    await slash(system, "help")
    text = await ephemeral(system, "/pgconn APP budget")
    assert text
    posts = [c.received_at for c in system.slack.received if c.method == "response_url"]
    assert len(posts) == 3 and posts[1] - posts[0] >= 1.0 and posts[2] - posts[1] >= 1.0


async def test_a_failing_response_url_is_retried_then_logged_never_dropped_silently(system: System) -> None:
    system.slack.inject("response_url", error="service_unavailable", status=503, times=2)
    await slash(system, "help")
    await ephemeral(system, "/pgconn APP budget")
    # Nothing reaches anyone: channel post refused, and every response URL post fails.
    start = len(system.bot.logs())
    system.slack.inject("chat.postMessage", error="invalid_blocks")
    system.slack.inject("response_url", error="service_unavailable", status=503, times=10)
    await slash(system, "my-app")
    line = await system.slack.wait_for(
        lambda: next((ln for ln in system.bot.logs()[start:].splitlines() if "not delivered" in ln), None),
        timeout=20,
    )
    assert "at=error" in line and "503" in line and "could not post its answer" in line
