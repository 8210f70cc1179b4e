"""Check each fix's effect a while after it ran, and say it in the fix's thread (the I/O around
bot.verification.verdicts).

- Kill idle / Kill all: the role's connections are counted before the fix, right after it and
  PGCONN_VERIFY_AFTER seconds later: down and staying down, or climbing back.
- A restart: PGCONN_VERIFY_AFTER seconds later, every dyno (of the type) up and the connections
  under the limit.
- Add PgBouncer: the fix only changes buildpacks and config vars; it works once the app is
  deployed with the Procfile change. pgconn follows the app's next release with a *new slug* (a
  config change re-releases the old slug; Add PgBouncer's own config vars are such a release),
  woken by its `api:release` webhook, or by looking at `GET /apps/{app}/releases` every
  PGCONN_VERIFY_POLL seconds when no webhook comes. Then: does the build that made the slug carry
  the buildpack, does every process type with dynos start through `bin/start-pgbouncer`, and,
  PGCONN_VERIFY_AFTER seconds after the release, how many connections per dyno against before.

Every pending check lives in Redis (bot.state.verification): whichever process finds it due
takes it, and one line is said per fix, even across restarts of pgconn and several processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime

from slack_sdk.errors import SlackApiError

from bot.dependencies import Services
from bot.diagnosis import Cause
from bot.errors import DatabaseFull, PgconnError, StateUnavailable
from bot.limits import fetch_limit
from bot.remediation.buttons import BY_ID
from bot.remediation.fixes import Outcome
from bot.render.verification import verdict_blocks, verdict_text
from bot.report import build_report
from bot.state.verification import PendingCheck, VerificationResult, new_id
from bot.verification import verdicts
from bot.verification.verdicts import ReleaseFacts, Verdict

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5  # a check that fails this often (Heroku or the database down) says so
FULL = -1  # "before" when pgconn could not even connect: the role was at its limit


def tick_s(services: Services) -> float:
    """How often a process looks for due checks: often enough that a check is said within a
    tenth of its delay, and never busier than 20 times a second."""
    s = services.settings
    return max(0.05, min(2.0, s.verify_after_s / 10, s.verify_poll_s / 2))


# -- counting ----------------------------------------------------------------------------


async def count_now(services: Services, app: str) -> int | None:
    """The role's connections now, pgconn's own included (as the report counts them): over the
    reserved connection, or pg:info's figure when the role is too full for pgconn to connect."""
    try:
        dsn = await services.database_url(app)
        if dsn:
            return (await services.inspector.holders(dsn)).role_connections
    except DatabaseFull:
        pass
    except PgconnError as exc:
        log.info("verification of %s: could not count connections (%s)", app, exc.message)
    try:
        info = await services.heroku.pg_info(await services.heroku.database(app))
        return info.connections_used
    except PgconnError as exc:
        log.info("verification of %s: pg:info unavailable too (%s)", app, exc.message)
        return None


async def _limit(services: Services, app: str) -> int | None:
    try:
        limit = await fetch_limit(services.heroku, await services.heroku.database(app))
    except PgconnError:
        return None
    return limit.value if limit is not None else None


async def _cause(services: Services, app: str) -> Cause | None:
    """The likely cause, from a fresh diagnosis: for a fix that did not hold."""
    try:
        report = await build_report(
            services.heroku,
            services.inspector,
            app,
            headroom=services.settings.budget_headroom,
            thresholds=services.settings.diagnosis_thresholds,
        )
    except PgconnError:
        return None
    return report.diagnosis.cause if report.diagnosis is not None else None


# -- scheduling (clicks.py calls these around a fix) ------------------------------------------


def verifies(action_id: str) -> bool:
    return action_id in BY_ID


async def baseline(services: Services, action_id: str, app: str) -> int | None:
    """The connections before the fix runs (None: not counted, or nothing to verify).

    Counted over the connection string pgconn already knows (the reserved connection's), so
    without a Heroku call unless a webhook just made pgconn forget it: the fix must not wait for,
    or be rate-limited by, its own verification. At the limit without a reserved connection the
    role is full: FULL."""
    if not verifies(action_id) or not services.verifications.enabled:
        return None
    return await _count_known(services, app)


async def _count_known(services: Services, app: str) -> int | None:
    try:
        # Resolved afresh (two Heroku reads) only when a webhook made pgconn forget it.
        dsn = services.last_database_url(app) or await services.database_url(app)
        if not dsn:
            return None
        return (await services.inspector.holders(dsn)).role_connections
    except DatabaseFull:
        return FULL
    except PgconnError:
        return None


