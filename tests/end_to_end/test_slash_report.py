"""`/pgconn APP` end to end: signed slash command → real bot process → emulators + real Postgres."""

from __future__ import annotations

import asyncio
import re
import time

import httpx

from emulators.slack import Message
from tests.conftest import System
from tests.harness import ADMIN, OPS_CHANNEL, bot_env, new_port, start_bot
from tests.support import API_KEY, DB_PASSWORD, ROLE_LIMIT, blocks_text, role_backends


async def report_message(system: System, before: int = 0) -> Message:
    return await system.slack.wait_for(
        lambda: next((m for m in system.slack.messages(OPS_CHANNEL)[before:] if m.blocks), None),
        timeout=10,
    )


async def ephemeral_text(system: System) -> str:
    found = await system.slack.wait_for(lambda: system.slack.ephemerals, timeout=10)
    return str(found[-1].get("text", ""))


def connections_shown(message: Message) -> tuple[int, int]:
    match = re.search(r"\*Connections:\* \*(\d+)/(\d+)\*", blocks_text(message.blocks))
    assert match, blocks_text(message.blocks)
    return int(match.group(1)), int(match.group(2))


async def test_healthy_database_report_shows_true_numbers(system: System) -> None:
    system.load.open(4, "web.1")
    response = await system.slack.send_slash_command("my-app", user_id=ADMIN, channel_id=OPS_CHANNEL)
    assert response.status_code == 200
    message = await report_message(system)
    text = blocks_text(message.blocks)
    used, limit = connections_shown(message)
    # The report counts pgconn's own reserved connection, as pg:info does.
    assert (used, limit) == (5, ROLE_LIMIT)
    assert "my-app" in text and "Essential" in text
    assert "*4* `web.1`" in text
    assert "Budget" in text
    action_ids = {e["action_id"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]}
    assert action_ids == {"pgconn.kill_idle", "pgconn.killall", "pgconn.restart", "pgconn.add_pgbouncer"}


async def test_full_role_report_shows_twenty_of_twenty_and_the_grouping(system: System) -> None:
    # First report opens pgconn's reserved connection while there is room.
    await system.slack.send_slash_command("my-app", user_id=ADMIN, channel_id=OPS_CHANNEL)
    await report_message(system)
    system.load.open(10, "web.1")
    system.load.open(6, "web.2", state="idle_in_tx")
    system.load.open(5, "worker.1")
    assert role_backends(system.pg) == ROLE_LIMIT
    assert system.load.failures and "too many connections for role" in system.load.failures[-1]
    await system.slack.send_slash_command("my-app", user_id=ADMIN, channel_id=OPS_CHANNEL)
    message = await report_message(system, before=1)
    text = blocks_text(message.blocks)
    assert connections_shown(message) == (ROLE_LIMIT, ROLE_LIMIT)
    assert "at the limit" in text
    assert "*10* `web.1`" in text and "*6* `web.2`" in text and "*3* `worker.1`" in text
    assert "*1* `pgconn-reserved`" in text
    assert "6 idle in transaction" in text


async def test_role_full_before_pgconn_connects_still_reports_pg_info(system: System) -> None:
    assert system.load.open(ROLE_LIMIT, "web.1") == ROLE_LIMIT
    await system.slack.send_slash_command("my-app", user_id=ADMIN, channel_id=OPS_CHANNEL)
    message = await report_message(system)
    text = blocks_text(message.blocks)
    assert connections_shown(message) == (ROLE_LIMIT, ROLE_LIMIT)
    assert "Holders could not be read" in text
    assert "too many connections" in text
    assert "Kill all* still works" in text


async def test_unreachable_database_is_reported_in_place_of_holders(system: System) -> None:
    await system.slack.send_slash_command("bare-app", user_id=ADMIN, channel_id=OPS_CHANNEL)
    text = blocks_text((await report_message(system)).blocks)
    assert "Holders could not be read" in text and "could not connect" in text
    assert DB_PASSWORD not in text


async def test_unknown_app_gets_a_specific_ephemeral_and_nothing_else(system: System) -> None:
    calls_before = len(system.heroku.requests)
    await system.slack.send_slash_command("not-ours", user_id=ADMIN, channel_id=OPS_CHANNEL)
    text = await ephemeral_text(system)
    assert "does not watch an app named `not-ours`" in text
    assert len(system.heroku.requests) == calls_before
    assert system.slack.messages(OPS_CHANNEL) == []


async def test_help(system: System) -> None:
    await system.slack.send_slash_command("help", user_id=ADMIN, channel_id=OPS_CHANNEL)
    assert "/pgconn APP budget" in await ephemeral_text(system)


