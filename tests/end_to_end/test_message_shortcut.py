""""Diagnose with pgconn" end to end: a signed `message_action` (the shortcut manifest.yml
declares) → the real bot → the report in that message's thread, or one ephemeral sentence."""

from __future__ import annotations

from emulators.slack import Message
from emulators.slack_surfaces import manifest_shortcuts
from tests.conftest import System
from tests.harness import ADMIN, OPS_CHANNEL, STRANGER, settled
from tests.support import blocks_text

SHORTCUT = next(iter(manifest_shortcuts()))  # its callback id, as the Slack app is set up
DATADOG = "B0DATADOG"


def bot_replies(system: System, channel: str, thread_ts: str) -> list[Message]:
    return [m for m in system.slack.thread(channel, thread_ts) if m.bot_id == system.slack.bot_id]


async def test_another_tools_alert_gets_the_report_in_its_thread(system: System) -> None:
    # Not an exhaustion alert, so pgconn did not answer it by itself: a person asks.
    alert = await system.slack.post_as(
        OPS_CHANNEL, "", bot_id=DATADOG, username="Datadog",
        attachments=[{"title": "[Warn] p95 latency up on std-app", "text": "web p95 > 2s for 10 min"}],
    )
    await settled(system.bot)
    assert bot_replies(system, OPS_CHANNEL, alert.ts) == []
    response = await system.slack.message_shortcut(
        SHORTCUT, user_id=STRANGER, channel_id=OPS_CHANNEL, message_ts=alert.ts
    )
    assert response.status_code == 200
    (reply,) = await system.slack.wait_for(lambda: bot_replies(system, OPS_CHANNEL, alert.ts), timeout=10)
    text = blocks_text(reply.blocks)
    assert reply.thread_ts == alert.ts
    assert f"<@{STRANGER}> asked pgconn about `std-app` (Diagnose with pgconn)" in text
    # The same report as `/pgconn std-app`: pg:info, holders, budget, the buttons.
    assert "*Connections:*" in text and "Budget" in text and "Plan" in text
    assert any(b["type"] == "actions" for b in reply.blocks)
    # Only the thread: nothing at the top of the channel but the alert itself.
    assert [m.ts for m in system.slack.top_level(OPS_CHANNEL)] == [alert.ts]


async def test_a_question_inside_a_thread_is_answered_in_that_thread(system: System) -> None:
    root = await system.slack.post_as(OPS_CHANNEL, "deploy going out", user=ADMIN)
    question = await system.slack.post_as(
        OPS_CHANNEL, "is <https://dashboard.heroku.com/apps/my-app|my-app> ok?", user=STRANGER,
        thread_ts=root.ts,
    )
    await system.slack.message_shortcut(
        SHORTCUT, user_id=ADMIN, channel_id=OPS_CHANNEL, message_ts=question.ts
    )
    (reply,) = await system.slack.wait_for(lambda: bot_replies(system, OPS_CHANNEL, root.ts), timeout=10)
    assert reply.thread_ts == root.ts and "`my-app`" in blocks_text(reply.blocks)


async def test_a_message_naming_no_known_app_gets_a_clear_ephemeral_answer(system: System) -> None:
    lunch = await system.slack.post_as(OPS_CHANNEL, "lunch at noon? my-app-staging is fine", user=ADMIN)
    await system.slack.message_shortcut(SHORTCUT, user_id=ADMIN, channel_id=OPS_CHANNEL, message_ts=lunch.ts)
    (said,) = await system.slack.wait_for(lambda: system.slack.ephemerals, timeout=10)
    assert said["user"] == ADMIN
    assert "found no app pgconn knows in that message" in said["text"]
    assert "`my-app`" in said["text"] and "`std-app`" in said["text"]
    await settled(system.bot)
    assert bot_replies(system, OPS_CHANNEL, lunch.ts) == []
    assert system.heroku.requests == []


async def test_from_another_workspace_or_a_shared_channel_nothing_runs(system: System) -> None:
    system.slack.add_channel("C0SHARED1", "shared-with-vendor", ext_shared=True)
    shared = await system.slack.post_as("C0SHARED1", "std-app is down", user=ADMIN)
    mine = await system.slack.post_as(OPS_CHANNEL, "std-app is slow", user=ADMIN)
    await system.slack.message_shortcut(SHORTCUT, user_id=ADMIN, channel_id="C0SHARED1", message_ts=shared.ts)
    await system.slack.message_shortcut(
        SHORTCUT, user_id="UOUTSIDER", channel_id=OPS_CHANNEL, message_ts=mine.ts, team_id="T0ELSEWHERE"
    )
    await settled(system.bot)
    assert bot_replies(system, "C0SHARED1", shared.ts) == []
    assert bot_replies(system, OPS_CHANNEL, mine.ts) == []
    assert system.heroku.requests == []
    assert {d.status for d in system.slack.deliveries if d.kind == "message_action"} == {200}
