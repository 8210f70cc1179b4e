"""Other tools' alerts in Slack: pgconn answers in their thread with the report, once."""

from __future__ import annotations

import pytest

from emulators.slack import Message
from handlers.events import message_text
from tests.end_to_end.conftest import Alerts, blocks_of
from tests.harness import OPS_CHANNEL

DATADOG = "B0DATADOG"


def replies(alerts: Alerts, message: Message) -> list[Message]:
    return alerts.slack.thread(OPS_CHANNEL, message.ts)


async def marker(alerts: Alerts) -> Message:
    """A message pgconn must answer; when its answer lands, everything sent earlier was handled."""
    alert = await alerts.slack.post_as(
        OPS_CHANNEL, "[Triggered] bare-app: too many connections", bot_id=DATADOG
    )
    await alerts.until(lambda: replies(alerts, alert))
    return alert


def test_text_is_gathered_from_attachments_and_blocks() -> None:
    event = {
        "text": "",
        "attachments": [
            {"title": "PagerDuty incident #42", "fields": [{"title": "Service", "value": "my-app"}]},
            {"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "deep"}}]},
        ],
        "blocks": [
            {
                "type": "rich_text",
                "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": "53300"}]}],
            }
        ],
    }
    text = message_text(event)
    assert "PagerDuty incident #42" in text and "my-app" in text and "deep" in text and "53300" in text


async def test_another_tools_alert_gets_the_report_in_its_thread(alerts: Alerts) -> None:
    alert = await alerts.slack.post_as(
        OPS_CHANNEL,
        "",
        bot_id=DATADOG,
        username="Datadog",
        attachments=[
            {
                "title": "[Triggered] Postgres connections at 98% on my-app",
                "text": "postgresql.connections / max_connections > 0.95",
                "color": "#d00000",
            }
        ],
    )
    (reply,) = await alerts.until(lambda: replies(alerts, alert))
    text = blocks_of(reply)
    assert "pgconn saw this alert about `my-app`" in text
    assert "*Connections:*" in text and "Plan" in text
    assert reply.bot_id == alerts.slack.bot_id and reply.thread_ts == alert.ts
    # Nothing went to the alert channel: this is the other tool's incident thread.
    assert alerts.parents() == []


async def test_a_person_saying_it_in_a_thread_gets_the_answer_in_that_thread(alerts: Alerts) -> None:
    root = await alerts.slack.post_as(OPS_CHANNEL, "anyone seeing errors?", user="UHUMAN01")
    said = await alerts.slack.post_as(
        OPS_CHANNEL, "std-app is out of db connections again", user="UHUMAN02", thread_ts=root.ts
    )
    reply = await alerts.until(
        lambda: next((m for m in alerts.slack.thread(OPS_CHANNEL, root.ts) if m.bot_id), None)
    )
    assert isinstance(reply, Message) and "`std-app`" in blocks_of(reply) and said.ts != reply.ts


@pytest.mark.parametrize(
    "kind",
    ["pgconn's own message", "unrelated app", "no exhaustion", "recovery notice", "edited message"],
)
async def test_messages_pgconn_must_not_answer(alerts: Alerts, kind: str) -> None:
    slack = alerts.slack
    if kind == "pgconn's own message":
        # What Slack echoes back when pgconn posts an alert of its own.
        ignored = await slack.post_as(
            OPS_CHANNEL, "my-app is out of database connections: 20/20", bot_id=slack.bot_id
        )
    elif kind == "unrelated app":
        ignored = await slack.post_as(OPS_CHANNEL, "other-app: too many connections", bot_id=DATADOG)
    elif kind == "no exhaustion":
        ignored = await slack.post_as(OPS_CHANNEL, "deployed my-app v42", user="UHUMAN01")
    elif kind == "recovery notice":
        ignored = await slack.post_as(OPS_CHANNEL, "[Resolved] my-app: too many connections", bot_id=DATADOG)
    else:
        ignored = await slack.post_as(OPS_CHANNEL, "lunch?", user="UHUMAN01")
        edited = {
            "type": "message",
            "subtype": "message_changed",
            "channel": OPS_CHANNEL,
            "ts": "1700000000.000200",
            "message": {"type": "message", "text": "my-app: too many connections", "ts": ignored.ts},
            "previous_message": {"type": "message", "text": "lunch?", "ts": ignored.ts},
            "text": "my-app: too many connections",
        }
        assert (await slack.send_event(edited)).status_code == 200
    answered = await marker(alerts)  # answered after `ignored` was delivered
    mine = [m for m in slack.messages(OPS_CHANNEL) if m.bot_id == slack.bot_id and m.ts != ignored.ts]
    assert [m.thread_ts for m in mine] == [answered.ts]


async def test_the_same_message_delivered_twice_or_to_two_processes_is_answered_once(
    alerts: Alerts, second_alert_bot: object
) -> None:
    alert = await alerts.slack.post_as(OPS_CHANNEL, "my-app: FATAL too many connections", bot_id=DATADOG)
    event = {
        "type": "message",
        "subtype": "bot_message",
        "bot_id": DATADOG,
        "text": alert.text,
        "ts": alert.ts,
        "channel": OPS_CHANNEL,
        "channel_type": "channel",
    }
    # A retry of the same delivery, and the same event reaching the other process.
    assert (await alerts.slack.send_event(event, retry_num=1)).status_code == 200
    alerts.slack.request_url = second_alert_bot.events_url  # type: ignore[attr-defined]
    assert (await alerts.slack.send_event(event)).status_code == 200
    await alerts.until(lambda: replies(alerts, alert))
    await marker(alerts)  # by now every delivery above has been handled
    assert len(replies(alerts, alert)) == 1
