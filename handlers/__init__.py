"""Thin Slack and HTTP entry points. Every listener pgconn has is registered here."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any

from slack_bolt.async_app import AsyncApp
from starlette.routing import BaseRoute, Route

from bot.render.actions import ACTION_IDS
from bot.services import Services
from handlers import actions, drain, events, http, slash, webhooks

Listener = Callable[..., Coroutine[Any, Any, None]]

# Work behind an ack starts this much later, so that requests arriving together (a burst of
# commands or clicks) are all acknowledged before any of their work competes with the acks:
# without it, bench/run measured acks of 100-165 ms in one burst of 50 `/pgconn APP` in
# three; with it, at most ~35 ms.
ACK_HEAD_START_S = 0.005


def ack_first(listener: Listener, services: Services) -> Listener:
    """Acknowledge at once; run the listener after the response, as a task.

    Bolt injects arguments by the names it reads through functools.wraps, so the listener
    gets exactly what it asks for; its own `await ack()` then changes nothing. Events
    listeners take no `ack`: Bolt acknowledges them when this returns, i.e. at once.
    """

    @functools.wraps(listener)
    async def run(**kwargs: Any) -> None:
        ack = kwargs.get("ack")
        if ack is not None:
            await ack()

        async def work() -> None:
            await asyncio.sleep(ACK_HEAD_START_S)
            await listener(**kwargs)

        services.spawn(work(), name=listener.__name__)

    return run


def register(app: AsyncApp, services: Services) -> None:
    """Slack listeners: slash command, buttons, events."""

    async def inject_services(context: Any, next: Any) -> None:  # noqa: A002 - Bolt's name
        context["services"] = services
        await next()

    app.use(inject_services)
    app.command("/pgconn")(ack_first(slash.pgconn_command, services))
    for action_id in ACTION_IDS:
        app.action(action_id)(ack_first(actions.remediation_button, services))
    app.event("message")(ack_first(events.message, services))


def http_routes(services: Services) -> list[BaseRoute]:
    """Plain HTTP routes next to /slack/events."""
    return [
        Route("/healthz", http.healthz(services), methods=["GET"]),
        Route("/setup", http.setup(services), methods=["GET"]),
        Route("/drains/heroku/{app}", drain.heroku_drain(services), methods=["POST"]),
        Route("/webhooks/heroku/{app}", webhooks.heroku_webhook(services), methods=["POST"]),
    ]
