"""Posting to Slack: one place that decides channel post vs response_url, and never drops silently."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

Respond = Callable[..., Awaitable[Any]]

# Errors where the channel itself is the problem: the response_url still reaches the person.
_CHANNEL_ERRORS = {"not_in_channel", "channel_not_found", "is_archived", "restricted_action"}


async def post_in_channel(
    client: AsyncWebClient,
    respond: Respond | None,
    *,
    channel: str,
    text: str,
    blocks: list[dict[str, Any]],
    thread_ts: str | None = None,
) -> str | None:
    """Post a message; returns its ts, or None when it went through response_url instead."""
    try:
        result = await client.chat_postMessage(channel=channel, text=text, blocks=blocks, thread_ts=thread_ts)
        return str(result["ts"])
    except SlackApiError as exc:
        error = str(exc.response.get("error", "unknown"))
        log.warning("chat.postMessage to %s failed: %s", channel, error)
        if respond is None:
            raise
        if error in _CHANNEL_ERRORS:
            await respond(response_type="in_channel", text=text, blocks=blocks, replace_original=False)
            return None
        await respond(
            response_type="ephemeral",
            text=f":x: pgconn could not post its answer (Slack said `{error}`). {text}",
            replace_original=False,
        )
        return None


async def tell(respond: Respond, text: str) -> None:
    """An ephemeral sentence to the person who asked."""
    await respond(response_type="ephemeral", text=text, replace_original=False)
