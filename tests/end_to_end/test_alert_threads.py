"""Alert threads end to end: drain lines → running bot(s) → Redis → Slack emulator.

Everything is real but Slack and Heroku (emulators over HTTP): the bot subprocess,
Redis, and for the last test a Postgres role pushed to its connection limit.
"""

from __future__ import annotations

import asyncio
import re

import redis

from emulators.slack import Message
from tests.bot.samples import app_line, fatal_line, frame, metric_line
from tests.end_to_end.conftest import RESOLVE_AFTER_S, WAIT_S, Alerts, addon, alerts_redis_url, blocks_of
from tests.harness import BotProcess
from tests.support import ROLE_LIMIT


def refused(message: Message) -> int | None:
    m = re.search(r"([\d,]+) refused connections?", blocks_of(message))
    return int(m.group(1).replace(",", "")) if m else None


def alert_replies(alerts: Alerts, parent: Message) -> list[Message]:
    """The thread's own replies (severity, resolution), without the post-mortem that follows an
    incident's end (tests/end_to_end/test_postmortem.py)."""
    return [r for r in alerts.replies(parent) if not r.files and not r.text.startswith("Post-mortem: ")]


def signals(message: Message) -> int | None:
    m = re.search(r"([\d,]+) signals?\b", blocks_of(message))
    return int(m.group(1).replace(",", "")) if m else None


async def test_a_thousand_refusals_in_twenty_requests_make_one_thread(alerts: Alerts) -> None:
    forms = ["rails", "django", "psycopg3", "node-pg", "libpq"]
    bodies = [
        frame([fatal_line(form=forms[(r + i) % 5], proc=f"web.{i % 3 + 1}") for i in range(50)])
        for r in range(20)
    ]
    responses = await asyncio.gather(*(alerts.drain(b, count=50) for b in bodies))
    assert [r.status_code for r in responses] == [204] * 20
    parent = await alerts.one_parent()
    # Every refusal is counted, once, on the one parent.
    await alerts.until(lambda: refused(parent) == 1000)
    assert alerts.parents() == [parent]
    assert alerts.slack.calls("chat.postMessage")[0]["channel"] == alerts.channel
    text = blocks_of(parent)
    assert parent.text.startswith("my-app (" + addon("my-app") + ") is out of database connections")
    assert "my-app · " + addon("my-app") in text
    assert "Kill all" in text or "pgconn.killall" in str(parent.blocks)  # the report and its buttons
    assert "Plan" in text  # pg:info fields from the report
    # Severity never changed and nothing resolved: nothing to say in the thread.
    assert alerts.replies(parent) == []


async def test_two_processes_receiving_interleaved_frames_make_one_thread(
    alerts: Alerts, second_alert_bot: BotProcess
) -> None:
    bots = [alerts.bot, second_alert_bot]
    bodies = [frame([fatal_line(proc=f"web.{r}")] * 25) for r in range(40)]
    responses = await asyncio.gather(
        *(alerts.drain(body, bot=bots[r % 2], count=25) for r, body in enumerate(bodies))
    )
    assert {r.status_code for r in responses} == {204}
    parent = await alerts.one_parent()
    await alerts.until(lambda: refused(parent) == 1000)
    # A second round after the thread exists: still the same thread.
    more = await asyncio.gather(*(alerts.drain(frame([fatal_line()] * 10), bot=b) for b in bots * 5))
    assert {r.status_code for r in more} == {204}
    await alerts.until(lambda: refused(parent) == 1100)
    assert alerts.parents() == [parent]
    assert len([c for c in alerts.slack.calls("chat.postMessage") if not c.get("thread_ts")]) == 1


