"""Finish the story of actions a stopped process left in flight (bot.state.inflight).

Run by every process at start and every few seconds after: an action whose process is gone
gets, in its thread, what was done and what was not; a restart that was being followed is
followed to the end by this process; the button works again when nothing was done.
"""

from __future__ import annotations

import asyncio
import logging
import time

from slack_sdk.errors import SlackApiError

from bot.dependencies import Services
from bot.readings import Dyno
from bot.remediation import fixes
from bot.render import remediation as ids
from bot.render.text import escape, inert
from bot.state.inflight import ALIVE_EVERY_S, InFlight, describe
from bot.state.remediation import AuditRecord

log = logging.getLogger(__name__)

LOOK_EVERY_S = 5.0


async def keep_finishing(services: Services) -> None:
    """Heartbeat of this process, and a look for orphans (lasting task)."""
    last_look = float("-inf")
    while not services.stopping:
        await services.inflight.beat()
        if time.monotonic() - last_look >= LOOK_EVERY_S:
            last_look = time.monotonic()
            try:
                await finish_interrupted(services)
            except Exception:  # noqa: BLE001 - the loop must outlive any one record
                log.exception("finishing interrupted actions failed")
        await asyncio.sleep(ALIVE_EVERY_S if services.inflight.enabled else 3600)


async def finish_interrupted(services: Services) -> int:
    records = await services.inflight.orphans()
    for record in records:
        log.info("finishing an action a stopped pgconn process left: %s", describe(record))
        try:
            await _finish(services, record)
        finally:
            await services.inflight.release_lock(record.app, record.lock_token)
            await services.inflight.end(record)
    return len(records)


async def _finish(services: Services, record: InFlight) -> None:
    label = ids.ACTION_LABELS.get(record.action, record.action)
    who, app = f"<@{record.user}>", escape(record.app)
    if record.phase == "following" and record.action == ids.RESTART:
        await _follow(services, record)
        return
    if record.phase == "done":
        text = (
            f":white_check_mark: {who} ran *{label}* on `{app}`: {record.result_text or 'done'} "
            "_(pgconn restarted before it could say so; told by another pgconn process)_"
        )
        ok = True
    elif record.phase == "started" and not record.done:
        text = (
            f":warning: pgconn restarted before *{label}* on `{app}` (clicked by {who}) ran: "
            "*nothing was done*. The button works again."
        )
        await services.inflight.free_claim(record.claim_key)
        ok = False
    else:
        lines = [f":warning: pgconn restarted in the middle of *{label}* on `{app}` (clicked by {who})."]
        lines += [f"• done: {d}" for d in record.done]
        if record.sending:
            lines.append(
                f"• *may or may not have been done*: {inert(record.sending)} — check before retrying"
            )
        else:
            lines.append("• *not done*: the rest of the action")
        text = "\n".join(lines)
        ok = False
    await _say(services, record, text)
    await services.audit.record(
        AuditRecord(
            at=time.time(), user=record.user, action=record.action, app=record.app, ok=ok,
            result=text.split("\n", 1)[0][:300],
        )
    )


async def _follow(services: Services, record: InFlight) -> None:
    head = record.result_text or f"<@{record.user}> ran *Restart dynos* on `{escape(record.app)}`"

    async def progress(dynos: list[Dyno]) -> None:
        if record.result_ts is None:
            return
        try:
            text = f"{head}\n{fixes.dyno_progress(dynos)}"
            await services.slack.chat_update(channel=record.channel, ts=record.result_ts, text=text)
        except SlackApiError as exc:
            log.warning("updating restart progress failed: %s", exc.response.get("error"))

    up, dynos = await fixes.wait_for_dynos(
        services.heroku,
        record.app,
        record.process_type,
        progress,
        timeout_s=services.settings.restart_timeout_s,
        interval_s=services.settings.restart_poll_s,
    )
    final = (
        f"{head}\nAll {len(dynos)} dynos are up _(followed to the end by another pgconn process: "
        "pgconn itself restarted meanwhile)_."
        if up
        else f"{head}\n:warning: Gave up waiting: {fixes.dyno_progress(dynos)}. "
        f"Check `heroku ps -a {record.app}`."
    )
    if record.result_ts is not None:
        try:
            await services.slack.chat_update(channel=record.channel, ts=record.result_ts, text=final)
            return
        except SlackApiError as exc:
            log.warning("updating restart progress failed: %s", exc.response.get("error"))
    await _say(services, record, final)


async def _say(services: Services, record: InFlight, text: str) -> None:
    try:
        await services.slack.chat_postMessage(channel=record.channel, thread_ts=record.thread_ts, text=text)
    except SlackApiError as exc:
        # A channel the bot is not in: the click's response URL died with its process.
        log.error("could not tell %s what happened to %s: %s", record.channel, record.action,
                  exc.response.get("error"))
