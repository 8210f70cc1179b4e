"""The safety protocol every button goes through, in order:

re-validate the app → authorise the user → claim the click (exactly once, Redis) →
lock the app (one destructive action at a time) → run → post who/what/result in the
thread → audit. Any refusal is a sentence for the clicker, a log line, and no effect.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError

from bot.dependencies import Services
from bot.errors import ActionBusy, AlreadyDone, PgconnError, StateUnavailable
from bot.readings import Dyno
from bot.remediation import fixes
from bot.remediation.buttons import BY_ID
from bot.remediation.fixes import Outcome, Progress, dyno_progress
from bot.render import remediation as ids
from bot.render.text import escape, inert
from bot.state.inflight import InFlight
from bot.state.remediation import AuditRecord
from bot.verification import checker as verification

log = logging.getLogger(__name__)

Tell = Callable[[str], Awaitable[None]]

LABELS = ids.ACTION_LABELS
# Slack: a response_url takes at most 5 posts, within 30 minutes of the interaction
# (api.slack.com/interactivity/handling#message_responses; ../shared/contracts/README.md).
RESPONSE_URL_TTL_S = 30 * 60
RESPONSE_URL_MARGIN_S = 60


@dataclass(frozen=True)
class Click:
    action_id: str
    value: str
    user_id: str
    channel_id: str
    message_ts: str | None  # the message carrying the button
    thread_ts: str | None  # that message's thread, when it is a reply
    action_ts: str


def parse_value(value: str) -> tuple[str, str | None]:
    """`app` or `app:process_type` (restart of one type)."""
    app, _, process_type = value.partition(":")
    return app.strip().lower(), (process_type.strip() or None)


async def execute(services: Services, click: Click, tell: Tell) -> Outcome | None:
    settings = services.settings
    if click.action_id not in LABELS:
        log.warning("refused unknown action %r from %s", click.action_id[:40], click.user_id)
        return None
    app, process_type = parse_value(click.value)
    label = LABELS[click.action_id]
    if services.stopping:
        # SIGTERM: this process is going away (a dyno restart or a deploy); nothing is started.
        await tell(f":hourglass: pgconn is restarting: *{label}* was not run. Click again in a few seconds.")
        return None
    if app not in settings.apps:
        log.warning(
            "refused %s on %r from %s: app not in PGCONN_APPS", click.action_id, app[:40], click.user_id
        )
        await tell(f":no_entry: pgconn may not act on `{escape(app[:40])}`: it is not in PGCONN_APPS.")
        return None
    if not await services.authoriser.may(click.user_id, click.action_id, app):
        log.warning("refused %s on %s: %s is not an admin of the app", click.action_id, app, click.user_id)
        await tell(f":no_entry: Only pgconn admins may run *{label}* on `{app}`. Nothing was done.")
        return None
    message_ref = click.message_ts or click.action_ts
    try:
        claim = await services.ledger.claim(click.action_id, app, message_ref, click.user_id)
    except AlreadyDone as exc:
        log.info("%s on %s from %s: %s", click.action_id, app, click.user_id, exc.message)
        await tell(f"*{label}* on `{app}` was {exc.message}; not run again.")
        return None
    except StateUnavailable as exc:
        log.warning("refused %s on %s: state store unavailable", click.action_id, app)
        await tell(f":no_entry: *{label}* refused: {exc.message}. Nothing was done; try again shortly.")
        return None
    try:
        token = await services.ledger.lock(app)
    except (ActionBusy, StateUnavailable) as exc:
        await services.ledger.finish(claim, done=False)
        await tell(f":hourglass: *{label}* not run: {exc.message}.")
        return None
    await services.ledger.hold(claim)
    recorder = _Recorder(
        services,
        InFlight(
            id=claim.key.removeprefix("pgconn:click:"),
            action=click.action_id,
            app=app,
            user=click.user_id,
            channel=click.channel_id,
            message_ts=click.message_ts,
            thread_ts=click.thread_ts or click.message_ts,
            process_type=process_type,
            claim_key=claim.key,
            lock_token=token,
            owner=services.inflight.owner,
        ),
    )
    await services.inflight.save(recorder.record)
    # The connections before the fix: what its verification compares with (bot.verification).
    before = await verification.baseline(services, click.action_id, app)
    try:
        outcome = await _run(services, click, app, process_type, recorder)
    except PgconnError as exc:
        log.warning("%s on %s failed: %s", click.action_id, app, exc.message)
        outcome = Outcome(ok=False, changed=False, summary=f"failed: {inert(exc.message)}")
    except Exception as exc:  # noqa: BLE001 - a bug: say so, and keep the claim (it may have run)
        log.exception("%s on %s failed unexpectedly", click.action_id, app)
        outcome = Outcome(
            ok=False,
            changed=True,
            summary=f"failed unexpectedly ({type(exc).__name__}); it may or may not have been done — "
            "check before retrying (details in pgconn's log)",
        )
    finally:
        await services.ledger.unlock(app, token)
    await services.ledger.finish(claim, done=outcome.changed or outcome.ok)
    log.info("%s on %s by %s: %s", click.action_id, app, click.user_id, outcome.summary)
    recorded = await services.audit.record(
        AuditRecord(
            at=time.time(),
            user=click.user_id,
            action=click.action_id,
            app=app,
            ok=outcome.ok,
            result=outcome.summary,
        )
    )
    await recorder.finished(outcome.summary)
    ts = await _post_result(services, click, label, app, outcome, recorded, tell)
    await verification.schedule_after_fix(
        services,
        action_id=click.action_id,
        app=app,
        process_type=process_type,
        user=click.user_id,
        channel=click.channel_id,
        thread_ts=click.thread_ts or click.message_ts,
        before=before,
        outcome=outcome,
    )
    if click.action_id == ids.RESTART and outcome.ok:
        # A dyno restart of pgconn's own while following: the next process follows to the end.
        await recorder.following(ts, result_text(click.user_id, label, app, outcome))
        # ts None: the result went through the click's response URL (the bot is not in that
        # channel), which takes only 5 posts within 30 minutes: no progress there, one final word.
        await _follow_restart(services, click, app, process_type, ts, outcome, tell)
    await services.inflight.end(recorder.record)
    return outcome


class _Recorder:
    """Keeps the click's in-flight record up to date (bot.remediation.Progress)."""

    def __init__(self, services: Services, record: InFlight) -> None:
        self._services = services
        self.record = record

    async def sending(self, what: str) -> None:
        self.record.phase, self.record.sending = "sent", what
        await self._services.inflight.save(self.record)

    async def done(self, what: str) -> None:
        self.record.done.append(what)
        self.record.sending = None
        await self._services.inflight.save(self.record)

    async def finished(self, summary: str) -> None:
        self.record.phase, self.record.sending, self.record.result_text = "done", None, summary
        await self._services.inflight.save(self.record)

    async def following(self, ts: str | None, text: str) -> None:
        self.record.phase, self.record.result_ts, self.record.result_text = "following", ts, text
        await self._services.inflight.save(self.record)


