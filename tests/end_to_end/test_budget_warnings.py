"""Prevention end to end: a scale-up or a release that breaks the connection budget posts a
warning in the alert channel before any connection fails, and a change back resolves it.

Nothing here delivers a webhook by hand except the replay: the Heroku emulator POSTs
each formation change and release to the subscription `/pgconn APP watch` made, signed
with its secret, to the running bot (the emulator routes the public URL to it).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import redis

from bot.heroku import PLATFORM_ACCEPT
from bot.render.remediation import ADD_PGBOUNCER
from bot.webhooks import SIGNATURE_HEADER, sign
from emulators.slack import Message
from tests.conftest import System
from tests.end_to_end.conftest import WAIT_S, Alerts, blocks_of
from tests.end_to_end.test_webhooks import event, one_webhook, slash
from tests.harness import ADMIN, ALERT_CHANNEL, PUBLIC_URL, BotProcess
from tests.harness import settled as bot_settled
from tests.support import API_KEY

ACTOR = "oncall@example.com"  # the emulated account whose API key made the change


async def platform(system: System, method: str, path: str, body: dict[str, Any]) -> None:
    """A change through the Platform API, as `heroku ps:scale` / `heroku config:set` make it."""
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.request(
            method,
            f"{system.heroku.url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {API_KEY}", "Accept": PLATFORM_ACCEPT},
        )
    assert response.status_code == 200, response.text


async def scale(system: System, app: str, process_type: str, quantity: int) -> None:
    await platform(system, "PATCH", f"/apps/{app}/formation/{process_type}", {"quantity": quantity})


def parents(system: System) -> list[Message]:
    # Warning threads have blocks; the plain notices of watch/unwatch (bot.watch) do not.
    return [m for m in system.slack.top_level(ALERT_CHANNEL) if m.bot_id == system.slack.bot_id and m.blocks]


def replies(system: System, parent: Message) -> list[Message]:
    return [m for m in system.slack.thread(ALERT_CHANNEL, parent.ts) if m.ts != parent.ts]


def shown(text: str) -> str:
    """As a person reads it: without the zero-width spaces that keep `_` from starting italics."""
    return text.replace("\u200b", "")


async def until(system: System, predicate: Any) -> Any:
    return await system.slack.wait_for(predicate, timeout=WAIT_S)


async def settled(system: System) -> None:
    """Every delivery answered and the bot done with each: what it would post, it has."""
    await until(
        system, lambda: all(d.status in ("succeeded", "failed") for d in system.heroku.webhooks.deliveries)
    )
    await bot_settled(system.bot)


async def test_a_scale_up_past_the_limit_warns_once_with_the_numbers_and_scaling_back_resolves(
    system: System,
) -> None:
    answer = await slash(system, "my-app watch")
    # 3 × 3 gunicorn workers + 4 celery children + 3 headroom, on an Essential-0 plan.
    assert "Budget now: 16 of 20 connections (fits)" in answer, answer
    assert f"<#{ALERT_CHANNEL}>" in answer

    await scale(system, "my-app", "web", 6)
    parent = await until(system, lambda: next(iter(parents(system)), None))
    text = blocks_of(parent)
    assert f"{ACTOR} scaled web 3 → 6" in text
    assert "no longer fits" in text
    # 6 × 3 + 4 + 3 = 25 against 20; the fixes are sized by the same budget.
    assert "It can open *25* connections against the plan's 20" in text
    assert "Nothing has failed yet" in text
    assert "Scale web back to 4 dynos (19 of 20 — still tight)" in text
    assert "`heroku ps:scale web=4 -a my-app`" in text
    assert "Add PgBouncer with a pool of 1 server connection per dyno (+1 reserve): 17 of 20" in text
    # `-w 3` is on the command line: WEB_CONCURRENCY would change nothing, so it is not offered.
    assert "WEB_CONCURRENCY" not in text
    (button,) = [e for b in parent.blocks if b["type"] == "actions" for e in b["elements"]]
    assert button["action_id"] == ADD_PGBOUNCER and button["value"] == "my-app"
    assert "pool of 1 server connections per dyno" in button["confirm"]["text"]["text"]
    # Before anything broke: no connection was refused, so no alert thread opened.
    assert len(parents(system)) == 1
    # Heroku recorded its delivery as answered (after the evaluation: the warning came first).
    (delivery,) = system.heroku.webhooks.of("my-app")
    await until(system, lambda: delivery.status == "succeeded")
    assert delivery.attempts[-1].code == 200 and len(delivery.attempts) == 1

    # A replay of that exact delivery (same bytes, same valid signature) does nothing.
    async with httpx.AsyncClient(timeout=10) as http:
        replay = await http.post(
            f"{system.bot.url}/webhooks/heroku/my-app", content=delivery.body, headers=delivery.headers
        )
    assert replay.status_code == 200 and replay.text == "already handled\n"
    await bot_settled(system.bot)
    assert len(parents(system)) == 1 and replies(system, parent) == []
    assert "was already handled; nothing done" in system.bot.logs()

    # Worse still: a reply in the same thread, and the parent redrawn with the new numbers.
    await scale(system, "my-app", "web", 8)
    reply = await until(system, lambda: next(iter(replies(system, parent)), None))
    assert reply.text.startswith(f"{ACTOR} scaled web 6 → 8: the budget is now *31* of 20"), reply.text
    assert "over the limit by 11" in reply.text
    await until(system, lambda: "It can open *31* connections" in blocks_of(parent))

    # Back under: said in the thread, and the parent says it fits again.
    await scale(system, "my-app", "web", 3)
    resolved = await until(
        system, lambda: next((m for m in replies(system, parent) if "back under" in m.text), None)
    )
    assert resolved.text == (
        f":white_check_mark: {ACTOR} scaled web 8 → 3: back under the limit — *16* of 20 connections. "
        "The budget fits again."
    )
    await until(system, lambda: "the connection budget fits again" in blocks_of(parent))
    assert f"Opened by *{ACTOR} scaled web 3 → 6*" in blocks_of(parent)
    assert not any(b["type"] == "actions" for b in parent.blocks)
    await settled(system)
    assert len(parents(system)) == 1 and len(replies(system, parent)) == 2

    # A scale within the budget says nothing at all.
    await scale(system, "my-app", "web", 2)
    await settled(system)
    assert len(parents(system)) == 1 and len(replies(system, parent)) == 2


async def test_a_release_that_raises_web_concurrency_past_the_limit_warns_with_the_value_that_fits(
    system: System,
) -> None:
    # std-app: 2 dynos of `puma -t 5:5` on a Standard-0 plan (120); WEB_CONCURRENCY sets the workers.
    assert "(fits)" in await slash(system, "std-app watch")
    await platform(system, "PATCH", "/apps/std-app/config-vars", {"WEB_CONCURRENCY": "12"})
    parent = await until(system, lambda: next(iter(parents(system)), None))
    text = shown(blocks_of(parent))
    # Heroku's release payload names the release, not the values: pgconn tells the difference.
    assert f"{ACTOR} released v4 (Set WEB_CONCURRENCY config vars): WEB_CONCURRENCY (unset) → 12" in text
    assert "It can open *123* connections against the plan's 120" in text
    assert "Set WEB_CONCURRENCY to 11 (now 12): 113 of 120" in text
    assert "`heroku config:set WEB_CONCURRENCY=11 -a std-app`" in text

    await platform(system, "PATCH", "/apps/std-app/config-vars", {"WEB_CONCURRENCY": "4"})
    resolved = await until(system, lambda: next(iter(replies(system, parent)), None))
    assert "WEB_CONCURRENCY 12 → 4: back under the limit" in shown(resolved.text)


@pytest.mark.parametrize("signature", [None, "bad", "f78YdbS9Za+bO+BYK2o6GCO2dxNBNKb7OC6qjIh5sHU="])
async def test_only_a_delivery_signed_with_the_secret_is_acted_on(
    system: System, signature: str | None
) -> None:
    await slash(system, "my-app watch")
    # Heroku's delivery of a scale to 6 gets lost (nothing listens there)...
    system.heroku.webhooks.routes = {PUBLIC_URL: "http://127.0.0.1:1"}
    await scale(system, "my-app", "web", 6)
    await settled(system)
    (lost,) = system.heroku.webhooks.of("my-app")
    assert lost.status == "failed" and lost.attempts[-1].error_class == "ConnectError"
    # ...and somebody else sends its body: unsigned, or signed with something else.
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Heroku-Webhook-Hmac-SHA256"] = signature
    async with httpx.AsyncClient(timeout=10) as http:
        forged = await http.post(
            f"{system.bot.url}/webhooks/heroku/my-app", content=lost.body, headers=headers
        )
        assert forged.status_code == 401
        await bot_settled(system.bot)
        assert parents(system) == []
        # The same bytes with Heroku's signature are acted on: the check was the only difference.
        signed = await http.post(
            f"{system.bot.url}/webhooks/heroku/my-app", content=lost.body, headers=lost.headers
        )
    assert signed.status_code == 200
    parent = await until(system, lambda: next(iter(parents(system)), None))
    assert f"{ACTOR} scaled web 3 → 6" in blocks_of(parent)


def signed_event(secret: str, quantity: int, previous: int) -> tuple[bytes, dict[str, str]]:
    """A formation delivery of its own (a new delivery id), signed as Heroku signs it."""
    body = event("formation", "update", app="my-app", type="web", quantity=quantity)
    data = json.loads(body)
    data["previous_data"] = {"quantity": previous}
    raw = json.dumps(data).encode()
    return raw, {"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, raw)}


async def test_many_deliveries_across_two_processes_open_one_thread(
    alerts: Alerts, second_alert_bot: BotProcess
) -> None:
    system = alerts.system
    await slash(system, "my-app watch")
    secret = one_webhook(system, "my-app").secret
    assert secret is not None
    system.heroku.webhooks.routes = {}  # only the deliveries below reach the bots
    await scale(system, "my-app", "web", 6)
    # Ten distinct deliveries of the same change (Heroku also sends a release; retries; a second
    # subscription) arrive at once, split over two processes of the same deployment.
    deliveries = [signed_event(secret, 6, 3) for _ in range(10)]
    targets = [alerts.bot, second_alert_bot] * 5
    responses = await asyncio.gather(
        *(
            alerts.http.post(f"{bot.url}/webhooks/heroku/my-app", content=body, headers=headers)
            for bot, (body, headers) in zip(targets, deliveries, strict=True)
        )
    )
    assert {r.status_code for r in responses} == {200}
    parent = await until(system, lambda: next(iter(parents(system)), None))
    await asyncio.gather(bot_settled(alerts.bot), bot_settled(second_alert_bot))
    assert len(parents(system)) == 1, [blocks_of(m)[:80] for m in parents(system)]
    assert replies(system, parent) == []
    assert "scaled web 3 → 6" in blocks_of(parent)


async def test_a_heroku_failure_leaves_the_delivery_to_be_retried(system: System) -> None:
    await slash(system, "my-app watch")
    system.heroku.webhooks.routes = {PUBLIC_URL: "http://127.0.0.1:1"}
    await scale(system, "my-app", "web", 6)
    await settled(system)
    (lost,) = system.heroku.webhooks.of("my-app")
    # Heroku's API fails while pgconn re-reads the formation: nothing is posted, nothing kept.
    system.heroku.inject(path="/apps/my-app/formation", method="GET", status=503, times=50)
    async with httpx.AsyncClient(timeout=10) as http:
        first = await http.post(
            f"{system.bot.url}/webhooks/heroku/my-app", content=lost.body, headers=lost.headers
        )
        # Not evaluated: a 5xx, so Heroku (level "sync") retries it.
        assert first.status_code == 503
        assert "budget watch my-app: formation not evaluated" in system.bot.logs()
        assert parents(system) == []
        system.heroku.faults.clear()
        # Heroku's retry of the same delivery (level "sync") is handled, not taken for a replay.
        again = await http.post(
            f"{system.bot.url}/webhooks/heroku/my-app", content=lost.body, headers=lost.headers
        )
    assert again.status_code == 200 and again.text != "already handled\n"
    parent = await until(system, lambda: next(iter(parents(system)), None))
    assert f"{ACTOR} scaled web 3 → 6" in blocks_of(parent)


async def test_unwatch_forgets_the_baseline_and_any_open_thread(system: System) -> None:
    await slash(system, "my-app watch")
    stored = redis.Redis.from_url(system.redis_url)
    assert stored.get("pgconn:budget-watch:my-app") is not None
    await slash(system, "my-app unwatch")
    assert stored.get("pgconn:budget-watch:my-app") is None


async def test_the_warnings_add_pgbouncer_button_runs_the_action_sized_by_the_same_budget(
    system: System,
) -> None:
    await slash(system, "my-app watch")
    await scale(system, "my-app", "web", 6)
    parent = await until(system, lambda: next(iter(parents(system)), None))
    response = await system.slack.click(
        action_id=ADD_PGBOUNCER, value="my-app", user_id=ADMIN, channel_id=ALERT_CHANNEL, message_ts=parent.ts
    )
    assert response.status_code == 200
    result = await until(
        system, lambda: next((m for m in replies(system, parent) if "ran *Add PgBouncer*" in m.text), None)
    )
    assert "my-app" in result.text
    app = system.heroku.apps["my-app"]
    assert app.buildpacks[0] == "heroku/pgbouncer"
    # The pool the warning offered: 7 dynos × (1 + 1 reserve) + 3 headroom = 17 of 20.
    assert app.config_vars["PGBOUNCER_DEFAULT_POOL_SIZE"] == "1"
    assert app.config_vars["PGBOUNCER_RESERVE_POOL_SIZE"] == "1"
