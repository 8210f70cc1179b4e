"""Scenario 8: the Home tab of an admin of 50 apps → views.publish at Slack.

A bot of its own with 50 apps in PGCONN_APPS, each with what pgconn keeps for the Home tab: a
reading (two hours old, so each gets its Refresh button), three audit records, and for ten of
them an open incident whose thread is in the alert channel. The clock runs from the signed
`app_home_opened` leaving the load generator to the views.publish call reaching the Slack
emulator; the published view's blocks and bytes are recorded too. No Heroku call is made.
"""

from __future__ import annotations

import json
import time

import redis.asyncio as aioredis

from bench.common import Context, SlackWatch, wait_for_count, wait_until
from bench.system import ADMIN, ALERT_CHANNEL
from bench.table import Row, summary_ms
from bot.detect import Severity
from bot.state.home import Reading, ReadingStore
from bot.state.incidents import Incident, IncidentStore
from bot.state.remediation import AuditLog, AuditRecord
from tests.harness import bot_env, new_port, start_bot

APPS = 50
WITH_INCIDENT = 10
TARGET_MS = 500.0


async def _seed(ctx: Context, apps: list[str]) -> None:
    client = aioredis.Redis.from_url(ctx.system.redis_server.url, decode_responses=True)
    try:
        readings, audit, incidents = ReadingStore(client), AuditLog(client), IncidentStore(client)
        now = time.time()
        for i, app in enumerate(apps):
            await readings.save(
                Reading(
                    app=app, at=now - 7200, database=f"postgresql-{app}", used=17, limit=20, verdict="tight",
                    budget_line="Budget: *18* of 20 connections — tight, 90% of the limit (web 12, worker 3, "
                    "headroom 3)",
                )
            )
            for k in range(3):
                await audit.record(
                    AuditRecord(at=now - 60 * k, user=ADMIN, action="killall", app=app, ok=True,
                                result="terminated 18 connections")
                )
            if i < WITH_INCIDENT:
                parent = ctx.system.slack.post(
                    ALERT_CHANNEL, text=f"{app} is out of connections", blocks=None,
                    user=ctx.system.slack.bot_user_id, bot_id=ctx.system.slack.bot_id,
                )
                await incidents.commit(
                    None,
                    Incident(
                        app=app, database=f"postgresql-{app}", id=f"inc-{app}", severity=Severity.CRITICAL,
                        opened_at=now - 600, current=20, limit=20, channel=ALERT_CHANNEL, ts=parent.ts,
                    ),
                )
    finally:
        await client.aclose()


async def home_tab(ctx: Context) -> None:
    system = ctx.system
    apps = [f"home-{i:02d}-" + "x" * 22 for i in range(APPS)]  # 30 characters, Heroku's longest
    bot = start_bot(
        bot_env(
            slack_url=system.slack.url, heroku_url=system.heroku.url, redis_url=system.redis_server.url,
            port=new_port(), PGCONN_APPS=",".join(apps),
            # The alert engine's periodic check would probe the seeded incidents' databases through
            # Heroku while the tab is measured: it waits an hour here (the Home tab calls nothing).
            PGCONN_ALERT_TICK="3600",
        )
    )
    system.bots.append(bot)
    system.slack.request_url = bot.events_url
    try:
        await _seed(ctx, apps)
        # The reserved-connection keeper resolves every app once at start (2 Heroku calls each;
        # these apps have no database): the tab is measured once that pass is over.
        await wait_until(
            lambda: sum(f"/apps/{apps[-1]}/" in r.path for r in system.heroku.requests) >= 2, 60,
            "the keeper's first pass",
        )
        heroku_before = len(system.heroku.requests)
        samples: list[float] = []
        for _ in range(max(10, ctx.plan.report_samples)):
            watch = SlackWatch(system.slack, "views.publish")
            started = time.time()
            await system.slack.open_home(ADMIN)
            (call,) = await wait_for_count(watch, 1, 30, "the Home tab's views.publish")
            if call.error:
                raise RuntimeError(f"views.publish refused the Home tab: {call.error}")
            samples.append(call.received_at - started)
        shown = call.params["view"]
        view = json.loads(shown) if isinstance(shown, str) else shown
        size = len(call.body)
        heroku_calls = len(system.heroku.requests) - heroku_before
    finally:
        system.stop_bot(bot)
    s = summary_ms(samples)
    ctx.add(
        Row(
            "8",
            f"Home tab of {APPS} apps ({WITH_INCIDENT} with an incident): app_home_opened → views.publish",
            s.n, s.p50_ms, s.p99_ms,
            target=f"p99 < {TARGET_MS:.0f} ms", met=s.p99_ms < TARGET_MS,
            note=f"{len(view['blocks'])} blocks, views.publish body {size / 1000:.1f} KB; "
            f"{heroku_calls} Heroku calls",
        )
    )
    ctx.details["home_tab"] = {
        "latency": s, "blocks": len(view["blocks"]), "bytes": size, "heroku": heroku_calls
    }
