"""Acknowledge, Snooze and Resolve on alert threads, end to end: drain lines open the thread in the
running bot, signed clicks (as Slack sends them) change it, Redis and the Slack emulator show the result."""

from __future__ import annotations

import asyncio
from typing import Any

import redis

from bot.alerts.ownership import ACKNOWLEDGE, RESOLVE, SNOOZE
from emulators.slack import Message
from tests.bot.samples import fatal_line, frame, metric_line
from tests.end_to_end.conftest import Alerts, addon, alerts_redis_url, blocks_of
from tests.harness import ADMIN, GROUP_MEMBER, STRANGER, BotProcess, settled


def store(alerts: Alerts) -> redis.Redis:
    return redis.Redis.from_url(alerts_redis_url(alerts.system.redis_url), decode_responses=True)


def element(message: Message, action_id: str) -> dict[str, Any]:
    for block in message.blocks:
        for item in [*(block.get("elements") or []), block.get("accessory") or {}]:
            if item.get("action_id") == action_id:
                return dict(item)
    raise AssertionError(f"no {action_id} on the parent: {blocks_of(message)}")


def value_of(message: Message, action_id: str, choice: int = 0) -> str:
    item = element(message, action_id)
    return str(item["options"][choice]["value"] if "options" in item else item["value"])


async def click(
    alerts: Alerts, parent: Message, action_id: str, *, user: str = ADMIN, bot: BotProcess | None = None,
    choice: int = 0,
) -> None:
    if bot is not None:
        alerts.slack.request_url = bot.events_url
    response = await alerts.slack.click(
        action_id=action_id,
        value=value_of(parent, action_id, choice),
        user_id=user,
        channel_id=alerts.channel,
        message_ts=parent.ts,
    )
    assert response.status_code == 200


def incident_hash(alerts: Alerts, app: str = "my-app") -> dict[str, str]:
    (key,) = store(alerts).keys(f"pgconn:incident:{app}:*")
    return store(alerts).hgetall(key)  # type: ignore[return-value]


def audit(alerts: Alerts, app: str = "my-app") -> list[dict[str, str]]:
    return [fields for _, fields in store(alerts).xrange(f"pgconn:audit:{app}")]  # type: ignore[union-attr,misc]


def said(alerts: Alerts, parent: Message, words: str) -> list[Message]:
    return [m for m in alerts.replies(parent) if words in m.text]


def told(alerts: Alerts, words: str) -> list[str]:
    return [str(e.get("text", "")) for e in alerts.slack.ephemerals if words in str(e.get("text", ""))]


# Dynos holding 17 of the role's 20 connections (85%: warning) keep the incident open while a test
# clicks: with the room pgconn's probe would see, it resolves by itself after RESOLVE_AFTER_S.
HELD = 17


async def opened(alerts: Alerts) -> Message:
    await asyncio.to_thread(alerts.system.load.open, HELD, "web.1")
    assert (await alerts.drain(frame([fatal_line()] * 3), count=3)).status_code == 204
    return await alerts.one_parent()


async def test_acknowledge_names_the_owner_on_the_parent_in_the_thread_and_the_audit(alerts: Alerts) -> None:
    parent = await opened(alerts)
    assert "Not acknowledged yet" in blocks_of(parent)
    await click(alerts, parent, ACKNOWLEDGE.id)
    await alerts.until(lambda: f"Acknowledged by <@{ADMIN}> since" in blocks_of(parent))
    (reply,) = await alerts.until(lambda: said(alerts, parent, "acknowledged this incident"))
    assert f"<@{ADMIN}> acknowledged this incident and owns it since" in reply.text
    # Owned: the parent no longer offers Acknowledge; Resolve and Snooze stay.
    assert ACKNOWLEDGE.id not in str(parent.blocks) and RESOLVE.id in str(parent.blocks)
    assert incident_hash(alerts)["owner"] == ADMIN
    (record,) = audit(alerts)
    assert (record["user"], record["action"], record["ok"]) == (ADMIN, ACKNOWLEDGE.id, "1")
    assert "acknowledged the incident of" in record["result"]
    # /pgconn APP audit shows it with its label.
    await alerts.slack.send_slash_command("my-app audit", user_id=ADMIN, channel_id=alerts.channel)
    await alerts.until(lambda: told(alerts, "ran *Acknowledge*"))


