"""Scenario 7: a scale-up that breaks the budget → pgconn's warning at Slack.

Each sample is a fresh app: `/pgconn APP watch` (signed, through /slack/events) subscribes
to its webhooks and takes the budget's baseline; then web is scaled 3 → 8 through the
Platform API, the Heroku emulator delivers the signed formation webhook to the bot, and
the clock stops when the warning's chat.postMessage reaches the Slack emulator.
"""

from __future__ import annotations

import asyncio
import functools
import time

import httpx

from bench.common import Context, SlackWatch, wait_for_count, wait_until
from bench.system import ADMIN, ALERT_CHANNEL, OPS_CHANNEL
from bench.table import Row, percentile, summary_ms
from bench.wire import Connection, slash_command
from bot.heroku import PLATFORM_ACCEPT
from emulators.slack import RecordedCall
from sandbox.process import BotProcess
from tests.harness import PUBLIC_URL
from tests.support import API_KEY

WARNING_TARGET_MS = 1000.0


async def scale_to_warning(ctx: Context, bot: BotProcess, apps: list[str]) -> None:
    system = ctx.system
    system.heroku.webhooks.routes = {PUBLIC_URL: bot.url}
    conn = Connection(bot.url)
    samples: list[float] = []
    try:
        async with httpx.AsyncClient(
            base_url=system.heroku.url,
            headers={"Authorization": f"Bearer {API_KEY}", "Accept": PLATFORM_ACCEPT},
            timeout=30,
        ) as heroku:
            for app in apps:
                watched = SlackWatch(system.slack, "response_url")
                body, headers = slash_command(
                    system.slack, f"{app} watch", user_id=ADMIN, channel_id=OPS_CHANNEL
                )
                answer = await conn.request("POST", "/slack/events", headers, body)
                if answer.status != 200:
                    raise RuntimeError(f"/slack/events answered {answer.status}")
                await wait_for_count(watched, 1, 30, f"the answer to `/pgconn {app} watch`")
                watch = SlackWatch(system.slack, "chat.postMessage", ALERT_CHANNEL)
                started = time.time()
                scaled = await heroku.patch(f"/apps/{app}/formation/web", json={"quantity": 8})
                scaled.raise_for_status()
                calls = await wait_until(
                    functools.partial(_warnings_for, watch, app), 30, f"the budget warning for {app}"
                )
                samples.append(calls[0].received_at - started)
                await asyncio.sleep(0.2)
    finally:
        await conn.close()
        system.heroku.webhooks.routes = {}
    s = summary_ms(samples)
    answered = [
        d.attempts[-1].seconds for d in system.heroku.webhooks.deliveries if d.app in apps and d.attempts
    ]
    ctx.add(
        Row(
            "7",
            "scale-up past the budget → warning posted at Slack (webhook, re-read, post)",
            s.n,
            s.p50_ms,
            s.p99_ms,
            target=f"p99 < {WARNING_TARGET_MS:.0f} ms",
            met=s.p99_ms < WARNING_TARGET_MS,
            note=f"the bot answers Heroku's delivery in {percentile(answered, 50) * 1000:.0f} ms (p50); "
            f"{ctx.heroku_latency * 1000:.0f} ms per Heroku call",
        )
    )
    ctx.details["scale_to_warning"] = s


def _warnings_for(watch: SlackWatch, app: str) -> list[RecordedCall]:
    return [c for c in watch.calls() if app in str(c.params.get("text", ""))]
