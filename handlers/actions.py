"""Buttons: ack, read the click, hand it to its protocol: the fixes' (bot.remediation.clicks), or an
alert thread's Acknowledge / Snooze / Resolve (bot.alerts.clicks)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncBoltContext, AsyncRespond

from bot.alerts import clicks as incident_clicks
from bot.dependencies import Services
from bot.remediation import clicks
from bot.slack_delivery import tell

log = logging.getLogger(__name__)


def _obj(value: Any) -> dict[str, Any]:
    """A payload field that should be an object; anything else counts as missing."""
    return value if isinstance(value, dict) else {}


def _click(body: dict[str, Any], action: dict[str, Any]) -> clicks.Click:
    container = _obj(body.get("container"))
    message = _obj(body.get("message"))
    return clicks.Click(
        action_id=str(action.get("action_id", "")),
        # Buttons carry `value`; the restart overflow menu carries the chosen option's value.
        value=str(action.get("value") or _obj(action.get("selected_option")).get("value") or ""),
        user_id=str(_obj(body.get("user")).get("id", "")),
        channel_id=str(_obj(body.get("channel")).get("id") or container.get("channel_id") or ""),
        message_ts=str(container.get("message_ts") or message.get("ts") or "") or None,
        thread_ts=str(message.get("thread_ts") or "") or None,
        action_ts=str(action.get("action_ts") or ""),
    )


async def remediation_button(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    respond: AsyncRespond,
    context: AsyncBoltContext,
) -> None:
    await ack()
    await _run(clicks.execute, body, action, respond, context)


async def incident_button(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    respond: AsyncRespond,
    context: AsyncBoltContext,
) -> None:
    """Acknowledge / Snooze / Resolve on an alert thread (bot.alerts.clicks)."""
    await ack()
    await _run(incident_clicks.execute, body, action, respond, context)


async def _run(
    execute: Callable[[Services, clicks.Click, clicks.Tell], Awaitable[object]],
    body: dict[str, Any],
    action: dict[str, Any],
    respond: AsyncRespond,
    context: AsyncBoltContext,
) -> None:
    services: Services = context["services"]

    async def reply(text: str) -> None:
        await tell(respond, text)

    try:
        await execute(services, _click(body, action), reply)
    except Exception as exc:  # noqa: BLE001 - a bug must still answer the clicker, and be logged
        log.exception("click %s failed unexpectedly", str(action.get("action_id"))[:40])
        await reply(f":x: pgconn failed unexpectedly ({type(exc).__name__}) handling this click. "
                    "The details are in pgconn's log.")
