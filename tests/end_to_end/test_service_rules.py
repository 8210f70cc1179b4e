"""Rules of the real Heroku and Slack services, run through the real bot (issue 15).

Each test models one rule the friendly emulators used to leave out (the facts and their
sources are in ../shared/contracts/README.md, "Rules of the real services").
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
from collections.abc import Iterator

import httpx
import pytest

from bot.heroku import PLATFORM_ACCEPT
from bot.remediation import PREPARED_STATEMENTS_ADVICE
from emulators.slack import Message
from sandbox.servers import LocalRedis
from tests import harness
from tests.bot.samples import fatal_line, frame, logplex_headers, metric_line
from tests.conftest import System
from tests.end_to_end.conftest import Alerts, addon, blocks_of, start_alert_bot
from tests.end_to_end.test_budget_warnings import parents, replies, scale, settled
from tests.end_to_end.test_remediation import click, post_report, thread_reply
from tests.end_to_end.test_webhooks import slash
from tests.harness import ADMIN, OPS_CHANNEL, PUBLIC_URL, BotProcess
from tests.hostile.helpers import dedicated_bot
from tests.support import API_KEY

# -- 1. one rule for the connection limit: pg:info's figure, the plan table only without it --


@pytest.fixture
def fresh_alert_bot(alerts: Alerts, redis_server: LocalRedis) -> Iterator[BotProcess]:
    """An alert bot that has not resolved any app yet (the engine keeps limits for 5 minutes)."""
    bot = start_alert_bot(alerts.slack, alerts.system.heroku, redis_server)
    alerts.bot = bot
    alerts.slack.request_url = bot.events_url
    yield bot
    bot.stop()


async def test_pg_info_limit_wins_over_the_plan_table_for_alerts_report_and_budget(
    alerts: Alerts, fresh_alert_bot: BotProcess
) -> None:
    app, db = "std-app", addon("std-app")
    # A Standard-0 database (the table says 120) whose pg:info says 400.
    alerts.system.heroku.apps[app].addon.connection_limit = 400
    # 100 active: 83% of the table's 120 (a warning), 25% of the real 400 (nothing).
    assert (await alerts.drain(frame([metric_line(100, addon=db)]), app=app)).status_code == 204
    assert (await alerts.drain(frame([metric_line(390, addon=db)]), app=app)).status_code == 204
    parent = await alerts.one_parent()
    versions = [blocks_of(e) for e in parent.edits] + [blocks_of(parent)]
    # The first alert is the one at 390 of 400: 100 raised nothing.
    assert "*Critical*" in versions[0] and "*Warn*" not in "".join(versions)
    assert "390/400" in parent.text or "390/400" in blocks_of(parent)
    text = blocks_of(parent)
    assert "limit 400 from pg:info" in text
    assert re.search(r"Budget: \*\d+\* of 400 connections", text)
    assert alerts.replies(parent) == []

    # `/pgconn std-app budget` uses the same limit.
    await alerts.slack.send_slash_command(f"{app} budget", user_id=ADMIN, channel_id=OPS_CHANNEL)
    budget = await alerts.slack.wait_for(
        lambda: next(
            (m for m in alerts.slack.messages(OPS_CHANNEL) if "Connection budget" in blocks_of(m)), None
        ),
        timeout=15,
    )
    assert "of *400*" in blocks_of(budget) or "allows *400*" in blocks_of(budget)


async def test_add_pgbouncer_sizes_the_pool_against_pg_infos_limit(alerts: Alerts) -> None:
    system = alerts.system
    # An Essential-0 database (the table says 20) whose pg:info says 40.
    system.heroku.apps["my-app"].addon.connection_limit = 40
    report = await post_report(system)
    assert "limit 40 from pg:info" in blocks_of(report)
    await click(system, report, "pgconn.add_pgbouncer")
    (reply,) = await thread_reply(system, report, "Add PgBouncer")
    pool = int(system.heroku.apps["my-app"].config_vars["PGBOUNCER_DEFAULT_POOL_SIZE"])
    reserve = int(system.heroku.apps["my-app"].config_vars["PGBOUNCER_RESERVE_POOL_SIZE"])
    # 4 dynos and 3 headroom: a pool sized for 40 does not fit 20.
    assert 4 * (pool + reserve) + 3 > 20 and 4 * (pool + reserve) + 3 <= 40
    assert "of 40." in reply.text


# -- 9. PgBouncer ≥ 1.21 keeps protocol-level prepared statements: set it, advise per driver ----


async def test_add_pgbouncer_turns_on_prepared_statements_and_advises_per_driver(system: System) -> None:
    report = await post_report(system)
    await click(system, report, "pgconn.add_pgbouncer")
    (reply,) = await thread_reply(system, report, "Add PgBouncer")
    # The buildpack's default is 0 (prepared statements refused); PgBouncer's own is 200.
    assert system.heroku.apps["my-app"].config_vars["PGBOUNCER_MAX_PREPARED_STATEMENTS"] == "200"
    assert "PGBOUNCER_MAX_PREPARED_STATEMENTS=200" in reply.text
    # my-app runs Django under gunicorn: psycopg 3.2+ on libpq 17 keeps preparing.
    assert "libpq 17" in reply.text and "prepare_threshold" in reply.text


def test_prepared_statement_advice_names_what_each_driver_needs_now() -> None:
    rails = PREPARED_STATEMENTS_ADVICE["rails"]
    assert "prepared_statements: false" in rails and "rails/rails#55683" in rails
    for driver in ("django", "sqlalchemy", "psycopg"):
        advice = PREPARED_STATEMENTS_ADVICE[driver]
        assert "3.2+" in advice and "libpq 17" in advice and "prepare_threshold" in advice
        assert "older libpq" in advice  # prepare_threshold=None only there, no longer always
    assert "pgbouncer=true" in PREPARED_STATEMENTS_ADVICE["node"]
    assert "do not add" in PREPARED_STATEMENTS_ADVICE["node"]


# -- 6. response_url: at most 5 posts within 30 minutes; results still reach the person --------

NOT_IN = "C0NOTIN15"


async def test_in_a_channel_the_bot_is_not_in_every_result_reaches_the_person(system: System) -> None:
    slack = system.slack
    if NOT_IN not in slack.channels:
        slack.add_channel(NOT_IN, "not-in-15", member=False)
    await slack.send_slash_command("my-app", user_id=ADMIN, channel_id=NOT_IN)
    report = await slack.wait_for(
        lambda: next((m for m in slack.messages(NOT_IN) if m.blocks), None), timeout=15
    )
    system.load.open(3, "web.1")

    # A click (after its confirm dialog) on a button of that report: Kill all, then Restart
    # followed until every dyno is up.
    assert (await click_in(system, report, "pgconn.killall")).status_code == 200
    await ephemeral_with(system, "ran *Kill all* on `my-app`: terminated 3 of 3")
    assert (await click_in(system, report, "pgconn.restart")).status_code == 200
    await ephemeral_with(system, "ran *Restart dynos* on `my-app`: restarted 4 dynos")
    final = await ephemeral_with(system, "All 4 dynos are up", timeout=30)
    assert "restarted 4 dynos" in final
    # Slack refused nothing: no sixth post to one URL, none late.
    answers = [c for c in slack.received if c.method == "response_url"]
    assert answers and all(c.status == 200 for c in answers), [(c.status, c.response) for c in answers]


async def test_the_emulator_refuses_a_sixth_post_and_a_late_one(system: System) -> None:
    slack = system.slack
    url = slack.new_response_url(channel=OPS_CHANNEL, user=ADMIN)
    async with httpx.AsyncClient() as http:
        codes = [(await http.post(url, json={"text": f"post {i}"})).status_code for i in range(6)]
        assert codes == [200] * 5 + [404]
        slack.response_url_ttl = 0.0
        late = await http.post(slack.new_response_url(channel=OPS_CHANNEL, user=ADMIN), json={"text": "x"})
    slack.response_url_ttl = 30 * 60.0
    assert (late.status_code, late.text) == (404, "expired_url")


async def click_in(system: System, report: Message, action_id: str) -> httpx.Response:
    return await system.slack.click(
        action_id=action_id, value="my-app", user_id=ADMIN, channel_id=report.channel, message_ts=report.ts
    )


async def ephemeral_with(system: System, contains: str, timeout: float = 15) -> str:
    found = await system.slack.wait_for(
        lambda: next(
            (str(e["text"]) for e in system.slack.ephemerals if contains in str(e.get("text"))), None
        ),
        timeout=timeout,
    )
    return str(found)


# -- 7. Slack re-sends an event that got no 2xx within 3 s: answered once all the same --------


@pytest.mark.late_acks
async def test_an_event_slack_retries_after_a_frozen_bot_is_answered_once(alerts: Alerts) -> None:
    slack, bot = alerts.slack, alerts.bot
    slack.event_retry_delays = (0.0, 0.5, 0.5)
    os.kill(bot.process.pid, signal.SIGSTOP)  # a dyno that stalls (GC, CPU): no answer in 3 s
    try:
        posting = asyncio.create_task(
            slack.post_as(OPS_CHANNEL, "[Triggered] my-app: too many connections", bot_id="B0DATADOG")
        )
        await slack.wait_for(
            lambda: [d for d in slack.deliveries if d.status == 504] or None, timeout=15
        )
    finally:
        os.kill(bot.process.pid, signal.SIGCONT)
        slack.event_retry_delays = (0.0, 60.0, 300.0)
    alert = await asyncio.wait_for(posting, timeout=30)
    retried = [d.headers.get("X-Slack-Retry-Num") for d in slack.deliveries if d.kind == "event_callback"]
    assert retried[0] is None and "1" in retried  # Slack re-sent it, with its retry headers
    (reply,) = await alerts.until(lambda: alerts.slack.thread(OPS_CHANNEL, alert.ts))
    # Everything delivered so far has been handled once another alert is answered after it.
    later = await slack.post_as(OPS_CHANNEL, "[Triggered] bare-app: too many connections", bot_id="B0DATADOG")
    await alerts.until(lambda: alerts.slack.thread(OPS_CHANNEL, later.ts))
    assert alerts.slack.thread(OPS_CHANNEL, alert.ts) == [reply]
    assert alerts.parents() == []  # and no incident opened from it


# -- 4. logplex re-sends a frame (same Logplex-Frame-Id) after a non-2xx, a timeout or a drop --


async def test_the_same_frame_delivered_three_times_counts_once(
    alerts: Alerts, second_alert_bot: BotProcess
) -> None:
    retried = logplex_headers(1)["Logplex-Frame-Id"]
    body = frame([fatal_line()])
    # The first delivery, logplex's retry of it, and a retry that reached another dyno.
    for bot in (alerts.bot, alerts.bot, second_alert_bot):
        response = await alerts.drain(body, bot=bot, headers={"Logplex-Frame-Id": retried})
        assert response.status_code == 204
    # Then a new frame of 10: once it is counted, every delivery above has been too.
    assert (await alerts.drain(frame([fatal_line()] * 10), count=10)).status_code == 204
    parent = await alerts.one_parent()
    count = await alerts.until(lambda: (n := refused_count(parent)) is not None and n >= 11 and n)
    assert count == 11  # 1 + 10: the two re-sent copies counted nothing


async def test_a_body_with_a_broken_tail_is_not_refused_with_a_4xx(alerts: Alerts) -> None:
    good = frame([fatal_line()])
    assert (await alerts.drain(good + b"99 truncated")).status_code == 204
    # Nothing parseable at all is still a 400: that sender is not logplex.
    assert (await alerts.drain(b"99 truncated")).status_code == 400
    parent = await alerts.one_parent()  # the head's refusal was counted
    await alerts.until(lambda: refused_count(parent) == 1)


def refused_count(message: Message) -> int | None:
    m = re.search(r"([\d,]+) refused connections?", blocks_of(message))
    return int(m.group(1).replace(",", "")) if m else None


# -- 3. Heroku retries a "sync" webhook delivery that got no 2xx: a warning is never lost ------


async def test_a_scale_up_delivered_while_heroku_fails_the_re_read_warns_once_after_the_retry(
    system: System,
) -> None:
    await slash(system, "my-app watch")
    (hook,) = system.heroku.apps["my-app"].webhooks
    assert hook.level == "sync"  # Heroku retries these for up to 72 hours; "notify" never
    system.heroku.webhooks.retry_delay = 0.5
    try:
        # pgconn's re-read of the formation fails during the first attempt only.
        system.heroku.inject(path="/apps/my-app/formation", method="GET", status=503, times=4)
        await scale(system, "my-app", "web", 6)
        await settled(system)
    finally:
        system.heroku.webhooks.retry_delay = 0.2
    (delivery,) = system.heroku.webhooks.of("my-app")
    codes = [a.code for a in delivery.attempts]
    assert codes[0] == 503 and codes[-1] == 200 and delivery.status == "succeeded", codes
    (parent,) = parents(system)
    assert "scaled web 3 → 6" in blocks_of(parent) and replies(system, parent) == []


async def test_a_scale_up_delivered_while_the_bot_is_down_warns_once_after_the_retry(system: System) -> None:
    await slash(system, "my-app watch")
    system.heroku.webhooks.retry_delay = 1.0
    system.heroku.webhooks.routes = {PUBLIC_URL: "http://127.0.0.1:1"}  # restarting: nobody answers
    try:
        await scale(system, "my-app", "web", 6)
        (delivery,) = system.heroku.webhooks.of("my-app")
        await system.slack.wait_for(lambda: delivery.attempts and delivery.attempts[0].status == "failed")
        system.heroku.webhooks.routes = {PUBLIC_URL: system.bot.url}  # back up
        await settled(system)
    finally:
        system.heroku.webhooks.retry_delay = 0.2
    assert delivery.status == "succeeded" and len(delivery.attempts) >= 2
    (parent,) = parents(system)
    assert "scaled web 3 → 6" in blocks_of(parent) and replies(system, parent) == []


# -- 2. Heroku's token pool: 4,500, refilled 75 a minute, 429 with no Retry-After --------------


async def test_with_the_pool_nearly_empty_answers_state_the_wait_and_no_call_is_bound_to_fail(
    system: System,
) -> None:
    slack, pool = system.slack, system.heroku.rate_limit
    with dedicated_bot(system) as bot:
        pool.set(3)  # what an account left after a busy hour has
        first = len(slack.messages(OPS_CHANNEL))
        # A burst of 12 reports: 3 shared calls for the app, then pg:info for each.
        await asyncio.gather(
            *(slack.send_slash_command("my-app", user_id=ADMIN, channel_id=OPS_CHANNEL) for _ in range(12))
        )
        await harness.settled(bot, timeout=60)
        reports = [m for m in slack.messages(OPS_CHANNEL)[first:] if m.blocks]
        waits = [int(n) for text in answers(system) for n in re.findall(r"[Tt]ry again in (\d+)s", text)]
        # Every report answered; those that pg:info could not wait for say how long, in a note.
        refusals = [e for e in slack.ephemerals if "rate limit" in str(e)]
        assert len(reports) + len(refusals) == 12, answers(system)
        assert waits, answers(system)  # the pool ran out, and people were told when it is back
        # And Heroku never had to refuse a call pgconn made.
        assert pool.refused == 0, [f"{r.method} {r.path}" for r in system.heroku.requests]

        # A click while the pool is spent: its answer states the wait, or it was paced and ran.
        system.load.open(2, "web.1")
        clicked_at = len(slack.ephemerals)
        assert (await click_in(system, reports[0], "pgconn.killall")).status_code == 200
        await harness.settled(bot, timeout=60)
        said = [str(e.get("text")) for e in slack.ephemerals[clicked_at:]]
        done = [m for m in slack.thread(OPS_CHANNEL, reports[0].ts) if "ran *Kill all*" in m.text]
        refused = [t for t in said if "try again in" in t.lower()]
        assert done or refused, said
        if refused:
            (wait,) = re.findall(r"[Tt]ry again in (\d+)s", refused[0])
            assert system.load.alive() == 2  # nothing was done
            await asyncio.sleep(int(wait))  # the stated wait is true: then the same button works
            assert (await click_in(system, reports[0], "pgconn.killall")).status_code == 200
            await thread_reply(system, reports[0], "ran *Kill all*")
        assert system.load.alive() == 0
        assert pool.refused == 0


def answers(system: System) -> list[str]:
    """Everything pgconn said in the ops channel and to people, as text."""
    said = [blocks_of(m) + m.text for m in system.slack.messages(OPS_CHANNEL)]
    return said + [str(e.get("text")) for e in system.slack.ephemerals]


async def test_the_emulators_empty_pool_answers_as_heroku_does(system: System) -> None:
    heroku = system.heroku
    headers = {"Authorization": f"Bearer {API_KEY}", "Accept": PLATFORM_ACCEPT}
    heroku.rate_limit.set(1)
    async with httpx.AsyncClient(base_url=heroku.url) as http:
        ok = await http.get("/apps/my-app/formation", headers=headers)
        refused = await http.get("/apps/my-app/formation", headers=headers)
        free = await http.get("/account/rate-limits", headers=headers)
    assert ok.status_code == 200 and ok.headers["RateLimit-Remaining"] == "0"
    assert refused.status_code == 429 and refused.json()["id"] == "rate_limit"
    assert "Retry-After" not in refused.headers and refused.headers["RateLimit-Remaining"] == "0"
    assert free.status_code == 200 and free.json()["remaining"] <= 1  # costs nothing
