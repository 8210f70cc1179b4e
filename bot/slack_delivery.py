"""Slack delivery: channel post or response_url, paced per channel, and never dropped silently.

chat.postMessage is retried on 429 by the Web API client (Retry-After honoured). Posts to a
response URL are retried here on 429 (after Retry-After) and on 5xx or a network error; one
that still fails is logged as an error with what was lost, so an operator can see it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

Respond = Callable[..., Awaitable[Any]]

# Errors where the channel itself is the problem: the response_url still reaches the person.
_CHANNEL_ERRORS = {"not_in_channel", "channel_not_found", "is_archived", "restricted_action"}

RESPOND_ATTEMPTS = 4
# Longest Retry-After honoured; Slack asks for seconds, and the person is waiting.
MAX_RETRY_AFTER_S = 10.0


async def respond_reliably(respond: Respond, **message: Any) -> bool:
    """Post `message` through the response URL; False (and an error log) when it never got there."""
    outcome = "no attempt"
    for attempt in range(1, RESPOND_ATTEMPTS + 1):
        wait = 0.5 * 2 ** (attempt - 1)
        try:
            response = await respond(**message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - network errors of any library: retried
            outcome = type(exc).__name__
        else:
            status = int(getattr(response, "status_code", 200) or 200)
            if status == 200:
                return True
            outcome = f"HTTP {status} {str(getattr(response, 'body', ''))[:60]}".strip()
            if status == 429:
                wait = _retry_after(getattr(response, "headers", None) or {}, default=wait)
            elif status < 500:
                break  # expired_url, used_url, invalid_payload…: trying again cannot help
        if attempt < RESPOND_ATTEMPTS:
            await asyncio.sleep(min(wait, MAX_RETRY_AFTER_S))
    text = str(message.get("text", ""))
    log.error("a message to Slack was not delivered (%s): %s", outcome, text[:300])
    return False


def _retry_after(headers: Any, default: float) -> float:
    for name in ("Retry-After", "retry-after"):
        raw = headers.get(name) if hasattr(headers, "get") else None
        if isinstance(raw, list):
            raw = raw[0] if raw else None
        if raw is not None:
            try:
                return max(0.0, float(raw))
            except ValueError:
                return default
    return default


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
            await respond_reliably(
                respond, response_type="in_channel", text=text, blocks=blocks, replace_original=False
            )
            return None
        await respond_reliably(
            respond,
            response_type="ephemeral",
            text=f":x: pgconn could not post its answer (Slack said `{error}`). {text}",
            replace_original=False,
        )
        return None


async def tell(respond: Respond, text: str) -> None:
    """An ephemeral sentence to the person who asked."""
    await respond_reliably(respond, response_type="ephemeral", text=text, replace_original=False)


class ChannelPacer:
    """At most one post a second per channel, across this process's posters.

    chat.postMessage allows about one message a second per channel; pacing here avoids most
    429s, and the client's retry handler honours Retry-After for the rest."""

    def __init__(self, interval_s: float = 1.0) -> None:
        self.interval_s = interval_s
        self._locks: dict[str, asyncio.Lock] = {}
        self._last_at: dict[str, float] = {}

    async def paced(self, channel: str, call: Callable[[], Awaitable[Any]]) -> Any:
        async with self._locks.setdefault(channel, asyncio.Lock()):
            wait = self._last_at.get(channel, 0.0) + self.interval_s - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                return await call()
            finally:
                self._last_at[channel] = time.monotonic()