async def test_metrics_rising_and_falling_open_update_and_resolve_in_order(alerts: Alerts) -> None:
    app, db = "std-app", addon("std-app")  # standard-0: 120 connections, metrics in the drain

    async def sample(active: int) -> None:
        body = frame([metric_line(active, addon=db), app_line("GET / 200")])
        assert (await alerts.drain(body, app=app, count=2)).status_code == 204

    await sample(40)  # 33%: nothing
    await sample(60)
    await sample(100)  # 83%: warning
    parent = await alerts.one_parent()
    assert "close to the connection limit" in parent.text or "close to the limit" in parent.text
    assert ":warning:" in blocks_of(parent) and "*Warn*" in blocks_of(parent)
    updates_before = len(alerts.slack.calls("chat.update"))

    await sample(118)  # 98%: critical
    await alerts.until(lambda: "*Critical*" in blocks_of(parent))
    (critical,) = await alerts.until(lambda: alerts.replies(parent))
    assert "Now *critical*" in critical.text and "118/120" in critical.text
    assert len(alerts.slack.calls("chat.update")) > updates_before

    # Back below warn and staying there (Heroku keeps sending samples): resolved after
    # RESOLVE_AFTER_S of them.
    async def keep_low() -> None:
        while True:
            await sample(30)
            await asyncio.sleep(0.2)

    low = asyncio.create_task(keep_low())
    try:
        await alerts.until(lambda: "Resolved" in blocks_of(parent), timeout=WAIT_S + RESOLVE_AFTER_S)
        replies = await alerts.until(lambda: len(r := alert_replies(alerts, parent)) == 2 and r)
    finally:
        low.cancel()
    assert isinstance(replies, list)
    assert "Resolved after" in replies[1].text and "30/120" in replies[1].text

    # The parent's history, oldest first: warning → critical → … → resolved.
    versions = [blocks_of(e) for e in parent.edits] + [blocks_of(parent)]
    first_crit = next(i for i, v in enumerate(versions) if "*Critical*" in v)
    first_resolved = next(i for i, v in enumerate(versions) if "*Resolved*" in v)
    assert "*Warn*" in versions[0] and 0 < first_crit < first_resolved == len(versions) - 1
    assert "Last 30 min" in versions[-1] and "high 118 of 120" in versions[-1]
    assert "pgconn.killall" not in str(parent.blocks)  # a resolved incident drops its buttons
    assert alerts.parents() == [parent]


async def test_a_new_signal_after_resolution_opens_a_new_thread(alerts: Alerts) -> None:
    app, db = "std-app", addon("std-app")
    assert (await alerts.drain(frame([metric_line(119, addon=db)]), app=app)).status_code == 204
    first = await alerts.one_parent()
    assert (await alerts.drain(frame([metric_line(3, addon=db)]), app=app)).status_code == 204
    await alerts.until(lambda: "*Resolved*" in blocks_of(first), timeout=WAIT_S + RESOLVE_AFTER_S)
    assert (await alerts.drain(frame([metric_line(117, addon=db)]), app=app)).status_code == 204
    second = await alerts.one_parent(lambda m: m.ts != first.ts)
    assert "*Critical*" in blocks_of(second) and "*Resolved*" in blocks_of(first)


async def test_a_failed_post_is_retried_and_never_doubled(alerts: Alerts) -> None:
    alerts.slack.inject("chat.postMessage", error="internal_error", times=1)
    assert (await alerts.drain(frame([fatal_line()] * 3), count=3)).status_code == 204
    await alerts.until(lambda: alerts.slack.calls("chat.postMessage"))
    # Signals keep arriving while the post waits for its retry: all of them count.
    assert (await alerts.drain(frame([fatal_line()] * 2), count=2)).status_code == 204
    parent = await alerts.one_parent()
    await alerts.until(lambda: refused(parent) == 5)
    calls = [c for c in alerts.slack.calls("chat.postMessage") if not c.get("thread_ts")]
    assert len(calls) == 2  # the refused one, then the retry
    assert alerts.parents() == [parent]
    assert "not posted (Slack: internal_error); will retry" in alerts.bot.logs()


