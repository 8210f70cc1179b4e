"""Heroku app webhooks end to end: `/pgconn APP watch` through the Slack emulator subscribes
in the Heroku emulator; deliveries signed as Heroku signs them go to the running bot.

The emulator does not deliver webhooks itself, so the test does, with the secret the bot
gave Heroku (read back from the emulator's stored subscription).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import redis

from bot.heroku import PLATFORM_ACCEPT
from bot.webhooks import SIGNATURE_HEADER, sign
from emulators.heroku_state import Webhook
from tests.bot.samples import frame, metric_line
from tests.conftest import System
from tests.end_to_end.conftest import RESOLVE_AFTER_S, WAIT_S, Alerts, addon, blocks_of
from tests.harness import ADMIN, OPS_CHANNEL, PUBLIC_URL, BotProcess
from tests.support import API_KEY, DRAIN_TOKEN


async def slash(system: System, text: str) -> str:
    """Run `/pgconn TEXT` and return the answer (the next ephemeral)."""
    before = len(system.slack.ephemerals)
    response = await system.slack.send_slash_command(text, user_id=ADMIN, channel_id=OPS_CHANNEL)
    assert response.status_code == 200
    found = await system.slack.wait_for(lambda: system.slack.ephemerals[before:], timeout=10)
    return str(found[-1].get("text", ""))


def one_webhook(system: System, app: str) -> Webhook:
    (hook,) = system.heroku.apps[app].webhooks
    return hook


def event(resource: str = "formation", action: str = "update", app: str = "my-app", **data: Any) -> bytes:
    """A delivery shaped like Heroku's (webhook_metadata, data, previous_data, …)."""
    return json.dumps(
        {
            "id": str(uuid.uuid4()),
            "action": action,
            "actor": {"email": "alice@example.com", "id": str(uuid.uuid4())},
            "resource": resource,
            "version": "application/vnd.heroku+json; version=3",
            "sequence": None,
            "published_at": "2024-05-01T12:00:00Z",
            "created_at": "2024-05-01T12:00:00Z",
            "updated_at": "2024-05-01T12:00:00Z",
            "data": {"app": {"id": str(uuid.uuid4()), "name": app}, **data},
            "previous_data": {},
            "webhook_metadata": {
                "attempt": {"id": str(uuid.uuid4())},
                "delivery": {"id": str(uuid.uuid4())},
                "event": {"id": str(uuid.uuid4()), "include": f"api:{resource}"},
                "webhook": {"id": str(uuid.uuid4())},
            },
        }
    ).encode()