async def _run(
    services: Services, click: Click, app: str, process_type: str | None, progress: Progress
) -> Outcome:
    return await BY_ID[click.action_id].fix(services, app, process_type, progress)


def result_text(user_id: str, label: str, app: str, outcome: Outcome) -> str:
    icon = ":white_check_mark:" if outcome.ok else ":x:"
    lines = [f"{icon} <@{user_id}> ran *{label}* on `{app}`: {outcome.summary}."]
    lines += [f"• done: {d}" for d in outcome.done]
    lines += [f"• *not done*: {d}" for d in outcome.not_done]
    lines += list(outcome.details)
    return "\n".join(lines)


async def _post_result(
    services: Services, click: Click, label: str, app: str, outcome: Outcome, recorded: bool, tell: Tell
) -> str | None:
    text = result_text(click.user_id, label, app, outcome)
    if not recorded:
        text += "\n_(not written to the audit log: the state store is unavailable)_"
    try:
        result = await services.slack.chat_postMessage(
            channel=click.channel_id, thread_ts=click.thread_ts or click.message_ts, text=text
        )
        return str(result["ts"])
    except SlackApiError as exc:
        log.warning("posting the result of %s failed: %s", click.action_id, exc.response.get("error"))
        await tell(text)
        return None


async def _follow_restart(
    services: Services,
    click: Click,
    app: str,
    process_type: str | None,
    ts: str | None,
    outcome: Outcome,
    tell: Tell,
) -> None:
    head = result_text(click.user_id, LABELS[ids.RESTART], app, outcome)
    timeout_s = services.settings.restart_timeout_s
    if ts is None:
        # Slack refuses a response URL 30 minutes after the click: the last word must come before.
        timeout_s = min(timeout_s, RESPONSE_URL_TTL_S - RESPONSE_URL_MARGIN_S)

    async def progress(dynos: list[Dyno]) -> None:
        if ts is None:
            return
        try:
            await services.slack.chat_update(
                channel=click.channel_id, ts=ts, text=f"{head}\n{dyno_progress(dynos)}"
            )
        except SlackApiError as exc:
            log.warning("updating restart progress failed: %s", exc.response.get("error"))

    up, dynos = await fixes.wait_for_dynos(
        services.heroku,
        app,
        process_type,
        progress,
        timeout_s=timeout_s,
        interval_s=services.settings.restart_poll_s,
    )
    final = (
        f"{head}\nAll {len(dynos)} dynos are up."
        if up
        else f"{head}\n:warning: Gave up waiting after {timeout_s:g}s: "
        f"{dyno_progress(dynos)}. Check `heroku ps -a {app}`."
    )
    if ts is None:
        await tell(final)
        return
    try:
        await services.slack.chat_update(channel=click.channel_id, ts=ts, text=final)
    except SlackApiError as exc:
        log.warning("updating restart progress failed: %s", exc.response.get("error"))