async def test_acknowledge_clicked_ten_times_by_two_admins_on_two_processes_makes_one_owner(
    alerts: Alerts, second_alert_bot: BotProcess
) -> None:
    parent = await opened(alerts)
    bots, users = [alerts.bot, second_alert_bot], [ADMIN, GROUP_MEMBER]

    async def deliver(i: int) -> None:
        await click(alerts, parent, ACKNOWLEDGE.id, user=users[i // 5], bot=bots[i % 2])

    await asyncio.gather(*(deliver(i) for i in range(10)))
    await settled(alerts.bot)
    await settled(second_alert_bot)
    replies = said(alerts, parent, "acknowledged this incident")
    assert len(replies) == 1, [m.text for m in alerts.replies(parent)]
    owner = incident_hash(alerts)["owner"]
    assert owner in users and f"<@{owner}> acknowledged" in replies[0].text
    assert [r["action"] for r in audit(alerts)] == [ACKNOWLEDGE.id]
    # Every other delivery was told who won, and changed nothing.
    refusals = [e for e in alerts.slack.ephemerals if "Acknowledge" in str(e.get("text"))]
    assert len(refusals) == 9 and all(f"<@{owner}>" in str(e["text"]) for e in refusals), refusals


async def test_a_non_admin_is_refused_every_step_and_nothing_changes(alerts: Alerts) -> None:
    parent = await opened(alerts)
    for action_id in (ACKNOWLEDGE.id, SNOOZE.id, RESOLVE.id):
        await click(alerts, parent, action_id, user=STRANGER)
    await settled(alerts.bot)
    assert len(told(alerts, "Only pgconn admins of `my-app` may")) == 3
    after = incident_hash(alerts)
    assert (after["owner"], after["snoozed_until"], after["status"]) == ("", "0.0", "open")
    assert alerts.replies(parent) == [] and audit(alerts) == []


async def test_snooze_silences_the_thread_but_a_worse_severity_breaks_through(alerts: Alerts) -> None:
    app, db = "std-app", addon("std-app")  # standard-0: 120 connections, metrics in the drain

    async def sample(active: int) -> None:
        assert (await alerts.drain(frame([metric_line(active, addon=db)]), app=app)).status_code == 204
        await settled(alerts.bot)

    await sample(100)  # 83%: warning
    parent = await alerts.one_parent()
    await click(alerts, parent, SNOOZE.id, choice=1)  # 1 hour
    (snoozed,) = await alerts.until(lambda: said(alerts, parent, "snoozed this thread until"))
    assert f"<@{ADMIN}>" in snoozed.text
    await alerts.until(lambda: f"Snoozed by <@{ADMIN}> until" in blocks_of(parent))
    stored = incident_hash(alerts, app)
    assert float(stored["snoozed_until"]) > float(stored["opened_at"]) + 3500
    # Worse than when it was snoozed: it breaks through.
    await sample(118)
    await alerts.until(lambda: said(alerts, parent, "Now *critical*"))
    # Better, then as bad again: the thread hears nothing (the parent's numbers still move).
    await sample(100)
    await sample(119)
    await sample(101)
    assert said(alerts, parent, "Now *warning*") == [] and len(said(alerts, parent, "Now *critical*")) == 1
    await alerts.until(lambda: "*101/120*" in blocks_of(parent))
    assert [r["action"] for r in audit(alerts, app)] == [SNOOZE.id]


async def test_resolve_by_hand_ends_the_incident_and_a_later_refusal_opens_a_new_one(alerts: Alerts) -> None:
    first = await opened(alerts)
    incident_id = incident_hash(alerts)["id"]
    await click(alerts, first, RESOLVE.id)
    await alerts.until(lambda: f"resolved by hand by <@{ADMIN}>" in blocks_of(first))
    assert first.text.startswith("Resolved by hand: my-app")
    (reply,) = await alerts.until(lambda: said(alerts, first, "Resolved after"))
    assert f"resolved by hand by <@{ADMIN}>" in reply.text
    stored = incident_hash(alerts)
    assert (stored["status"], stored["resolved_by"], stored["id"]) == ("resolved", ADMIN, incident_id)
    assert RESOLVE.id not in str(first.blocks) and "pgconn.killall" not in str(first.blocks)
    assert [r["action"] for r in audit(alerts)] == [RESOLVE.id]
    # Ended through the engine's one "incident ended" path (the post-mortem hangs on it too).
    assert f"incident ended: my-app {addon('my-app')} (resolved by {ADMIN})" in alerts.bot.logs()
    (postmortem,) = await alerts.until(lambda: said(alerts, first, "Post-mortem: my-app"))
    assert "resolved by hand" in blocks_of(postmortem) or f"<@{ADMIN}>" in blocks_of(postmortem)
    # The old thread's buttons (an older version of the message) change nothing now.
    response = await alerts.slack.click(
        action_id=ACKNOWLEDGE.id, value=incident_id, user_id=ADMIN, channel_id=alerts.channel,
        message_ts=first.ts,
    )
    assert response.status_code == 200
    await alerts.until(lambda: told(alerts, "already resolved"))
    # A new refusal later: a NEW incident, in a new thread.
    assert (await alerts.drain(frame([fatal_line()]))).status_code == 204
    second = await alerts.one_parent(lambda m: m.ts != first.ts)
    assert "Not acknowledged yet" in blocks_of(second)
    assert incident_hash(alerts)["id"] != incident_id
    # The first thread heard of its end once, by hand; no automatic resolution followed.
    assert len(said(alerts, first, "Resolved after")) == 1
