"""Message shortcuts: "Diagnose with pgconn" on any message (bot.message_shortcut).

Registered for every message shortcut, whatever its callback_id: manifest.yml declares the
one pgconn has, and nothing here needs to know its id (DESIGN.md).
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncBoltContext, AsyncRespond

from bot.dependencies import Services
from bot.message_shortcut import MessageAsk, diagnose_message
from handlers.events import message_text

log = logging.getLogger(__name__)


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


async def message_shortcut(
    ack: AsyncAck, shortcut: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    await ack()
    services: Services = context["services"]
    message = _obj(shortcut.get("message"))
    ts = str(message.get("ts") or shortcut.get("message_ts") or "")
    ask = MessageAsk(
        user=str(_obj(shortcut.get("user")).get("id") or ""),
        channel=str(_obj(shortcut.get("channel")).get("id") or ""),
        thread_ts=str(message.get("thread_ts") or ts),
        text=message_text(message),
    )
    if not (ask.user.isalnum() and ask.channel.isalnum() and ask.thread_ts):
        log.warning("a message shortcut without a user, channel or message; ignored")
        return
    await diagnose_message(services, ask, respond)
