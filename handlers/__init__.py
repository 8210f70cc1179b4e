"""Thin Slack and HTTP entry points. Every listener pgconn has is registered here."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.response import BoltResponse
from starlette.routing import BaseRoute, Route

from bot.alerts.ownership import INCIDENT_BUTTONS
from bot.authz import foreign
from bot.dependencies import Services
from bot.render.home import REFRESH_ACTION
from bot.render.remediation import ACTION_IDS
from handlers import actions, drain, events, home, http, shortcuts, slash, webhooks

log = logging.getLogger(__name__)

Listener = Callable[..., Coroutine[Any, Any, None]]
Next = Callable[[], Awaitable[None]]  # a Bolt middleware's `next`

# Work behind an ack starts this much later, so that requests arriving together (a burst of
# commands or clicks) are all acknowledged before any of their work competes with the acks:
# without it, bench/run measured acks of 100-165 ms in one burst of 50 `/pgconn APP` in
# three; with it, at most ~35 ms.
ACK_HEAD_START_S = 0.005


BUSY = (
    ":hourglass: pgconn is busy with {n} requests right now and refused this one so as not to fall "
    "behind. Nothing was done; try again in a few seconds."
)


def ack_first(listener: Listener, services: Services, *, bounded: bool = True) -> Listener:
    """Acknowledge at once; run the listener after the response, as a task.

    Bolt injects arguments by the names it reads through functools.wraps, so the listener
    gets exactly what it asks for; its own `await ack()` then changes nothing. Events
    listeners take no `ack`: Bolt acknowledges them when this returns, i.e. at once.
    `bounded` work is refused (with a sentence, when it came with a response URL) while the
    process already works on PGCONN_MAX_IN_FLIGHT requests; clicks are not bounded.
    """

    @functools.wraps(listener)
    async def run(**kwargs: Any) -> None:
        ack = kwargs.get("ack")
        throttle = services.throttle
        if not throttle.enter(bounded=bounded):
            log.warning("refused %s: %d requests in flight", listener.__name__, throttle.in_flight)
            if ack is not None:
                await ack(text=BUSY.format(n=throttle.in_flight))
            return
        if ack is not None:
            await ack()

        async def work() -> None:
            try:
                await asyncio.sleep(ACK_HEAD_START_S)
                await listener(**kwargs)
            finally:
                throttle.leave()

        services.spawn(work(), name=listener.__name__)

    return run


def register(app: AsyncApp, services: Services) -> None:
    """Slack listeners: slash command, buttons, events."""

    async def inject_services(context: AsyncBoltContext, next: Next) -> None:  # noqa: A002 - Bolt's name
        context["services"] = services
        await next()

    async def refuse_foreign(  # noqa: A002 - `next` is Bolt's name
        context: AsyncBoltContext, body: dict[str, Any], next: Next
    ) -> BoltResponse | None:
        """Nothing from another workspace or an externally shared channel goes further (bot.authz)."""
        why = await foreign_origin(services, context, body)
        if why is None:
            await next()
            return None
        log.warning("refused a Slack request from %s", why)
        if body.get("command"):
            return BoltResponse(
                status=200,
                body={
                    "response_type": "ephemeral",
                    "text": ":no_entry: pgconn answers only in its own workspace's channels, not in "
                    "channels shared with other organisations. Nothing was done.",
                },
            )
        return BoltResponse(status=200, body="")

    app.use(inject_services)
    app.use(refuse_foreign)
    app.command("/pgconn")(ack_first(slash.pgconn_command, services))
    for action_id in ACTION_IDS:
        app.action(action_id)(ack_first(actions.remediation_button, services, bounded=False))
    for button in INCIDENT_BUTTONS:
        app.action(button.id)(ack_first(actions.incident_button, services, bounded=False))
    app.event("message")(ack_first(events.message, services))
    app.event("app_home_opened")(ack_first(home.home_opened, services))
    # Clicks, as the remediation buttons (never refused as busy); the refresh is throttled itself.
    app.action(REFRESH_ACTION)(ack_first(home.refresh_button, services, bounded=False))
    app.shortcut({"type": "message_action", "callback_id": re.compile(".+")})(
        ack_first(shortcuts.message_shortcut, services)
    )


async def foreign_origin(services: Services, context: AsyncBoltContext, body: dict[str, Any]) -> str | None:
    """Why a Slack request is not from pgconn's own workspace (bot.authz.foreign), or None."""
    s = services.settings
    installed = context.authorize_result
    why = foreign(
        home_team=getattr(installed, "team_id", None),
        home_enterprise=getattr(installed, "enterprise_id", None),
        teams=(context.team_id, context.actor_team_id),
        enterprises=(context.enterprise_id, context.actor_enterprise_id),
        ext_shared=body.get("is_ext_shared_channel") is True,
        allowed=s.allowed_teams,
        allow_shared=s.allow_shared_channels,
    )
    if why is not None or s.allow_shared_channels:
        return why
    # Commands and clicks do not say whether their channel is shared: Slack is asked (cached).
    shown = body.get("channel")
    channel = body.get("channel_id") or (shown.get("id") if isinstance(shown, dict) else None)
    asks = body.get("command") or body.get("type") in ("block_actions", "message_action")
    if asks and isinstance(channel, str) and await services.authoriser.channel_shared(channel):
        return f"channel {channel[:20]}, shared with another organisation"
    return None


def http_routes(services: Services) -> list[BaseRoute]:
    """Plain HTTP routes next to /slack/events."""
    return [
        Route("/healthz", http.healthz(services), methods=["GET"]),
        Route("/setup", http.setup(services), methods=["GET"]),
        Route("/drains/heroku/{app}", drain.heroku_drain(services), methods=["POST"]),
        Route("/webhooks/heroku/{app}", webhooks.heroku_webhook(services), methods=["POST"]),
    ]
