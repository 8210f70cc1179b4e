"""Small helpers shared by the hostile-input and failing-dependency tests."""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import psycopg

from emulators.slack import Message
from tests.conftest import System
from tests.harness import ADMIN, OPS_CHANNEL, BotProcess, bot_env, new_port, start_bot

# What makes mrkdwn act: a ping (<!channel>, <!here>, <!subteam^…>, <@U…>), a channel link
# (<#C…>) or any link (<https://…|label>, <mailto:…>). Escaped text never contains "<".
ACTIVE_MRKDWN = re.compile(r"<[!@#]|<[a-z][a-z0-9+.-]*:", re.IGNORECASE)


def slash_body(system: System, text: str, *, user: str = ADMIN, channel: str = OPS_CHANNEL) -> bytes:
    """A /pgconn form body as Slack sends it, with a fresh response URL of the emulator."""
    return urlencode(
        {
            "token": system.slack.verification_token,
            "team_id": system.slack.team_id,
            "channel_id": channel,
            "channel_name": "ops",
            "user_id": user,
            "user_name": "alice",
            "command": "/pgconn",
            "text": text,
            "api_app_id": system.slack.app_id,
            "response_url": system.slack.new_response_url(channel=channel, user=user),
            "trigger_id": "1.2.abc",
        }
    ).encode()


async def slash(
    system: System, text: str, *, user: str = ADMIN, channel: str = OPS_CHANNEL, **kw: Any
) -> httpx.Response:
    response = await system.slack.send_slash_command(text, user_id=user, channel_id=channel, **kw)
    return response


async def new_message(
    system: System, before: int, channel: str = OPS_CHANNEL, timeout: float = 15
) -> Message:
    """The first top-level message with blocks posted in `channel` after the first `before`."""
    return await system.slack.wait_for(
        lambda: next((m for m in system.slack.messages(channel)[before:] if m.blocks), None), timeout=timeout
    )


async def post_report(system: System, app: str = "my-app") -> Message:
    before = len(system.slack.messages(OPS_CHANNEL))
    await slash(system, app)
    return await new_message(system, before)


async def ephemeral(system: System, contains: str, timeout: float = 15) -> str:
    found = await system.slack.wait_for(
        lambda: next(
            (str(e["text"]) for e in system.slack.ephemerals if contains in str(e.get("text", ""))), None
        ),
        timeout=timeout,
    )
    return str(found)


async def thread_reply(system: System, parent: Message, contains: str, timeout: float = 15) -> Message:
    return await system.slack.wait_for(
        lambda: next(
            (m for m in system.slack.thread(parent.channel, parent.ts) if contains in m.text), None
        ),
        timeout=timeout,
    )


async def click(
    system: System, report: Message, action_id: str, *, user: str = ADMIN, value: str = "my-app"
) -> httpx.Response:
    return await system.slack.click(
        action_id=action_id, value=value, user_id=user, channel_id=report.channel, message_ts=report.ts
    )


def click_payload(
    system: System, report: Message, action_id: str, *, user: str = ADMIN, value: str = "my-app"
) -> dict[str, Any]:
    """A block_actions payload as Slack sends it for a button on `report`, built by hand so a
    test can put anything in it (the emulator's own click only lets real users click)."""
    channel = report.channel
    return {
        "type": "block_actions",
        "user": {"id": user, "username": "someone", "name": "someone", "team_id": system.slack.team_id},
        "api_app_id": system.slack.app_id,
        "token": system.slack.verification_token,
        "container": {
            "type": "message", "message_ts": report.ts, "channel_id": channel, "is_ephemeral": False
        },
        "trigger_id": "1.2.3",
        "team": {"id": system.slack.team_id, "domain": system.slack.team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": "ops"},
        "message": system.slack.message_json(report),
        "state": {"values": {}},
        "response_url": system.slack.new_response_url(channel=channel, user=user, message_ts=report.ts),
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


async def deliver_payload(system: System, payload: Any) -> httpx.Response:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    return await system.slack.deliver(body, kind="block_actions")


def can_connect(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def destructive_heroku_calls(system: System, since: int = 0) -> list[str]:
    """Every Heroku request after `since` that changes something (anything but GET)."""
    return [f"{r.method} {r.path}" for r in system.heroku.requests[since:] if r.method != "GET"]


@contextlib.contextmanager
def dedicated_bot(system: System, *, redis_url: str | None = None, **env: str) -> Iterator[BotProcess]:
    """A bot process of its own (own Redis, own settings), with Slack delivering to it.

    For tests that break a dependency: the session bot and the other tests never see it.
    """
    process = start_bot(
        bot_env(
            slack_url=system.slack.url,
            heroku_url=env.pop("heroku_url", system.heroku.url),
            redis_url=redis_url or system.redis_url,
            port=new_port(),
            **env,
        )
    )
    system.slack.request_url = process.events_url
    try:
        yield process
    finally:
        process.stop()
        system.slack.request_url = system.bot.events_url


def process_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise LookupError("VmRSS not found")


def process_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def process_tcp_sockets(pid: int) -> int:
    """Open sockets of the process (file descriptors pointing at socket inodes)."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                count += 1
    return count


def basic_auth(user: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def post_drain(
    bot: BotProcess, app: str, body: bytes, *, authorization: str | None, count: int = 1
) -> httpx.Response:
    from tests.bot.samples import logplex_headers

    headers = logplex_headers(count)
    if authorization is not None:
        headers["Authorization"] = authorization
    async with httpx.AsyncClient(timeout=15) as client:
        return await client.post(f"{bot.url}/drains/heroku/{app}", content=body, headers=headers)
