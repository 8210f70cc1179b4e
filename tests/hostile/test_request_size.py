"""Denial of service before authentication: huge bodies and absurd timestamps on /slack/events.

Nothing that cannot carry a valid signature is read: missing or stale signature headers are
refused before the body, a declared Content-Length over the bound before the body, and a
chunked body is read only up to the bound (1 MiB). The bot's peak memory (VmHWM, reset
before each try) shows what it held.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from tests.conftest import System
from tests.hostile.helpers import new_message
from tests.hostile.test_signatures import FORM, slash_body

MAX_BODY_BYTES = 1024 * 1024  # bot.signing.MAX_BODY_BYTES, the documented bound
CHUNK = b"x" * (1024 * 1024)


def reset_peak_rss(pid: int) -> None:
    # "5" resets the peak resident set size (VmHWM) to the current one (proc(5), clear_refs).
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise LookupError("VmHWM not found")


def current_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise LookupError("VmRSS not found")


async def chunked(megabytes: int) -> AsyncIterator[bytes]:
    for _ in range(megabytes):
        yield CHUNK


async def post_chunked(url: str, megabytes: int, headers: dict[str, str]) -> int | str:
    """POST a chunked body of `megabytes` MB; the status, or the error when the bot hung up."""
    try:
        async with httpx.AsyncClient(timeout=60) as client:
            response = await client.post(
                url, content=chunked(megabytes), headers={"Content-Type": FORM, **headers}
            )
            return response.status_code
    except httpx.HTTPError as exc:
        return type(exc).__name__


async def test_unsigned_chunked_bodies_of_hundreds_of_megabytes_are_refused_without_being_read(
    system: System,
) -> None:
    pid = system.bot.process.pid
    reset_peak_rss(pid)
    before = current_rss_mb(pid)
    stale = str(int(time.time()) - 3600)
    cases = [
        {},  # no signature headers at all
        {"X-Slack-Request-Timestamp": stale, "X-Slack-Signature": "v0=" + "0" * 64},
        {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=short"},
    ]
    results = await asyncio.gather(*(post_chunked(system.bot.events_url, 100, h) for h in cases))
    # Refused at once (401); a client still sending may instead see the connection closed.
    assert all(r == 401 or isinstance(r, str) for r in results), results
    assert 401 in results, results
    grew = peak_rss_mb(pid) - before
    assert grew < 16, f"peak RSS grew by {grew:.0f} MB while refusing 3 × 100 MB unsigned bodies"
    assert system.bot.alive()
    assert system.heroku.requests == [] and system.slack.received == []


async def test_a_signed_body_over_the_bound_is_413_whether_chunked_or_declared(system: System) -> None:
    pid = system.bot.process.pid
    reset_peak_rss(pid)
    before = current_rss_mb(pid)
    body = slash_body(system) + b"&pad=" + b"x" * MAX_BODY_BYTES
    ts = int(time.time())
    signed = system.slack.sign(body, ts)

    async def pieces() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 65536):
            yield body[i : i + 65536]

    async with httpx.AsyncClient(timeout=60) as client:
        declared = await client.post(
            system.bot.events_url, content=body, headers={"Content-Type": FORM, **signed}
        )
        streamed = await client.post(
            system.bot.events_url, content=pieces(), headers={"Content-Type": FORM, **signed}
        )
    assert (declared.status_code, streamed.status_code) == (413, 413)
    # A 40 MB signed chunked body (someone holding the signing secret, or a replay of one)
    # is cut off at the bound too.
    huge = await post_chunked(system.bot.events_url, 40, system.slack.sign(b"", ts))
    assert huge == 413 or isinstance(huge, str), huge
    assert peak_rss_mb(pid) - before < 16
    assert system.heroku.requests == [] and system.slack.received == []
    # A normal command still works: the bound refused the size, nothing else.
    response = await system.slack.send_slash_command("my-app", user_id="UADMIN01", channel_id="C0OPS")
    assert response.status_code == 200
    await new_message(system, 0)


async def test_a_timestamp_of_five_thousand_digits_is_401_not_500(system: System) -> None:
    body = slash_body(system)
    tracebacks = system.bot.logs().count("Traceback")
    async with httpx.AsyncClient(timeout=10) as client:
        for timestamp in ("9" * 5000, "1" * 4301, "0" * 20 + str(int(time.time()))):
            response = await client.post(
                system.bot.events_url,
                content=body,
                headers={
                    "Content-Type": FORM,
                    "X-Slack-Request-Timestamp": timestamp,
                    "X-Slack-Signature": "v0=" + "0" * 64,
                },
            )
            assert response.status_code == 401, timestamp[:20]
    assert system.bot.logs().count("Traceback") == tracebacks
    assert system.heroku.requests == [] and system.slack.received == []
