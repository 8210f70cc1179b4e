""""Diagnose with pgconn", the message shortcut: the report of the app a message names, in
that message's thread.

Any message will do — another tool's alert, a colleague's question: the first configured
app it names (as a whole name; the longest, then the earliest) is the one reported on. The
same rules as `/pgconn APP`: the workspace and shared-channel checks (a Bolt middleware,
handlers/__init__.py), `RULES["report"]` (bot.authz) and the throttle. No app named, not
allowed, throttled or failed: one ephemeral sentence to the person, nothing posted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.authz import who_may
from bot.detect import names_app
from bot.errors import PgconnError
from bot.render.report import report_blocks, report_fallback_text
from bot.render.text import MAX_BLOCKS, code, inert
from bot.report import report_for
from bot.slack_delivery import Respond, post_in_channel, tell

if TYPE_CHECKING:
    from bot.dependencies import Services

log = logging.getLogger(__name__)

SHORTCUT_NAME = "Diagnose with pgconn"  # its name in manifest.yml, quoted in answers


@dataclass(frozen=True)
class MessageAsk:
    """A person ran the shortcut on a message."""

    user: str
    channel: str
    thread_ts: str  # the message's thread (its own ts when it is not in one)
    text: str  # every word of the message: text, attachments, blocks


def no_app(apps: tuple[str, ...] | list[str]) -> str:
    known = ", ".join(code(a, 40) for a in apps[:20]) + (" …" if len(apps) > 20 else "")
    return (
        f":mag: *{SHORTCUT_NAME}* found no app pgconn knows in that message, so nothing was posted. "
        f"It looks for one of: {known}. Or run `/pgconn APP` yourself."
    )


async def diagnose_message(services: Services, ask: MessageAsk, respond: Respond) -> None:
    app = names_app(ask.text, services.settings.apps)
    if app is None:
        log.info("%s by %s: no known app named", SHORTCUT_NAME, ask.user)
        await tell(respond, no_app(list(services.settings.apps)))
        return
    if not await services.authoriser.may(ask.user, "report", app, channel=ask.channel):
        log.warning("refused %s on %s from %s", SHORTCUT_NAME, app, ask.user)
        await tell(
            respond, f":no_entry: Only {who_may('report')} may ask for `{app}`'s report. Nothing was done."
        )
        return
    refusal = await services.throttle.refusal(ask.user, "report", app)
    if refusal is not None:
        await tell(respond, refusal)
        return
    log.info("%s: %s by %s in %s", SHORTCUT_NAME, app, ask.user, ask.channel)
    try:
        report = await report_for(services, app)
    except PgconnError as exc:
        log.warning("%s on %s failed: %s", SHORTCUT_NAME, app, type(exc).__name__)
        await tell(respond, f":x: pgconn could not build `{app}`'s report: {inert(exc.message)}")
        return
    asked = {
        "type": "context",
        "elements": [
            {"type": "mrkdwn", "text": f"<@{ask.user}> asked pgconn about `{app}` ({SHORTCUT_NAME}):"}
        ],
    }
    blocks = report_blocks(report, idle_after_s=services.settings.kill_idle_after_s)
    if len(blocks) < MAX_BLOCKS:
        blocks = [asked, *blocks]
    await post_in_channel(
        services.slack,
        respond,
        channel=ask.channel,
        text=report_fallback_text(report),
        blocks=blocks,
        thread_ts=ask.thread_ts,
    )
