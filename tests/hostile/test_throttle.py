"""Throttling (issue 20, item 4), against a bot of its own whose limits are low (the session
bot's are generous: other tests send bursts of 200 commands)."""

from __future__ import annotations

import asyncio

from tests.conftest import System
from tests.harness import ADMIN, ALERT_CHANNEL, OPS_CHANNEL
from tests.hostile.helpers import dedicated_bot, post_report, thread_reply


def answers(system: System, user: str) -> list[str]:
    return [str(e.get("text", "")) for e in system.slack.ephemerals if e.get("user") == user]


def reports(system: System) -> int:
    return len([m for m in system.slack.messages(OPS_CHANNEL) if m.blocks])


async def test_one_person_repeating_a_command_is_refused_beyond_the_rate_and_others_are_not(
    system: System,
) -> None:
    # In the app's alert channel, where its audit is anyone's to read (bot/authz.py "team"): a
    # refusal here can only be the throttle's.
    with dedicated_bot(system, PGCONN_USER_RATE="3"):
        for _ in range(5):
            await system.slack.send_slash_command(
                "my-app audit", user_id="UREPEATER", channel_id=ALERT_CHANNEL
            )
        await system.slack.send_slash_command("my-app audit", user_id="UOTHER01", channel_id=ALERT_CHANNEL)
        got = await system.slack.wait_for(
            lambda: (lambda a, b: (a, b) if len(a) == 5 and len(b) == 1 else None)(
                answers(system, "UREPEATER"), answers(system, "UOTHER01")
            ),
            timeout=15,
        )
    repeater, other = got
    refused = [a for a in repeater if "more than 3 `/pgconn` commands in the last minute" in a]
    assert len(refused) == 2 and len(repeater) - len(refused) == 3
    assert "more than 3" not in other[0]


async def test_reads_of_one_app_are_capped_per_minute_for_everyone_together(system: System) -> None:
    with dedicated_bot(system, PGCONN_APP_RATE="2"):
        for user in ("UREADER1", "UREADER2", "UREADER3"):
            await system.slack.send_slash_command("my-app", user_id=user, channel_id=OPS_CHANNEL)
        await system.slack.send_slash_command("std-app", user_id="UREADER3", channel_id=OPS_CHANNEL)
        refusal = await system.slack.wait_for(
            lambda: next((t for u in ("UREADER1", "UREADER2", "UREADER3") for t in answers(system, u)
                          if "has been read more than 2 times" in t), None),
            timeout=15,
        )
        await system.slack.wait_for(lambda: reports(system) == 3 or None, timeout=15)
    assert refusal.startswith(":hourglass: `my-app` has been read more than 2 times in the last minute")


async def test_heroku_calls_kept_for_fixes_refuse_reports_but_not_kill_all(system: System) -> None:
    report = await post_report(system)  # from the session bot, while the allowance is plenty
    system.load.open(3, "web.1")
    # The emulator reports 4,499 calls left: a reserve of 4,500 makes that "too low to read".
    with dedicated_bot(system, PGCONN_HEROKU_RESERVE="4500"):
        await system.slack.send_slash_command("my-app", user_id=ADMIN, channel_id=OPS_CHANNEL)  # learns it
        await system.slack.send_slash_command("my-app", user_id=ADMIN, channel_id=OPS_CHANNEL)
        paused = await system.slack.wait_for(
            lambda: next((t for t in answers(system, ADMIN) if "reports are paused" in t), None), timeout=15
        )
        assert "pgconn keeps the last 4500 for fixes" in paused
        await system.slack.click(
            action_id="pgconn.killall", value="my-app", user_id=ADMIN, channel_id=OPS_CHANNEL,
            message_ts=report.ts,
        )
        done = await thread_reply(system, report, "Kill all")
    assert done.text.startswith(f":white_check_mark: <@{ADMIN}> ran *Kill all*")
    assert system.load.alive() == 0


async def test_work_in_flight_is_bounded_and_the_rest_is_told_busy(system: System) -> None:
    system.heroku.latency = 0.5  # every report takes a while: they pile up
    users = [f"UBURST{i:02d}" for i in range(8)]
    with dedicated_bot(system, PGCONN_MAX_IN_FLIGHT="2"):
        acks = await asyncio.gather(
            *(system.slack.send_slash_command("my-app", user_id=u, channel_id=OPS_CHANNEL) for u in users)
        )
        busy = [a for a in acks if "pgconn is busy" in a.text]
        await system.slack.wait_for(lambda: reports(system) == len(acks) - len(busy) or None, timeout=30)
    assert all(a.status_code == 200 for a in acks)
    # Two admitted at once; the rest arrive while those two still wait for Heroku.
    assert len(busy) >= 4, [a.text for a in acks]
    assert reports(system) == len(acks) - len(busy)
