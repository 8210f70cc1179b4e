"""Other workspaces and shared channels (issue 20, item 8): reports carry role names, client
addresses and query text, so nothing is answered or done for a request from another workspace,
another organisation, or a channel shared with one; `diagnose` is for the asker alone unless
an admin asks."""

from __future__ import annotations

import json

import redis

from tests.conftest import System
from tests.harness import ADMIN, OPS_CHANNEL, STRANGER
from tests.hostile.helpers import (
    click_payload,
    deliver_payload,
    destructive_heroku_calls,
    new_message,
    post_report,
    slash_body,
)

SHARED = "C0CONNECT"
OTHER_TEAM = "T0OTHERORG"


async def test_a_slash_command_from_another_workspace_is_refused(system: System) -> None:
    body = slash_body(system, "my-app").replace(
        f"team_id={system.slack.team_id}".encode(), f"team_id={OTHER_TEAM}".encode()
    )
    response = await system.slack.deliver(body, kind="slash_command")
    assert response.status_code == 200
    assert response.json()["text"].startswith(":no_entry: pgconn answers only in its own workspace")
    assert system.heroku.requests == []
    assert system.slack.messages(OPS_CHANNEL) == [] and system.slack.calls("chat.postMessage") == []
    assert f"refused a Slack request from team {OTHER_TEAM}" in system.bot.logs()


async def test_a_click_by_a_user_of_another_organisation_does_nothing(system: System) -> None:
    report = await post_report(system)
    system.load.open(3, "web.1")
    since = len(system.heroku.requests)
    elsewhere = (
        {"id": OTHER_TEAM, "domain": "other"},
        {"id": system.slack.team_id, "enterprise_id": "E0OTHER"},
    )
    for team in elsewhere:
        payload = click_payload(system, report, "pgconn.killall")  # by an admin's id, from elsewhere
        payload["user"]["team_id"] = team["id"]
        payload["team"] = team
        assert (await deliver_payload(system, payload)).status_code == 200
    # A click from home, after them, is handled: so they were handled first, and did nothing.
    await deliver_payload(system, click_payload(system, report, "pgconn.kill_idle", user=STRANGER))
    await system.slack.wait_for(
        lambda: [e for e in system.slack.ephemerals if "Only pgconn admins" in str(e)], timeout=15
    )
    assert system.load.alive() == 3
    assert destructive_heroku_calls(system, since) == []
    assert system.slack.thread(OPS_CHANNEL, report.ts) == []
    assert redis.Redis.from_url(system.redis_url).xlen("pgconn:audit:my-app") == 0


async def test_nothing_is_answered_in_a_channel_shared_with_another_organisation(system: System) -> None:
    system.slack.add_channel(SHARED, "connect-with-vendor", ext_shared=True)
    response = await system.slack.send_slash_command("my-app", user_id=ADMIN, channel_id=SHARED)
    assert response.json()["text"].startswith(":no_entry: pgconn answers only in its own workspace")
    # Another tool's alert there: the Events API says the channel is shared.
    envelope = system.slack.event_envelope(
        {"type": "message", "subtype": "bot_message", "bot_id": "B0DATADOG", "channel": SHARED,
         "text": "[Triggered] my-app: too many connections", "ts": "1700000000.000100"}
    )
    envelope["is_ext_shared_channel"] = True
    delivered = await system.slack.deliver(
        json.dumps(envelope).encode(), content_type="application/json", kind="event_callback"
    )
    assert delivered.status_code == 200
    # The same command in the team's own channel is answered: the refusal was the channel's.
    await system.slack.send_slash_command("my-app", user_id=ADMIN, channel_id=OPS_CHANNEL)
    await new_message(system, 0)
    assert system.slack.messages(SHARED) == []
    assert all(c.get("channel") != SHARED for c in system.slack.calls("chat.postMessage"))


async def test_diagnose_is_shown_only_to_the_member_who_asked_and_in_the_channel_when_an_admin_asks(
    system: System,
) -> None:
    await system.slack.send_slash_command("my-app diagnose", user_id=STRANGER, channel_id=OPS_CHANNEL)
    private = await system.slack.wait_for(
        lambda: next((e for e in system.slack.ephemerals if e.get("blocks") and e["user"] == STRANGER), None),
        timeout=15,
    )
    assert "my-app" in json.dumps(private["blocks"])
    assert system.slack.messages(OPS_CHANNEL) == []
    await system.slack.send_slash_command("my-app diagnose", user_id=ADMIN, channel_id=OPS_CHANNEL)
    shown = await new_message(system, 0)
    assert shown.blocks
