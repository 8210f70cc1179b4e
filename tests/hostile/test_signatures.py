"""Slack request signatures: every tampered byte and every stale replay is refused with 401.

The bot verifies `v0:{timestamp}:{body}` with HMAC-SHA256 and a 5-minute window. These
tests take one correctly signed `/pgconn my-app` (which, accepted, would call Heroku and
post a report) and change it one byte at a time — body, timestamp and signature — then
check that not one variant got through: no 2xx, no 5xx, no Heroku call, no Slack post.
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

import httpx

from tests.conftest import System
from tests.harness import ADMIN, OPS_CHANNEL
from tests.hostile.helpers import new_message

FORM = "application/x-www-form-urlencoded"


def slash_body(system: System, text: str = "my-app") -> bytes:
    return urlencode(
        {
            "token": system.slack.verification_token,
            "team_id": system.slack.team_id,
            "channel_id": OPS_CHANNEL,
            "channel_name": "ops",
            "user_id": ADMIN,
            "user_name": "alice",
            "command": "/pgconn",
            "text": text,
            "api_app_id": system.slack.app_id,
            "response_url": system.slack.new_response_url(channel=OPS_CHANNEL, user=ADMIN),
            "trigger_id": "1.2.abc",
        }
    ).encode()


def flipped(data: bytes, index: int, mask: int) -> bytes:
    return data[:index] + bytes([data[index] ^ mask]) + data[index + 1 :]


async def test_every_single_byte_change_of_a_signed_request_is_rejected(system: System) -> None:
    body = slash_body(system)
    ts = str(int(time.time()))
    signature = system.slack.sign(body, int(ts))["X-Slack-Signature"].encode()
    variants: list[tuple[bytes, bytes, bytes]] = []
    # Two changes per byte: the lowest bit (stays ASCII: '=' → '<', '1' → '0', 'a' → '`')
    # and the highest (invalid UTF-8), for every byte of body, timestamp and signature.
    for mask in (0x01, 0x80):
        variants += [(flipped(body, i, mask), ts.encode(), signature) for i in range(len(body))]
        variants += [(body, flipped(ts.encode(), i, mask), signature) for i in range(len(ts))]
        variants += [(body, ts.encode(), flipped(signature, i, mask)) for i in range(len(signature))]
    statuses: dict[int, int] = {}
    async with httpx.AsyncClient(timeout=10) as client:
        for sent_body, sent_ts, sent_sig in variants:
            response = await client.post(
                system.bot.events_url,
                content=sent_body,
                headers=[
                    (b"Content-Type", FORM.encode()),
                    (b"X-Slack-Request-Timestamp", sent_ts),
                    (b"X-Slack-Signature", sent_sig),
                ],
            )
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    assert statuses == {401: len(variants)}, statuses
    assert len(variants) == 2 * (len(body) + len(ts) + len(signature)) > 600
    assert system.heroku.requests == []
    assert system.slack.received == [] and system.slack.messages(OPS_CHANNEL) == []
    assert system.bot.alive()
    # The untouched original is accepted and does what it says, so the checks above could fail.
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            system.bot.events_url,
            content=body,
            headers={
                "Content-Type": FORM, "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature.decode()
            },
        )
    assert response.status_code == 200
    await new_message(system, 0)


async def test_missing_or_empty_signature_headers_are_rejected(system: System) -> None:
    body = slash_body(system)
    ts = int(time.time())
    good = system.slack.sign(body, ts)
    cases = [
        {},
        {"X-Slack-Request-Timestamp": str(ts)},
        {"X-Slack-Signature": good["X-Slack-Signature"]},
        {"X-Slack-Request-Timestamp": "", "X-Slack-Signature": good["X-Slack-Signature"]},
        {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": ""},
        {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": "v0="},
        {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": good["X-Slack-Signature"].upper()},
        {"X-Slack-Request-Timestamp": f"{ts}.0", "X-Slack-Signature": good["X-Slack-Signature"]},
    ]
    async with httpx.AsyncClient(timeout=10) as client:
        for headers in cases:
            response = await client.post(
                system.bot.events_url, content=body, headers={"Content-Type": FORM, **headers}
            )
            assert response.status_code == 401, headers
    assert system.heroku.requests == [] and system.slack.received == []


async def test_correctly_signed_request_replayed_after_five_minutes_is_rejected(system: System) -> None:
    now = int(time.time())
    # Signed correctly, but at a moment 5 minutes and a few seconds ago (or ahead).
    for ts in (now - 5 * 60 - 5, now - 3600, now + 5 * 60 + 5, 0):
        response = await system.slack.send_slash_command(
            "my-app", user_id=ADMIN, channel_id=OPS_CHANNEL, timestamp=ts
        )
        assert response.status_code == 401, ts
    clicked = await system.slack.click(
        action_id="pgconn.killall", value="my-app", user_id=ADMIN, channel_id=OPS_CHANNEL,
        timestamp=now - 5 * 60 - 5,
    )
    assert clicked.status_code == 401
    assert system.heroku.requests == [] and system.slack.received == []
    # Inside the window the same request is accepted: the window, not the signature, refused it.
    response = await system.slack.send_slash_command(
        "my-app", user_id=ADMIN, channel_id=OPS_CHANNEL, timestamp=now - 4 * 60
    )
    assert response.status_code == 200
    await new_message(system, 0)
