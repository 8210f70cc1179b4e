"""The post-mortem end to end: real connections that change over time, real refusals through the
drain, an incident that ends, and its post-mortem in the thread with the chart uploaded through
Slack's file flow (files.getUploadURLExternal → POST → files.completeUploadExternal) as the
emulator models it; then `/pgconn APP postmortem` shows it again.
"""

from __future__ import annotations

import asyncio
import json

import redis

from bot.postmortem.chart import PALETTE
from bot.postmortem.png import decode_png
from emulators.slack import Message
from tests.bot.samples import app_line, frame, metric_line
from tests.end_to_end.conftest import (
    ALERT_BOTS,
    RESOLVE_AFTER_S,
    WAIT_S,
    Alerts,
    addon,
    alerts_redis_url,
    blocks_of,
)
from tests.harness import ADMIN, OPS_CHANNEL
from tests.support import ROLE_LIMIT


def store(alerts: Alerts) -> redis.Redis:
    return redis.Redis.from_url(alerts_redis_url(alerts.system.redis_url), decode_responses=True)


def postmortem_of(alerts: Alerts, parent: Message) -> Message | None:
    return next((r for r in alerts.replies(parent) if r.text.startswith("Post-mortem: ")), None)


def shared_files(alerts: Alerts, parent: Message) -> Message | None:
    return next((r for r in alerts.replies(parent) if r.files), None)


async def test_an_incident_that_ends_by_itself_gets_its_postmortem_and_picture(alerts: Alerts) -> None:
    load, slack = alerts.system.load, alerts.slack
    # A report while there is room: pgconn takes its reserved connection, which keeps the holders
    # readable at the limit.
    await slack.send_slash_command("my-app", user_id=ADMIN, channel_id=OPS_CHANNEL)
    await alerts.until(lambda: slack.top_level(OPS_CHANNEL))
    # The workers hold 6; web.1 then asks for more than the rest, and Postgres refuses it.
    assert await asyncio.to_thread(load.open, 6, "worker.1") == 6
    await asyncio.to_thread(load.open, ROLE_LIMIT, "web.1")
    assert load.failures and 'too many connections for role "app_role"' in load.failures[0]
    lines = [app_line(f"psycopg.OperationalError: {text}", proc="web.1") for text in load.failures]
    assert (await alerts.drain(frame(lines), count=len(lines))).status_code == 204
    parent = await alerts.one_parent()

    # pgconn counts the holders while the incident runs (each tick): wait for a few samples.
    def samples() -> int:
        keys = store(alerts).keys("pgconn:holders:my-app:*")
        return store(alerts).llen(keys[0]) if keys else 0

    await alerts.until(lambda: samples() >= 3)
    # An admin fixes it from the thread; then the workers come back with fewer connections.
    response = await slack.click(
        action_id="pgconn.killall",
        value="my-app",
        user_id=ADMIN,
        channel_id=alerts.channel,
        message_ts=parent.ts,
    )
    assert response.status_code == 200
    await alerts.until(lambda: any("ran *Kill all*" in r.text for r in alerts.replies(parent)))
    # The workers come straight back (the cause is still there): the incident stays open until
    # pgconn has checked the fix's effect, then most of them go and it can end.
    assert await asyncio.to_thread(load.open, 17, "worker.1") == 17

    def verified() -> str | None:
        raw = store(alerts).lrange("pgconn:verifications:my-app", 0, -1)
        return json.loads(raw[-1])["line"] if raw else None

    line = await alerts.until(verified)
    await asyncio.to_thread(load.close)
    assert await asyncio.to_thread(load.open, 2, "worker.1") == 2

    # Below the threshold for RESOLVE_AFTER_S: resolved by itself, and the post-mortem follows.
    summary = await alerts.until(lambda: postmortem_of(alerts, parent), timeout=WAIT_S + RESOLVE_AFTER_S)
    upload = await alerts.until(lambda: shared_files(alerts, parent))
    text = blocks_of(summary)
    assert summary.blocks[0]["text"]["text"] == "Post-mortem: my-app"
    assert "First signal: `psycopg.OperationalError:" in text and "(logged by `web.1`)" in text
    assert f"Peak: {ROLE_LIMIT} of {ROLE_LIMIT} connections" in text
    assert f"Peak: {ROLE_LIMIT} of {ROLE_LIMIT} connections (web.1 13, worker.1 6, pgconn-reserved 1)" in text
    assert f"<@{ADMIN}> ran Kill all: terminated 19 of 19 connections — {line}" in text
    assert "Resolved: resolved by itself: connections stayed below the warning threshold for 2s" in text
    assert "*Likely cause* (pgconn's diagnosis when the thread opened)\nweb.1 holds 13 connections" in text
    assert "*Connection budget*\nbefore: " in text and "after: " in text
    assert "*What would keep it from coming back*" in text and "Add PgBouncer with a pool of" in text
    # The replies, in order: the fix, resolved, the post-mortem, its files.
    order = [r.ts for r in alerts.replies(parent)]
    assert order.index(summary.ts) < order.index(upload.ts)
    assert any(
        r.text.startswith(":white_check_mark: Resolved") and r.ts < summary.ts for r in alerts.replies(parent)
    )

    # Uploaded with Slack's current flow, as slack-sdk's files_upload_v2 runs it.
    methods = [
        c.method
        for c in slack.received
        if c.method
        in ("files.getUploadURLExternal", "upload", "files.completeUploadExternal", "files.upload")
    ]
    assert methods == ["files.getUploadURLExternal"] * 2 + ["upload"] * 2 + ["files.completeUploadExternal"]
    (complete,) = slack.calls("files.completeUploadExternal")
    assert complete["channel_id"] == alerts.channel and complete["thread_ts"] == parent.ts
    png, md = (slack.files[f] for f in upload.files)
    assert png.filename == "connections-by-holder.png" and md.filename == "postmortem-my-app.md"
    assert png.data is not None and md.data is not None
    width, height, rgb = decode_png(png.data)
    assert (width, height) == (900, 420)
    colours = {tuple(rgb[i : i + 3]) for i in range(0, len(rgb), 3)}
    assert PALETTE[0] in colours and PALETTE[1] in colours  # web.1 and worker.1 bands, at least
    markdown = md.data.decode()
    assert markdown.startswith("# Post-mortem: my-app ran out of database connections")
    assert "![Connections by holder over the incident](connections-by-holder.png)" in markdown

    # Kept: `/pgconn my-app postmortem` shows it again, with its Markdown to copy, to the app's team
    # (its admins, or anyone in its alert channel) as the audit is; elsewhere a member is refused.
    await slack.send_slash_command("my-app postmortem", user_id="UMEMBER1", channel_id=OPS_CHANNEL)
    (refusal,) = await alerts.until(lambda: slack.ephemerals)
    assert refusal["text"].startswith(":no_entry: Only pgconn admins, or people in the app's alert channel,")
    await slack.send_slash_command("my-app postmortem", user_id="UMEMBER1", channel_id=alerts.channel)
    again = await alerts.until(
        lambda: next((m for m in slack.top_level(alerts.channel) if m.text.startswith("Post-mortem: ")), None)
    )
    shown = blocks_of(again)
    assert "Post-mortem: my-app" in shown and "the incident's thread>" in shown
    assert "```\n# Post-mortem: my-app ran out of database connections" in shown
    await asyncio.to_thread(load.close)


