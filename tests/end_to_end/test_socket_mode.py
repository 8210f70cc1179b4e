"""Socket Mode end to end: `SLACK_APP_TOKEN` set, the real bot connects to the emulated
`apps.connections.open` WebSocket, and a slash command, a click and an event reach it as
envelopes it acknowledges by `envelope_id`; a `disconnect` makes it reconnect and carry on.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from emulators.slack import SlackEmulator
from tests.conftest import System
from tests.harness import ADMIN, OPS_CHANNEL, BotProcess, bot_env, new_port, start_bot
from tests.hostile.helpers import thread_reply

APP_TOKEN = "xapp-1-A0PGCONN-secret-app-token-31415"


@pytest.fixture
def socket_bot(system: System) -> Iterator[BotProcess]:
    slack = system.slack
    slack.app_token = APP_TOKEN
    env = bot_env(
        slack_url=slack.url,
        heroku_url=system.heroku.url,
        redis_url=system.redis_url,
        port=new_port(),
        SLACK_APP_TOKEN=APP_TOKEN,
    )
    del env["SLACK_SIGNING_SECRET"]  # Socket Mode needs none
    bot = start_bot(env)
    slack.socket_mode = True
    try:
        yield bot
    finally:
        slack.socket_mode = False
        slack.app_token = None
        bot.stop()
        slack.request_url = system.bot.events_url


async def connected(slack: SlackEmulator, count: int = 1) -> None:
    await slack.wait_for(lambda: len(slack.socket.connections) >= count and slack.socket.open_connections)


async def test_slash_command_click_and_event_over_socket_mode_then_a_reconnect(
    system: System, socket_bot: BotProcess
) -> None:
    slack = system.slack
    await connected(slack)
    opened = [c for c in slack.received if c.method == "apps.connections.open"]
    assert len(opened) == 1 and opened[0].status == 200 and opened[0].response["ok"]

    # The slash command: acknowledged by envelope_id, then the report in the channel.
    before = len(slack.messages(OPS_CHANNEL))
    answer = await slack.send_slash_command("my-app", user_id=ADMIN, channel_id=OPS_CHANNEL)
    assert answer.status_code == 200
    report = await slack.wait_for(
        lambda: next((m for m in slack.messages(OPS_CHANNEL)[before:] if m.blocks), None), timeout=15
    )
    assert "Top holders" in str(report.blocks)

    # A click on that report's Kill all.
    system.load.open(2, "web.1")
    click = await slack.click(
        action_id="pgconn.killall", value="my-app", user_id=ADMIN, channel_id=OPS_CHANNEL,
        message_ts=report.ts,
    )
    assert click.status_code == 200
    await thread_reply(system, report, "terminated 2 of 2")
    assert system.load.alive() == 0

    # An event: another tool's alert, answered in its thread.
    alert = await slack.post_as(OPS_CHANNEL, "[Triggered] my-app: too many connections", bot_id="B0DATADOG")
    await slack.wait_for(lambda: slack.thread(OPS_CHANNEL, alert.ts), timeout=15)

    acks = slack.socket.acks
    assert [a.type for a in acks] == ["slash_commands", "interactive", "events_api"]
    assert all(a.elapsed < slack.ack_deadline for a in acks)
    assert {d["envelope_id"] for d in slack.socket.received} >= {a.envelope_id for a in acks}

    # Slack asks the app to reconnect: it opens a new connection, and the old one is closed.
    old = slack.socket.request_reconnect()
    await connected(slack, count=2)
    slack.socket.close(old)
    assert len([c for c in slack.received if c.method == "apps.connections.open"]) == 2
    before = len(slack.messages(OPS_CHANNEL))
    again = await slack.send_slash_command("my-app", user_id=ADMIN, channel_id=OPS_CHANNEL)
    assert again.status_code == 200
    await slack.wait_for(
        lambda: next((m for m in slack.messages(OPS_CHANNEL)[before:] if m.blocks), None), timeout=15
    )
    assert slack.socket.acks[-1].connection == slack.socket.open_connections[-1].id != old.id


def test_sigterm_stops_a_socket_mode_bot(system: System, socket_bot: BotProcess) -> None:
    socket_bot.process.send_signal(signal.SIGTERM)
    # Heroku sends SIGKILL 30 s after SIGTERM: the process must be gone well before, having
    # shut down (uvicorn re-raises the signal once it has: -15), not hung on its WebSocket.
    assert socket_bot.process.wait(timeout=15) in (0, -signal.SIGTERM)
    assert "Traceback" not in socket_bot.logs()
