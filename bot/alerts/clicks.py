"""Acknowledge, Snooze and Resolve clicked on an alert thread: the same protocol as the remediation
buttons (bot/remediation/clicks.py), in the same order:

re-validate what the button names (the incident, its app in PGCONN_APPS, a snooze duration pgconn
offers) → authorise the user (bot.authz RULES) → claim the click once (Redis `SET NX`, the ledger
the fixes use) → change the incident with its compare-and-set (two clicks at once: one change, the
other told who won) → the thread and the audit log say who did what → the parent is redrawn →
PagerDuty hears an acknowledge / resolve when it was told of the incident. Any refusal is a
sentence for the clicker, a log line, and no change.
"""

from __future__ import annotations

import logging
import time
from functools import partial

from slack_sdk.errors import SlackApiError

from bot.alerts import ownership
from bot.alerts.ownership import BY_ID, SNOOZE_CHOICES, Refusal
from bot.dependencies import Services
from bot.errors import AlreadyDone, StateUnavailable
from bot.remediation.clicks import Click, Tell
from bot.render.ownership import step_reply
from bot.render.text import escape
from bot.state.incidents import Incident
from bot.state.remediation import AuditRecord

log = logging.getLogger(__name__)


async def execute(services: Services, click: Click, tell: Tell) -> Incident | None:
    button = BY_ID.get(click.action_id)
    if button is None:
        log.warning("refused unknown action %r from %s", click.action_id[:40], click.user_id)
        return None
    label = button.label
    target = ownership.parse_value(click.value)
    if target is None:
        log.warning("refused %s from %s: a value pgconn did not make", click.action_id, click.user_id)
        await tell(f":no_entry: *{label}*: this button names no incident pgconn knows. Nothing changed.")
        return None
    app = target.app
    if services.stopping:
        await tell(f":hourglass: pgconn is restarting: *{label}* was not done. Click again in a few seconds.")
        return None
    if app not in services.settings.apps:
        log.warning("refused %s on %r from %s: not in PGCONN_APPS", click.action_id, app[:40], click.user_id)
        await tell(f":no_entry: pgconn may not act on `{escape(app[:40])}`: it is not in PGCONN_APPS.")
        return None
    if not await services.authoriser.may(click.user_id, click.action_id, app):
        log.warning("refused %s on %s: %s is not an admin of the app", click.action_id, app, click.user_id)
        await tell(f":no_entry: Only pgconn admins of `{app}` may *{label}* its incidents. Nothing changed.")
        return None
    if button.verb == "snooze" and target.seconds not in SNOOZE_CHOICES:
        log.warning("refused %s on %s: snooze of %r s not offered", click.action_id, app, target.seconds)
        await tell(f":no_entry: *{label}*: that duration is not one pgconn offers. Nothing changed.")
        return None
    try:
        claim = await services.ledger.claim(
            click.action_id, app, click.message_ts or click.action_ts, click.user_id
        )
    except AlreadyDone as exc:
        await tell(f"*{label}* on `{app}` was {exc.message}; not done again.")
        return None
    except StateUnavailable as exc:
        await tell(f":no_entry: *{label}* refused: {exc.message}. Nothing changed; try again shortly.")
        return None
    now = time.time()
    engine = services.alerts
    try:
        if button.verb == "resolve":
            # Through the engine's one "incident ended" path (the thread, the post-mortem, PagerDuty).
            outcome = await engine.resolve_by_hand(app, target.database, click.user_id, target.incident_id)
        else:
            step = (
                partial(ownership.acknowledge, user=click.user_id, now=now)
                if button.verb == "acknowledge"
                else partial(ownership.snooze, user=click.user_id, now=now, seconds=target.seconds or 0)
            )
            outcome = await engine.change(app, target.database, target.incident_id, step)
    except StateUnavailable as exc:
        await services.ledger.finish(claim, done=False)
        await tell(f":no_entry: *{label}* refused: {exc.message}. Nothing changed; try again shortly.")
        return None
    if isinstance(outcome, Refusal):
        await services.ledger.finish(claim, done=False)
        log.info("%s on %s by %s: %s", click.action_id, app, click.user_id, outcome.text)
        await tell(f"*{label}* on `{app}`: {outcome.text}. Nothing changed.")
        return None
    # A snooze may be chosen again later (a longer one): its claim only guards this moment.
    await services.ledger.finish(claim, done=button.verb != "snooze")
    log.info("%s on %s by %s: %s", click.action_id, app, click.user_id, outcome.id)
    recorded = await services.audit.record(
        AuditRecord(
            at=now,
            user=click.user_id,
            action=click.action_id,
            app=app,
            ok=True,
            result=_audit(button.verb, outcome),
        )
    )
    if button.verb == "resolve":
        # The engine told the thread ("resolved by hand by …") and ended the incident.
        if not recorded:
            await tell("_Resolved, but not written to the audit log: the state store is unavailable._")
        return outcome
    text = step_reply(button.verb, outcome, click.user_id)
    if not recorded:
        text += "\n_(not written to the audit log: the state store is unavailable)_"
    try:
        await services.slack.chat_postMessage(channel=outcome.channel, thread_ts=outcome.ts, text=text)
    except SlackApiError as exc:
        log.warning("posting %s in %s failed: %s", click.action_id, outcome.ts, exc.response.get("error"))
        await tell(text)
    await engine.redraw(outcome)
    pd = engine.escalator if button.verb == "acknowledge" else None
    if pd is not None and await pd.queue(outcome, "acknowledge", click.user_id):
        await pd.deliver()  # now rather than at the next tick; the outbox keeps it until then
    return outcome


def _audit(verb: str, incident: Incident) -> str:
    """The audit log's line: which incident, and what the step made of it."""
    opened = time.strftime("%H:%M UTC", time.gmtime(incident.opened_at))
    what = f"incident of {incident.database} opened {opened}"
    if verb == "resolve":
        return f"resolved the {what} by hand"
    if verb == "snooze":
        return f"snoozed the {what} until {time.strftime('%H:%M UTC', time.gmtime(incident.snoozed_until))}"
    return f"acknowledged the {what}; owns it"
