"""Thin Slack and HTTP entry points. Every listener pgconn has is registered here."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from starlette.routing import BaseRoute, Route

from bot.render.actions import ACTION_IDS
from bot.services import Services
from handlers import actions, drain, events, http, slash


def register(app: AsyncApp, services: Services) -> None:
    """Slack listeners: slash command, buttons, events."""

    async def inject_services(context: Any, next: Any) -> None:  # noqa: A002 - Bolt's name
        context["services"] = services
        await next()

    app.use(inject_services)
    app.command("/pgconn")(slash.pgconn_command)
    for action_id in ACTION_IDS:
        app.action(action_id)(actions.remediation_button)
    app.event("message")(events.message)


def http_routes(services: Services) -> list[BaseRoute]:
    """Plain HTTP routes next to /slack/events."""
    return [
        Route("/healthz", http.healthz(services), methods=["GET"]),
        Route("/drains/heroku/{app}", drain.heroku_drain(services), methods=["POST"]),
    ]
