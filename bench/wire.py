"""A lean HTTP/1.1 keep-alive client for load generation, and Slack-signed request bodies.

httpx costs a few hundred microseconds of Python per request on the *client* side; on a
2-core machine that shares its cores with the bot, that would be measured as the bot's
latency. This client writes the request bytes and reads the answer with asyncio streams
and nothing else, so the time it measures is the server's.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import multiprocessing
import os
import secrets
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from emulators.slack import SlackEmulator


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    seconds: float  # from the first byte written to the last byte read


class Connection:
    """One keep-alive connection to one server; one request at a time."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> Connection:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self._writer.wait_closed()
            self._writer = self._reader = None

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> Answer:
        if self._writer is None:
            await self.open()
        try:
            return await self._request(method, path, headers, body)
        except (ConnectionError, asyncio.IncompleteReadError):
            # The server closed an idle keep-alive connection: reconnect once.
            await self.close()
            await self.open()
            return await self._request(method, path, headers, body)

    async def _request(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        assert self._reader is not None and self._writer is not None
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        raw = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        started = time.perf_counter()
        self._writer.write(raw)
        status, payload, close = await self._read()
        seconds = time.perf_counter() - started
        if close:
            await self.close()
        return Answer(status, payload, seconds)

    async def _read(self) -> tuple[int, bytes, bool]:
        assert self._reader is not None
        head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip()
        if "content-length" in fields:
            payload = await self._reader.readexactly(int(fields["content-length"]))
        elif fields.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await self._reader.readexactly(size + 2)
                if size == 0:
                    break
                chunks.append(chunk[:-2])
            payload = b"".join(chunks)
        else:
            payload = b""
        return status, payload, fields.get("connection", "").lower() == "close"


Request = tuple[str, str, dict[str, str], bytes]  # method, path, headers, body


class Burster:
    """Fires bursts of requests, all at once, from a separate process.

    The emulators answer the bot from threads of this process; a client sharing their GIL
    would count their work as the bot's latency. Each burst opens its connections first,
    then sends every request at the same moment.
    """

    def __init__(self) -> None:
        self._pool = ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_favour
        )

    async def fire(self, url: str, requests: list[Request]) -> tuple[float, list[tuple[int, float]]]:
        """(wall-clock time the burst was sent, [(status, seconds)] in request order)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, _fire, url, requests)

    def close(self) -> None:
        self._pool.shutdown()


def _favour() -> None:
    """Run the client ahead of the emulators when both want the CPU (needs root; else as is).

    The emulators answer the bot's follow-up calls during a burst; if the OS let them run
    first, the client would read the bot's answers late and count the wait as the bot's.
    """
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, -10)


def _fire(url: str, requests: list[Request]) -> tuple[float, list[tuple[int, float]]]:
    return asyncio.run(_fire_async(url, requests))


async def _fire_async(url: str, requests: list[Request]) -> tuple[float, list[tuple[int, float]]]:
    conns = [await Connection(url).open() for _ in requests]
    try:
        started = time.time()
        answers = await asyncio.gather(
            *(c.request(m, p, h, b) for c, (m, p, h, b) in zip(conns, requests, strict=True))
        )
    finally:
        for c in conns:
            await c.close()
    return started, [(a.status, a.seconds) for a in answers]


# -- requests as Slack and Heroku's logplex send them --------------------------------------


def signed_headers(slack: SlackEmulator, body: bytes, content_type: str) -> dict[str, str]:
    return {
        "Content-Type": content_type,
        "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        **slack.sign(body, int(time.time())),
    }


def slash_command(
    slack: SlackEmulator, text: str, *, user_id: str, channel_id: str
) -> tuple[bytes, dict[str, str]]:
    """The form Slack POSTs for `/pgconn TEXT`, with a live response URL at the emulator."""
    form = {
        "token": slack.verification_token,
        "team_id": slack.team_id,
        "team_domain": slack.team_domain,
        "channel_id": channel_id,
        "channel_name": slack.channels[channel_id].name,
        "user_id": user_id,
        "user_name": slack.ensure_user(user_id).name,
        "command": "/pgconn",
        "text": text,
        "api_app_id": slack.app_id,
        "is_enterprise_install": "false",
        "response_url": slack.new_response_url(channel=channel_id, user=user_id),
        "trigger_id": f"{secrets.randbelow(10**12)}.{secrets.token_hex(16)}",
    }
    body = urlencode(form).encode()
    return body, signed_headers(slack, body, "application/x-www-form-urlencoded")


def button_click(
    slack: SlackEmulator, *, action_id: str, value: str, user_id: str, channel_id: str
) -> tuple[bytes, dict[str, str]]:
    """A `block_actions` payload for a button in a message the payload does not carry."""
    user = slack.ensure_user(user_id)
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user.id, "username": user.name, "name": user.name, "team_id": slack.team_id},
        "api_app_id": slack.app_id,
        "token": slack.verification_token,
        "container": {"type": "message", "channel_id": channel_id, "is_ephemeral": False},
        "trigger_id": f"{secrets.randbelow(10**12)}.{secrets.token_hex(16)}",
        "team": {"id": slack.team_id, "domain": slack.team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": slack.channels[channel_id].name},
        "state": {"values": {}},
        "response_url": slack.new_response_url(channel=channel_id, user=user_id),
        "actions": [
            {
                "action_id": action_id,
                "block_id": "pgconn.actions",
                "text": {"type": "plain_text", "text": action_id, "emoji": True},
                "value": value,
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    return body, signed_headers(slack, body, "application/x-www-form-urlencoded")


def drain_headers(credentials: tuple[str, str], msg_count: int) -> dict[str, str]:
    """What logplex sends with an HTTPS drain POST (the drain URL is https://NONCE:PASSWORD@host/...)."""
    basic = base64.b64encode(":".join(credentials).encode()).decode()
    return {
        "Content-Type": "application/logplex-1",
        "Logplex-Msg-Count": str(msg_count),
        "Logplex-Frame-Id": secrets.token_hex(16).upper(),
        "Logplex-Drain-Token": "d.fc6b856b-3332-4546-93de-7d0ee272c3bd",
        "User-Agent": "Logplex/v123",
        "Authorization": f"Basic {basic}",
    }