async def test_without_files_write_the_summary_still_comes_and_says_why(alerts: Alerts) -> None:
    app, db = "std-app", addon("std-app")
    # Either alert bot of the session may be the one that ends the incident and writes it.
    log_starts = [(process, len(process.logs())) for process in ALERT_BOTS]
    alerts.slack.scopes.discard("files:write")
    try:
        assert (await alerts.drain(frame([metric_line(119, addon=db)]), app=app)).status_code == 204
        parent = await alerts.one_parent()
        assert (await alerts.drain(frame([metric_line(3, addon=db)]), app=app)).status_code == 204
        summary = await alerts.until(lambda: postmortem_of(alerts, parent), timeout=WAIT_S + RESOLVE_AFTER_S)
        warning = await alerts.until(
            lambda: next((r for r in alerts.replies(parent) if "could not be uploaded" in r.text), None)
        )
    finally:
        alerts.slack.scopes.add("files:write")
    assert "Peak: 119 of 120 connections" in blocks_of(summary)
    assert "missing_scope" in warning.text and "`files:write` scope" in warning.text
    assert alerts.slack.calls("files.completeUploadExternal") == [] and alerts.slack.files == {}
    assert any("post-mortem chart of std-app" in process.logs()[start:] for process, start in log_starts)


async def test_no_postmortem_yet_is_a_sentence(alerts: Alerts) -> None:
    await alerts.slack.send_slash_command(
        "bare-app postmortem", user_id="UMEMBER1", channel_id=alerts.channel
    )
    (answer,) = await alerts.until(lambda: alerts.slack.ephemerals)
    assert answer["text"] == "No post-mortem of `bare-app` yet: pgconn writes one when an incident ends."
