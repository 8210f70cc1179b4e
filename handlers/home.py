"""The Home tab: `app_home_opened` draws it; its Refresh button re-reads one stale app (bot.home)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncBoltContext

from bot import home
from bot.dependencies import Services

log = logging.getLogger(__name__)


async def home_opened(event: dict[str, Any], context: AsyncBoltContext) -> None:
    """Bolt acks events itself; this runs after the ack. The Messages tab needs nothing."""
    if event.get("tab") != "home":
        return
    user = str(event.get("user") or "")
    if not user:
        return
    services: Services = context["services"]
    await home.publish(services, user)


async def refresh_button(
    ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext
) -> None:
    await ack()
    services: Services = context["services"]
    user = body.get("user")
    user_id = str(user.get("id") or "") if isinstance(user, dict) else ""
    if not user_id:
        return
    await home.refresh(services, user_id, str(action.get("value") or ""))