async def deliver(
    bot: BotProcess, app: str, body: bytes, *, secret: str | None, signature: str | None = None
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is None and secret is not None:
        signature = sign(secret, body)
    if signature is not None:
        headers[SIGNATURE_HEADER] = signature
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(f"{bot.url}/webhooks/heroku/{app}", content=body, headers=headers)


async def test_watch_subscribes_once_deliveries_are_verified_and_unwatch_removes_it(system: System) -> None:
    answer = await slash(system, "my-app watch")
    assert "now receives `my-app`'s logs" in answer
    assert "subscribed to `my-app`'s formation and release webhooks" in answer
    hook = one_webhook(system, "my-app")
    assert hook.url == f"{PUBLIC_URL}/webhooks/heroku/my-app"
    assert hook.include == ["api:formation", "api:release"] and hook.level == "sync"
    assert hook.secret is not None and re.fullmatch(r"[0-9a-f]{64}", hook.secret)
    secret = hook.secret
    # Kept where every bot process reads it.
    assert redis.Redis.from_url(system.redis_url).get("pgconn:webhook-secret:my-app") == secret.encode()
    (drain,) = system.heroku.apps["my-app"].log_drains
    assert drain.url.endswith("@pgconn.example.com/drains/heroku/my-app")
    post = next(r for r in system.heroku.requests if r.method == "POST" and r.path.endswith("/webhooks"))
    assert json.loads(post.body) == {
        "include": ["api:formation", "api:release"],
        "level": "sync",
        "url": f"{PUBLIC_URL}/webhooks/heroku/my-app",
        "secret": secret,
    }

    again = await slash(system, "my-app watch")
    assert again.startswith(
        "pgconn already receives `my-app`'s logs and webhooks. Its drain password was rotated: the URL it "
        "had before is refused from a minute on.\n"
    )
    assert again.endswith(
        "Budget now: 16 of 20 connections (fits). "
        "pgconn warns in <#C0ALERTS> if a scale-up or release breaks it."
    )
    assert system.heroku.apps["my-app"].webhooks == [hook]
    assert len(system.heroku.apps["my-app"].log_drains) == 1

    # Deliveries, as Heroku signs them.
    body = event("formation", "update", quantity=6, type="web")
    ok = await deliver(system.bot, "my-app", body, secret=secret)
    assert ok.status_code == 200
    release = await deliver(system.bot, "my-app", event("release", "create"), secret=secret)
    assert release.status_code == 200
    ignored = await deliver(system.bot, "my-app", event("dyno", "create"), secret=secret)
    assert ignored.status_code == 204
    assert (await deliver(system.bot, "my-app", body, secret="0" * 64)).status_code == 401
    assert (await deliver(system.bot, "my-app", body, secret=None)).status_code == 401
    assert (await deliver(system.bot, "my-app", body + b" ", signature=sign(secret, body), secret=None)
            ).status_code == 401
    # Another configured app pgconn never subscribed to: no secret, nothing verifies.
    assert (await deliver(system.bot, "std-app", body, secret=secret)).status_code == 401
    # An app pgconn does not watch looks exactly like one it watches (no enumeration).
    assert (await deliver(system.bot, "not-ours", body, secret=secret)).status_code == 401
    assert (await deliver(system.bot, "my-app", b"{not json", secret=secret)).status_code == 400
    assert (await deliver(system.bot, "my-app", b'{"no": "resource"}', secret=secret)).status_code == 400

    log = system.bot.logs()
    assert "webhook my-app: formation update" in log and "webhook my-app: release create" in log
    assert "webhook my-app refused: no subscription secret, or a bad signature" in log
    assert secret not in log and secret not in answer and DRAIN_TOKEN not in answer
    assert "alice@example.com" not in log  # the body is never logged

    removed = await slash(system, "my-app unwatch")
    assert removed.startswith("Removed pgconn's log drain and webhook subscription from `my-app`")
    assert system.heroku.apps["my-app"].webhooks == [] and system.heroku.apps["my-app"].log_drains == []
    assert redis.Redis.from_url(system.redis_url).get("pgconn:webhook-secret:my-app") is None
    # The old secret verifies nothing any more.
    assert (await deliver(system.bot, "my-app", body, secret=secret)).status_code == 401


def budget_line(message: Any) -> str:
    match = re.search(r"Budget: .*", blocks_of(message))
    assert match, blocks_of(message)
    return match.group(0)


async def scale(system: System, app: str, process_type: str, quantity: int) -> None:
    """A real formation change, through the Platform API."""
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.patch(
            f"{system.heroku.url}/apps/{app}/formation/{process_type}",
            json={"quantity": quantity},
            headers={"Authorization": f"Bearer {API_KEY}", "Accept": PLATFORM_ACCEPT},
        )
    assert response.status_code == 200, response.text


async def incident(alerts: Alerts, app: str, previous: list[str]) -> Any:
    """Open an incident (a metric near the limit), then return its thread's parent."""
    db = addon(app)
    assert (await alerts.drain(frame([metric_line(119, addon=db)]), app=app)).status_code == 204
    return await alerts.one_parent(lambda m: m.ts not in previous)


async def resolve(alerts: Alerts, app: str, parent: Any) -> None:
    assert (await alerts.drain(frame([metric_line(3, addon=addon(app))]), app=app)).status_code == 204
    await alerts.until(lambda: "*Resolved*" in blocks_of(parent), timeout=WAIT_S + RESOLVE_AFTER_S)


async def test_a_verified_formation_webhook_makes_the_next_alert_read_the_new_formation(
    alerts: Alerts,
) -> None:
    system, app = alerts.system, "std-app"
    assert "subscribed to `std-app`'s formation" in await slash(system, f"{app} watch")
    secret = one_webhook(system, app).secret
    assert secret is not None

    first = await incident(alerts, app, [])
    before = budget_line(first)
    # Heroku's delivery of the scale gets lost (nothing listens where it goes)...
    system.heroku.webhooks.routes = {PUBLIC_URL: "http://127.0.0.1:1"}
    await scale(system, app, "web", 4)
    await resolve(alerts, app, first)

    # ...so the alert engine trusts what it resolved minutes ago: the new incident's report
    # still shows the old formation.
    second = await incident(alerts, app, [first.ts])
    assert budget_line(second) == before
    await resolve(alerts, app, second)

    lost = await system.slack.wait_for(
        lambda: next((d for d in system.heroku.webhooks.of(app) if d.status == "failed"), None),
        timeout=WAIT_S,
    )
    assert lost.include == "api:formation"
    asked = len([r for r in system.heroku.requests if r.path == f"/apps/{app}/formation"])
    # The delivery arrives after all, byte for byte as Heroku signed it.
    response = await alerts.http.post(
        f"{alerts.bot.url}/webhooks/heroku/{app}", content=lost.body, headers=lost.headers
    )
    assert response.status_code == 200
    third = await incident(alerts, app, [first.ts, second.ts])
    after = budget_line(third)
    assert after != before, after
    assert len([r for r in system.heroku.requests if r.path == f"/apps/{app}/formation"]) > asked
    # 2 → 4 web dynos: the web share of the budget doubles.
    web_before = int(re.search(r"web (\d+)", before).group(1))  # type: ignore[union-attr]
    web_after = int(re.search(r"web (\d+)", after).group(1))  # type: ignore[union-attr]
    assert web_after == 2 * web_before, (before, after)
    # Closed here: left open, its resolution reply lands in whichever test runs next.
    await resolve(alerts, app, third)
