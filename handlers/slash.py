"""`/pgconn` — ack at once, then parse, call the core, render, answer."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.commands import HELP, Command, CommandError, parse_command
from bot.errors import PgconnError
from bot.messaging import post_in_channel, tell
from bot.render.report import report_blocks, report_fallback_text
from bot.report import build_report
from bot.services import Services

log = logging.getLogger(__name__)


async def pgconn_command(
    ack: Any, command: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient, context: Any
) -> None:
    await ack()
    services: Services = context["services"]
    try:
        parsed = parse_command(command.get("text", ""), services.settings.apps)
    except CommandError as exc:
        await tell(respond, exc.message)
        return
    log.info("/pgconn %s %s by %s", parsed.verb, parsed.app or "", command.get("user_id"))
    try:
        await VERB_HANDLERS[parsed.verb](services, parsed, command, respond, client)
    except PgconnError as exc:
        log.warning("/pgconn %s %s failed: %s", parsed.verb, parsed.app, type(exc).__name__)
        await tell(respond, f":x: {exc.message}")


async def _help(
    services: Services, cmd: Command, command: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
) -> None:
    apps = ", ".join(f"`{a}`" for a in services.settings.apps)
    await tell(respond, f"{HELP}\nApps: {apps}")


async def _report(
    services: Services, cmd: Command, command: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
) -> None:
    assert cmd.app is not None
    report = await build_report(
        services.heroku, services.inspector, cmd.app, headroom=services.settings.budget_headroom
    )
    await post_in_channel(
        client,
        respond,
        channel=command["channel_id"],
        text=report_fallback_text(report),
        blocks=report_blocks(report, idle_after_s=services.settings.kill_idle_after_s),
    )


VERB_HANDLERS: dict[str, Any] = {
    "help": _help,
    "report": _report,
    "diagnose": _report,
}