async def test_a_failed_redraw_is_retried(alerts: Alerts) -> None:
    app, db = "std-app", addon("std-app")
    assert (await alerts.drain(frame([metric_line(119, addon=db)]), app=app)).status_code == 204
    parent = await alerts.one_parent()
    alerts.slack.inject("chat.update", error="internal_error", times=1)
    body = frame([metric_line(118, addon=db), metric_line(117, addon=db)])
    assert (await alerts.drain(body, app=app, count=2)).status_code == 204
    # Redrawn by the retry with the numbers that failed to show (a later probe would say 1/120).
    await alerts.until(lambda: signals(parent) == 3 and "*117/120*" in blocks_of(parent))
    updates = alerts.slack.calls("chat.update")
    assert len(updates) >= 2 and all(u["ts"] == parent.ts for u in updates)
    assert "not updated (Slack: internal_error); will retry" in alerts.bot.logs()


async def test_slack_rate_limit_is_waited_out(alerts: Alerts) -> None:
    alerts.slack.inject("chat.postMessage", status=429, retry_after=1, times=1)
    assert (await alerts.drain(frame([fatal_line()]))).status_code == 204
    parent = await alerts.one_parent()
    assert alerts.parents() == [parent] and refused(parent) == 1


def alerts_store(alerts: Alerts) -> redis.Redis:
    return redis.Redis.from_url(alerts_redis_url(alerts.system.redis_url), decode_responses=True)


async def test_the_real_database_at_its_limit_opens_one_thread_with_true_numbers_and_resolves(
    alerts: Alerts,
) -> None:
    load = alerts.system.load
    # Dynos take every slot left (pgconn's processes may hold a reserved one each); the
    # rest of their attempts fail with the server's own refusal.
    opened = await asyncio.to_thread(load.open, ROLE_LIMIT + 5, "web.1")
    assert 0 < opened <= ROLE_LIMIT and len(load.failures) == ROLE_LIMIT + 5 - opened
    fatal_text = load.failures[0]
    assert 'too many connections for role "app_role"' in fatal_text
    # What the dynos would log: each refusal, as the app's own output.
    lines = [app_line(f"psycopg.OperationalError: {text}", proc="web.1") for text in load.failures]
    assert (await alerts.drain(frame(lines), count=len(lines))).status_code == 204

    parent = await alerts.one_parent()
    text = blocks_of(parent)
    assert f"*{ROLE_LIMIT}/{ROLE_LIMIT}*" in text  # pg:info's live count against the plan's limit
    assert "at the limit" in text
    assert 'too many connections for role "app_role"' in text
    # The report's likely cause leads the alert, right under the summary: web.1 far over its
    # budget when pgconn could read the holders, else the full role and Kill all.
    cause = parent.blocks[2]
    assert cause.get("block_id") == "pgconn.cause", blocks_of(parent)
    cause_text = cause["text"]["text"]
    assert cause_text.startswith(":red_circle: *Likely cause:* ")
    assert "web.1 holds" in cause_text or "every connection slot of the role is taken" in cause_text
    await alerts.until(lambda: refused(parent) == len(lines))
    # The numbers stay true while the role stays full. Waited for positively: the periodic probe
    # has seen the role full again later than the resolve delay (the incident's last_bad in
    # Redis), and the incident is still open; a sleep would pass with a bot that never probed.
    (key,) = alerts_store(alerts).keys("pgconn:incident:my-app:*")
    opened_at = float(alerts_store(alerts).hget(key, "opened_at") or 0)
    await alerts.until(
        lambda: float(alerts_store(alerts).hget(key, "last_bad") or 0) > opened_at + RESOLVE_AFTER_S + 0.5,
        timeout=WAIT_S + RESOLVE_AFTER_S,
    )
    assert alerts_store(alerts).hget(key, "status") == "open"
    assert "*Resolved*" not in blocks_of(parent)

    await asyncio.to_thread(load.close)
    await alerts.until(lambda: "*Resolved*" in blocks_of(parent), timeout=WAIT_S + RESOLVE_AFTER_S)
    replies = alert_replies(alerts, parent)
    assert [r.text.split(" ")[0] for r in replies] == [":white_check_mark:"]
    assert alerts.parents() == [parent]
    connections = re.search(r"\*Connections:\* \*?(\d+)/(\d+)", blocks_of(parent))
    assert connections is not None and int(connections.group(1)) < ROLE_LIMIT * 0.8