async def schedule_after_fix(
    services: Services,
    *,
    action_id: str,
    app: str,
    process_type: str | None,
    user: str,
    channel: str,
    thread_ts: str | None,
    before: int | None,
    outcome: Outcome,
) -> PendingCheck | None:
    """Keep a check of the fix's effect in Redis; None when there is nothing to check."""
    if not verifies(action_id) or not services.verifications.enabled or not outcome.ok:
        return None
    remedy = BY_ID[action_id].remedy
    now = time.time()
    s = services.settings
    check = PendingCheck(
        id=new_id(), action=remedy, app=app, user=user, channel=channel, thread_ts=thread_ts,
        at=now, before=before, limit=None, process_type=process_type,
    )
    due = now + s.verify_after_s
    try:
        if remedy in ("kill_idle", "killall"):
            check.just_after = await _count_known(services, app)
        elif remedy == "add_pgbouncer":
            if not any(d.startswith("buildpacks are now") for d in outcome.done):
                return None  # Heroku's server-side pooling, or already installed: no deploy to follow
            # The release the fix's own config vars made (Heroku describes it "Set PGBOUNCER_…
            # config vars"): the deploy to follow comes after it, even when it came quickly.
            recent = await services.heroku.releases(app, newest=10)
            own = next((r for r in recent if "PGBOUNCER_" in r.description), recent[0] if recent else None)
            check.phase = "release"
            check.release_after = own.version if own else 0
            check.slug_before = own.slug_id if own else None
            check.dynos_before = sum(p.quantity for p in await services.heroku.formation(app))
            check.give_up_at = now + s.verify_release_wait_s
            due = now + s.verify_poll_s
        await services.verifications.schedule(check, due)
    except (PgconnError, StateUnavailable) as exc:
        log.warning("the effect of %s on %s will not be verified: %s", action_id, app, exc.message)
        return None
    log.info("verification of %s on %s scheduled (%s)", action_id, app, check.phase)
    return check


async def release_arrived(services: Services, app: str) -> None:
    """An `api:release` webhook: checks waiting for the app's next release look now."""
    with contextlib.suppress(StateUnavailable):
        if await services.verifications.nudge(app, time.time()):
            log.info("verification: a release of %s arrived; looking at it", app)


# -- the loop -----------------------------------------------------------------------------------


async def keep_verifying(services: Services) -> None:
    """Take due checks and finish them (lasting task, in every process)."""
    if not services.verifications.enabled:
        return  # without Redis nothing was scheduled (bot.remediation.clicks refuses fixes then)
    while not services.stopping:
        try:
            await verify_due(services)
        except StateUnavailable as exc:
            log.warning("verifications delayed: %s", exc.message)
        except Exception:  # noqa: BLE001 - the loop must outlive any one check
            log.exception("verifying fixes failed")
        await asyncio.sleep(tick_s(services))


async def verify_due(services: Services) -> int:
    checks = await services.verifications.take_due(time.time())
    for check in checks:
        try:
            await _check(services, check)
        except PgconnError as exc:
            await _retry(services, check, exc.message)
    return len(checks)


async def _retry(services: Services, check: PendingCheck, reason: str) -> None:
    check.attempts += 1
    if check.attempts >= MAX_ATTEMPTS:
        line = f"not verified: pgconn could not check ({reason})"
        await _say(services, check, Verdict("not_verified", line), after=None, limit=check.limit)
        return
    log.info("verification of %s on %s: %s; trying again", check.action, check.app, reason)
    await services.verifications.schedule(check, time.time() + services.settings.verify_poll_s)


async def _check(services: Services, check: PendingCheck) -> None:
    if check.phase == "release":
        await _follow_release(services, check)
        return
    s = services.settings
    after = await count_now(services, check.app)
    limit = await _limit(services, check.app)
    if check.before == FULL:
        check.before = limit
    now = time.time()
    warn = s.alert_warn_share

    async def judge(cause: Cause | None) -> Verdict:
        if check.action in ("kill_idle", "killall"):
            return verdicts.judge_kill(
                action=check.action,  # type: ignore[arg-type]
                label=_label(check),
                before=check.before,
                just_after=check.just_after,
                after=after,
                limit=limit,
                elapsed_s=now - check.at,
                warn_share=warn,
                cause=cause,
            )
        if check.action == "restart":
            listed = await services.heroku.dynos(check.app)
            dynos = [d for d in listed if check.process_type in (None, d.type)]
            return verdicts.judge_restart(
                dynos=dynos,
                before=check.before,
                after=after,
                limit=limit,
                elapsed_s=now - check.at,
                warn_share=warn,
                process_type=check.process_type,
                cause=cause,
            )
        formation, config = await asyncio.gather(
            services.heroku.formation(check.app), services.heroku.config_vars(check.app)
        )
        dynos_after = sum(p.quantity for p in formation)
        return verdicts.judge_pgbouncer(
            release=ReleaseFacts(check.release_version or 0, tuple(check.buildpacks)),
            before=check.before,
            after=after,
            dynos_before=check.dynos_before,
            dynos_after=dynos_after,
            limit=limit,
            elapsed_s=now - (check.release_at or check.at),
            warn_share=warn,
            pool_per_dyno=_pool_per_dyno(config),
        )

    verdict = await judge(None)
    if verdict.kind in ("not_fixed", "climbing") and check.action != "add_pgbouncer":
        # Worth a diagnosis: the line names the likely cause, and its button leads.
        verdict = await judge(await _cause(services, check.app))
    await _say(services, check, verdict, after=after, limit=limit)


