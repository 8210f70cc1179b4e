"""`/pgconn` — ack at once, then parse, call the core, render, answer."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from slack_bolt.async_app import AsyncAck, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot import watch
from bot.authz import who_may
from bot.commands import HELP, AppCommand, AppVerb, CommandError, HelpCommand, parse_command
from bot.dependencies import Services
from bot.errors import PgconnError
from bot.postmortem.writer import latest_postmortem
from bot.render.audit import audit_text
from bot.render.budget import budget_blocks, budget_fallback_text
from bot.render.postmortem import again_blocks, postmortem_text
from bot.render.report import report_blocks, report_fallback_text
from bot.render.text import inert
from bot.report import Report, app_budget, report_for
from bot.slack_delivery import post_in_channel, respond_reliably, tell

log = logging.getLogger(__name__)

Payload = dict[str, Any]  # the slash command as Slack sent it (channel_id, user_id, text …)


async def pgconn_command(
    ack: AsyncAck,
    command: dict[str, Any],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    await ack()
    services: Services = context["services"]
    try:
        parsed = parse_command(command.get("text", ""), services.settings.apps)
    except CommandError as exc:
        await tell(respond, exc.message)
        return
    user = str(command.get("user_id") or "")
    log.info("/pgconn %s %s by %s", parsed.verb, parsed.app or "", user)
    if not await services.authoriser.may(user, parsed.verb, parsed.app, channel=command.get("channel_id")):
        log.warning("refused /pgconn %s %s from %s: not a pgconn admin", parsed.verb, parsed.app, user)
        await tell(
            respond,
            f":no_entry: Only {who_may(parsed.verb)} may run `/pgconn {parsed.app} {parsed.verb}`. "
            "Nothing was done.",
        )
        return
    refusal = await services.throttle.refusal(user, parsed.verb, parsed.app)
    if refusal is not None:
        await tell(respond, refusal)
        return
    try:
        if isinstance(parsed, HelpCommand):
            await _help(services, respond)
        else:
            await VERB_HANDLERS[parsed.verb](services, parsed, command, respond, client)
    except PgconnError as exc:
        log.warning("/pgconn %s %s failed: %s", parsed.verb, parsed.app, type(exc).__name__)
        await tell(respond, f":x: {inert(exc.message)}")
    except Exception as exc:  # noqa: BLE001 - a bug must still answer the person, and be logged
        log.exception("/pgconn %s %s failed unexpectedly", parsed.verb, parsed.app)
        await tell(
            respond,
            f":x: pgconn failed unexpectedly ({type(exc).__name__}) answering `/pgconn {parsed.verb}`"
            f"{' for ' + parsed.app if parsed.app else ''}. The details are in pgconn's log.",
        )


async def _help(services: Services, respond: AsyncRespond) -> None:
    apps = ", ".join(f"`{a}`" for a in services.settings.apps)
    await tell(respond, f"{HELP}\nApps: {apps}")


async def _build_report(services: Services, app: str) -> Report:
    return await report_for(services, app)


async def _report(
    services: Services, cmd: AppCommand, command: Payload, respond: AsyncRespond, client: AsyncWebClient
) -> None:
    report = await _build_report(services, cmd.app)
    await post_in_channel(
        client,
        respond,
        channel=command["channel_id"],
        text=report_fallback_text(report),
        blocks=report_blocks(report, idle_after_s=services.settings.kill_idle_after_s),
    )


async def _budget(
    services: Services, cmd: AppCommand, command: Payload, respond: AsyncRespond, client: AsyncWebClient
) -> None:
    app, budget = await app_budget(services.heroku, cmd.app, headroom=services.settings.budget_headroom)
    await post_in_channel(
        client,
        respond,
        channel=command["channel_id"],
        text=budget_fallback_text(app, budget),
        blocks=budget_blocks(app, budget),
    )


async def _audit(
    services: Services, cmd: AppCommand, command: Payload, respond: AsyncRespond, client: AsyncWebClient
) -> None:
    records = await services.audit.recent(cmd.app, count=15)
    await tell(respond, audit_text(cmd.app, records))


async def _watch(
    services: Services, cmd: AppCommand, command: Payload, respond: AsyncRespond, client: AsyncWebClient
) -> None:
    """watch and unwatch: admin actions, one at a time per app, audited and announced (bot.watch)."""
    verb: Literal["watch", "unwatch"] = "unwatch" if cmd.verb == "unwatch" else "watch"
    await tell(respond, await watch.as_admin(services, cmd.app, verb, str(command.get("user_id"))))


async def _diagnose(
    services: Services, cmd: AppCommand, command: Payload, respond: AsyncRespond, client: AsyncWebClient
) -> None:
    report = await _build_report(services, cmd.app)
    blocks = report_blocks(report, idle_after_s=services.settings.kill_idle_after_s, checks=True)
    if await services.authoriser.private_for(str(command.get("user_id") or ""), "diagnose", cmd.app):
        # Query text and client addresses: for the person who asked, not the whole channel.
        await respond_reliably(
            respond, response_type="ephemeral", text=report_fallback_text(report), blocks=blocks,
            replace_original=False,
        )
        return
    await post_in_channel(
        client, respond, channel=command["channel_id"], text=report_fallback_text(report), blocks=blocks
    )


async def _postmortem(
    services: Services, cmd: AppCommand, command: Payload, respond: AsyncRespond, client: AsyncWebClient
) -> None:
    found = await latest_postmortem(services, cmd.app)
    if found is None:
        await tell(respond, f"No post-mortem of `{cmd.app}` yet: pgconn writes one when an incident ends.")
        return
    pm, permalink = found
    text, blocks = postmortem_text(pm), again_blocks(pm, permalink)
    await post_in_channel(client, respond, channel=command["channel_id"], text=text, blocks=blocks)


# What each verb about an app does; `help` needs no app and is answered above.
VerbHandler = Callable[
    [Services, AppCommand, Payload, AsyncRespond, AsyncWebClient], Awaitable[None]
]
VERB_HANDLERS: dict[AppVerb, VerbHandler] = {
    "report": _report,
    "diagnose": _diagnose,
    "budget": _budget,
    "audit": _audit,
    "watch": _watch,
    "unwatch": _watch,
    "postmortem": _postmortem,
}
