"""`message` events: another alerting tool (or a person) says an app is out of connections.

pgconn answers in that message's thread with the report, once per message. Its own
messages are ignored: they name apps and "too many connections" too, and answering
them would be a loop.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from slack_bolt.async_app import AsyncBoltContext

from bot.authz import may_answer_message
from bot.dependencies import Services
from bot.detect import mentions_exhaustion
from bot.errors import PgconnError

log = logging.getLogger(__name__)

# Edits, deletions, joins … are not new alerts. bot_message is how integrations post.
_ANSWERED_SUBTYPES = {None, "bot_message", "thread_broadcast"}
_ATTACHMENT_TEXT = ("pretext", "author_name", "title", "text", "fallback", "footer")


def _block_texts(node: Any) -> Iterator[str]:
    """Every string under a "text" key, at any depth: sections, fields, context, rich text."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "text" and isinstance(value, str):
                yield value
            else:
                yield from _block_texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _block_texts(item)


def message_text(event: dict[str, Any]) -> str:
    """All the words of a message: Datadog and PagerDuty put theirs in attachments or blocks."""
    parts = [str(event.get("text") or "")]
    for attachment in event.get("attachments") or []:
        if not isinstance(attachment, dict):
            continue
        parts += [str(attachment[k]) for k in _ATTACHMENT_TEXT if attachment.get(k)]
        for f in attachment.get("fields") or []:
            if isinstance(f, dict):
                parts += [str(f.get("title") or ""), str(f.get("value") or "")]
        parts += _block_texts(attachment.get("blocks") or [])
    parts += _block_texts(event.get("blocks") or [])
    return "\n".join(p for p in parts if p)


async def message(event: dict[str, Any], context: AsyncBoltContext) -> None:
    """Bolt acks events itself; this runs after the ack."""
    if event.get("subtype") not in _ANSWERED_SUBTYPES:
        return
    services: Services = context["services"]
    if not may_answer_message(
        event,
        own_bot_id=context.bot_id,
        own_user_id=context.bot_user_id,
        bots=services.settings.alert_bots,
    ):
        return
    app = mentions_exhaustion(message_text(event), services.settings.apps)
    if app is None:
        return
    channel, ts = str(event.get("channel") or ""), str(event.get("ts") or "")
    if not channel or not ts:
        return
    alerts = services.alerts
    if not alerts.enabled:
        log.warning("an alert in %s names %s, but alerts are off: %s", channel, app, alerts.why_disabled())
        return
    try:
        answered = await alerts.answer_mention(app, channel, ts, str(event.get("thread_ts") or ts))
    except PgconnError as exc:
        log.warning("could not answer the alert about %s in %s: %s", app, channel, exc.message)
        return
    if answered:
        log.info("answered an alert about %s in %s (%s)", app, channel, ts)