async def _follow_release(services: Services, check: PendingCheck) -> None:
    now = time.time()
    releases = await services.heroku.releases(check.app, newest=10)
    # The newest release after the fix with a slug of its own: a deploy (a config change keeps
    # the slug it had, so Add PgBouncer's own config vars are not taken for the deploy).
    deploy = next(
        (
            r
            for r in releases
            if r.version > (check.release_after or 0) and r.slug_id and r.slug_id != check.slug_before
        ),
        None,
    )
    if deploy is None:
        if check.give_up_at is not None and now >= check.give_up_at:
            await _say(services, check, verdicts.no_deploy(check.app, now - check.at), after=None, limit=None)
            return
        await services.verifications.schedule(check, now + services.settings.verify_poll_s)
        return
    builds = await services.heroku.builds(check.app)
    build = next((b for b in builds if b.slug_id == deploy.slug_id), None)
    # A slug promoted from another app (a pipeline) has no build here: the app's buildpacks are
    # then the best witness of what it was built with.
    buildpacks = build.buildpacks if build is not None else tuple(await services.heroku.buildpacks(check.app))
    formation = await services.heroku.formation(check.app)
    unwrapped = tuple(
        p.type
        for p in formation
        if p.quantity > 0
        and p.type != "release"
        and not p.command.strip().startswith(verdicts.PGBOUNCER_START)
    )
    facts = ReleaseFacts(deploy.version, buildpacks, unwrapped)
    early = verdicts.judge_release(facts)
    if early is not None:
        check.release_version = deploy.version
        await _say(services, check, early, after=None, limit=None)
        return
    check.phase = "settle"
    check.release_version = deploy.version
    check.release_at = _timestamp(deploy.created_at) or now
    check.buildpacks = list(buildpacks)
    log.info("verification of %s: release v%d carries PgBouncer; counting later", check.app, deploy.version)
    due = max(now, check.release_at) + services.settings.verify_after_s
    await services.verifications.schedule(check, due)


def _pool_per_dyno(config: dict[str, str]) -> int | None:
    """The server connections each dyno's PgBouncer may open (the buildpack's defaults: 1 + 1)."""
    try:
        return int(config.get("PGBOUNCER_DEFAULT_POOL_SIZE", "1")) + int(
            config.get("PGBOUNCER_RESERVE_POOL_SIZE", "1")
        )
    except ValueError:
        return None


def _timestamp(iso: str) -> float | None:
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _label(check: PendingCheck) -> str:
    from bot.remediation.buttons import BY_REMEDY

    button = BY_REMEDY.get(check.action)  # type: ignore[call-overload]
    if button is None:
        return check.action
    if check.process_type and button.label_for_type:
        return str(button.label_for_type.format(type=check.process_type))
    return str(button.label)


async def _say(
    services: Services, check: PendingCheck, verdict: Verdict, *, after: int | None, limit: int | None
) -> None:
    """One line in the fix's thread, once across processes, and the result kept with it."""
    store = services.verifications
    if not await store.claim_saying(check):
        log.info("verification %s was already said by another process", check.id)
        await store.drop(check)
        return
    label = _label(check)
    blocks = verdict_blocks(
        verdict, app=check.app, who=check.user, label=label, connections=after,
        idle_after_s=services.settings.kill_idle_after_s,
    )
    try:
        await services.slack.chat_postMessage(
            channel=check.channel, thread_ts=check.thread_ts, text=verdict_text(verdict, check.user, label),
            blocks=blocks,
        )
    except SlackApiError as exc:
        # A channel the bot is not in (the click was answered through its response URL): the
        # result is still kept for the incident's timeline.
        log.warning("could not post the verification of %s on %s: %s", check.action, check.app,
                    exc.response.get("error"))
    log.info("verification of %s on %s: %s", check.action, check.app, verdict.line)
    await store.finish(
        check,
        VerificationResult(
            id=check.id, action=check.action, app=check.app, user=check.user, channel=check.channel,
            thread_ts=check.thread_ts, acted_at=check.at, checked_at=time.time(), before=check.before,
            after=after, limit=limit, verdict=verdict.kind, line=verdict.line,
        ),
    )