async def test_bad_signature_is_401_and_nothing_runs(system: System) -> None:
    body = b"command=%2Fpgconn&text=my-app&user_id=UADMIN01&channel_id=C0OPS"
    ts = int(time.time())
    headers = system.slack.sign(body, ts)
    headers["X-Slack-Signature"] = headers["X-Slack-Signature"][:-1] + (
        "0" if headers["X-Slack-Signature"][-1] != "0" else "1"
    )
    async with httpx.AsyncClient() as client:
        response = await client.post(
            system.bot.events_url, content=body,
            headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 401
    assert system.heroku.requests == [] or all("my-app" not in r.path for r in system.heroku.requests)


async def test_stale_timestamp_is_401(system: System) -> None:
    before = len(system.heroku.requests)
    response = await system.slack.send_slash_command(
        "my-app", user_id=ADMIN, channel_id=OPS_CHANNEL, timestamp=int(time.time()) - 6 * 60
    )
    assert response.status_code == 401
    assert len(system.heroku.requests) == before


async def test_heroku_500_then_success_is_retried(system: System) -> None:
    system.heroku.inject(path="/addon-attachments", status=500, times=2)
    await system.slack.send_slash_command("my-app", user_id=ADMIN, channel_id=OPS_CHANNEL)
    message = await report_message(system)
    assert connections_shown(message)[1] == ROLE_LIMIT
    hits = [r for r in system.heroku.requests if r.path.endswith("/addon-attachments")]
    assert len(hits) >= 3


async def test_heroku_429_retry_after_is_honoured(system: System) -> None:
    system.heroku.inject(path="/formation", status=429, retry_after=1, times=1)
    await system.slack.send_slash_command("my-app", user_id=ADMIN, channel_id=OPS_CHANNEL)
    await report_message(system)
    hits = [r.time for r in system.heroku.requests if r.path.endswith("/formation")]
    assert len(hits) == 2 and hits[1] - hits[0] >= 0.9


async def test_heroku_429_longer_than_we_wait_tells_the_person(system: System) -> None:
    system.heroku.inject(path="/formation", status=429, retry_after=120, times=1)
    await system.slack.send_slash_command("my-app", user_id=ADMIN, channel_id=OPS_CHANNEL)
    text = await ephemeral_text(system)
    assert "rate-limiting" in text and "120s" in text


async def test_heroku_401_says_the_key_is_wrong_without_showing_it(system: System) -> None:
    system.heroku.inject(path="/addon-attachments", status=401, times=1)
    await system.slack.send_slash_command("my-app", user_id=ADMIN, channel_id=OPS_CHANNEL)
    text = await ephemeral_text(system)
    assert "HEROKU_API_KEY" in text
    assert API_KEY not in text


def actions_of(message: Message) -> list[dict]:
    return next(b for b in message.blocks if b["type"] == "actions")["elements"]


async def test_diagnose_lists_every_check_and_the_report_leads_with_the_cause_and_its_button(
    system: System,
) -> None:
    system.load.open(10, "web.1")  # the budget says 3 per web dyno (gunicorn -w 3)
    system.load.open(2, "worker.1")
    await system.slack.send_slash_command("my-app diagnose", user_id=ADMIN, channel_id=OPS_CHANNEL)
    message = await report_message(system)
    text = blocks_text(message.blocks)
    assert message.blocks[0]["type"] == "header"
    assert message.blocks[1]["text"]["text"] == (
        ":red_circle: *Likely cause:* web.1 holds 10 connections; the budget expects 3 per web dyno"
    )
    assert message.blocks[2]["text"]["text"].startswith("*Connections:* *13/20*")
    for name in (
        "Connection count", "Long-running queries", "Long transactions", "Idle in transaction",
        "Blocking queries", "Connections per dyno vs the budget",
    ):
        assert f"*{name}*" in text
    assert ":red_circle: *Connections per dyno vs the budget*" in text
    assert "• web.1 holds 10, the budget says 3 per web dyno" in text
    first = actions_of(message)[0]
    assert (first["action_id"], first["value"], first["style"]) == ("pgconn.restart", "my-app:web", "primary")

    # The button the cause leads with restarts the leaking process type, and only it.
    await system.slack.click(
        action_id=first["action_id"], value=first["value"], user_id=ADMIN, channel_id=OPS_CHANNEL,
        message_ts=message.ts,
    )

    def restarted() -> Message | None:
        return next((m for m in system.slack.thread(OPS_CHANNEL, message.ts) if "restarted" in m.text), None)

    reply = await system.slack.wait_for(restarted, timeout=15)
    assert "restarted 3 web dynos" in reply.text
    assert [r.path for r in system.heroku.requests if r.method == "DELETE"] == ["/apps/my-app/dynos/web"]
    assert system.load.alive() == 2  # worker.1's connections were left alone


async def test_idle_in_transaction_thresholds_from_the_environment_reach_the_report(system: System) -> None:
    bot = start_bot(
        bot_env(
            slack_url=system.slack.url,
            heroku_url=system.heroku.url,
            redis_url=system.redis_url,
            port=new_port(),
            PGCONN_DIAG_IDLE_IN_TX_S="0.2,0.5",
        )
    )
    try:
        system.slack.request_url = bot.events_url
        system.load.open(3, "worker.1", state="idle_in_tx")
        await asyncio.sleep(0.6)  # past the configured red threshold, by the server's clock
        await system.slack.send_slash_command("my-app", user_id=ADMIN, channel_id=OPS_CHANNEL)
        message = await report_message(system)
        assert message.blocks[1]["text"]["text"].startswith(
            ":red_circle: *Likely cause:* worker.1 holds 3 connections idle in transaction, the oldest for "
        )
        first = actions_of(message)[0]
        assert (first["action_id"], first["style"]) == ("pgconn.kill_idle", "primary")
        # The report leads with the cause; the checks themselves are for `diagnose`.
        assert "*Checks*" not in blocks_text(message.blocks)
    finally:
        system.slack.request_url = system.bot.events_url
        bot.stop()


async def test_budget_command_posts_the_full_table(system: System) -> None:
    await system.slack.send_slash_command("my-app budget", user_id=ADMIN, channel_id=OPS_CHANNEL)
    text = blocks_text((await report_message(system)).blocks)
    assert "Connection budget — my-app" in text
    assert "3 dynos × 3 gunicorn workers" in text
    assert "celery" in text
