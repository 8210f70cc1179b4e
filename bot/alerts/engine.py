"""The alert engine: the thin I/O around the decisions (bot/alerts/decisions.py).

The drain route calls `submit()` (cheap, synchronous) and answers at once; a few worker
tasks coalesce everything that arrived for an app since they last looked, write the metric
samples in one pipeline, then load → decide → compare-and-set → act. A periodic `check()`
moves incidents on when no signal arrives: flushes a stale parent, retries a failed post,
probes the role's connections (Essential plans send no metrics) and resolves. Posting to
a channel is paced by bot.slack_delivery.ChannelPacer.

Over 500 lines on purpose: it is one class whose sections (intake and workers, an app's
databases and limits, decide → compare-and-set → act, the Slack effects, the periodic check,
other tools' alerts) all read the same per-process state — the pending batches, the worker
queue, the app cache, the stores. Split, each part would take the whole engine as an argument.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.alerts.batch import PRIMARY_ATTACHMENT, KnownApp, Pending
from bot.alerts.decisions import (
    AlertPolicy,
    Decision,
    Observation,
    Reply,
    after_post,
    decide,
    post_failed,
    reply_failed,
    update_failed,
)
from bot.alerts.escalation import Escalator
from bot.alerts.ownership import Refusal, escalated, escalation_due, resolve
from bot.config import Settings
from bot.detect import Severity, Signal
from bot.errors import DatabaseError, DatabaseFull, PgconnError, StateUnavailable
from bot.heroku import HerokuClient
from bot.limits import fetch_limit
from bot.postgres import PostgresInspector
from bot.postmortem.chart import ROLE_FULL, HolderSample
from bot.postmortem.summary import BudgetFigure, Start
from bot.readings import Holders
from bot.render.alert import alert_blocks, alert_text, resolved_reply, severity_reply
from bot.render.report import report_blocks, report_fallback_text
from bot.render.text import escape
from bot.report import Report, build_report, reading_of
from bot.slack_delivery import ChannelPacer
from bot.state.home import ReadingStore
from bot.state.incidents import Incident, IncidentStore
from bot.state.metrics import MetricStore, Sample
from bot.state.postmortems import PostmortemStore

log = logging.getLogger(__name__)


LOST_RACE_BACKOFF_S = 0.005  # times the attempt number: at most ~0.1 s on the 20th
# How often every process looks for incidents to escalate and PagerDuty events to send (Redis only).
ESCALATION_TICK_S = 1.0


class AlertEngine:
    """Signals in, alert threads out. One per process; all processes share Redis."""

    RESOLVE_CACHE_S = 300.0  # app → databases / plan limits / config vars
    RETRY_DELAY_S = 1.0  # after Redis or something unexpected failed a batch

    def __init__(
        self,
        settings: Settings,
        *,
        heroku: HerokuClient,
        inspector: PostgresInspector,
        slack: AsyncWebClient,
        incidents: IncidentStore | None,
        metrics: MetricStore | None,
        postmortems: PostmortemStore | None = None,
        readings: ReadingStore | None = None,
        thresholds: AlertPolicy | None = None,
        escalator: Escalator | None = None,
        tick_s: float | None = None,
        workers: int = 4,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.heroku = heroku
        self.inspector = inspector
        self.slack = slack
        self.incidents = incidents
        self.metrics = metrics
        self.postmortems = postmortems
        # Each alert's report is kept for the Home tab too (bot.state.home), as a person's is.
        self.readings = readings
        # The one "incident ended" path (bot.postmortem.writer hangs the post-mortem on it): called
        # once the thread has been told the incident is resolved, by itself or by hand.
        self.on_ended: Callable[[Incident], Awaitable[None]] | None = None
        self.t = thresholds or AlertPolicy.from_settings(settings)
        self.escalator = escalator
        # Often enough that resolution lands within a fifth of resolve_after of its due time.
        if tick_s is None:
            tick_s = settings.alert_tick_s or min(15.0, max(0.2, self.t.resolve_after_s / 5))
        self.tick_s = tick_s
        self.clock = clock
        self.token = secrets.token_hex(8)  # this process, as a poster
        self._n_workers = workers
        self._pending: dict[str, Pending] = {}
        self._queued: set[str] = set()
        self._running: set[str] = set()
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._settled = asyncio.Event()  # set when nothing is pending, queued or running
        self._settled.set()
        self._tasks: list[asyncio.Task[Any]] = []
        self._known: dict[str, KnownApp] = {}
        self._pacer = ChannelPacer()

    def channel_for(self, app: str) -> str | None:
        """Where the app's alert threads open: its own channel, else PGCONN_ALERT_CHANNEL (bot.apps)."""
        return self.settings.directory.for_app(app).channel

    @property
    def enabled(self) -> bool:
        """Whether any app can have alerts (Redis, and a channel for at least one app)."""
        return self._stored and any(self.channel_for(app) for app in self.settings.apps)

    def enabled_for(self, app: str) -> bool:
        return self._stored and self.channel_for(app) is not None

    @property
    def _stored(self) -> bool:
        return self.incidents is not None and self.metrics is not None

    def why_disabled(self, app: str | None = None) -> str:
        if not self._stored:
            return "Redis is not configured (REDIS_URL)"
        if app is not None:
            return (
                f"no alert channel for {app} (PGCONN_APP_ROUTES names none for it and "
                "PGCONN_ALERT_CHANNEL is not set)"
            )
        return "PGCONN_ALERT_CHANNEL is not set and PGCONN_APP_ROUTES names no channel"

    # -- inbound ---------------------------------------------------------------

    async def accept_frame(self, app: str, frame_id: str | None, signals: Sequence[Signal]) -> bool:
        """Submit a drain frame's signals unless logplex already delivered that frame.

        False for a re-sent frame (same Logplex-Frame-Id, taken by this or another process).
        Only frames that carry a signal are claimed, so ordinary log traffic costs Redis
        nothing. Without Redis the signals are taken anyway (kept until it answers): a retried
        frame may then count twice, which beats losing the first.
        """
        if not signals:
            return True
        if frame_id and self.incidents is not None:
            try:
                if not await self.incidents.claim_frame(app, frame_id):
                    log.info("drain %s: frame %s delivered again; already counted", app, frame_id[:64])
                    return False
            except StateUnavailable:
                log.warning("drain %s: could not check frame %s (Redis unavailable)", app, frame_id[:64])
        self.submit(app, signals)
        return True

    def submit(self, app: str, signals: Sequence[Signal]) -> None:
        """Hand over a request's signals. Never blocks: merged into the app's pending batch."""
        if not signals:
            return
        pending = self._pending.get(app)
        if pending is None:
            pending = self._pending[app] = Pending()
        pending.add(signals, self.clock())
        self._wake(app)

    def _wake(self, app: str) -> None:
        # One queue entry per app at most, and never for an app a worker is on (it
        # re-queues itself when done): the queue is bounded by the number of apps.
        if app in self._queued or app in self._running:
            return
        self._queued.add(app)
        self._settled.clear()
        self._queue.put_nowait(app)

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        if self._tasks:
            return
        if not self.enabled:
            log.warning("automatic alerts are off: %s", self.why_disabled())
            return
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._worker(), name=f"alerts-worker-{i}") for i in range(self._n_workers)
        ]
        self._tasks.append(loop.create_task(self._ticker(), name="alerts-tick"))
        if self.escalator is not None and any(self.escalator.escalate_after(a) for a in self.settings.apps):
            self._tasks.append(loop.create_task(self._escalations(), name="alerts-escalation"))

    async def stop(self, grace_s: float = 5.0) -> None:
        """Finish what was accepted (briefly), then stop."""
        if self._tasks:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.idle(), grace_s)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        if self._pending:
            log.warning("alerts stopped with unprocessed signals for %s", ", ".join(sorted(self._pending)))

    @property
    def settled(self) -> bool:
        """Nothing submitted is pending, queued or being processed."""
        return self._settled.is_set()

    async def idle(self) -> None:
        """Wait until every submitted signal has been processed (for tests and shutdown)."""
        await self._settled.wait()

    async def _worker(self) -> None:
        while True:
            app = await self._queue.get()
            self._queued.discard(app)
            pending = self._pending.pop(app, None)
            if pending is None:
                if not (self._pending or self._running or self._queued):
                    self._settled.set()
                continue
            self._running.add(app)
            try:
                await self.process(app, pending)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep the signals and try again
                self._failed(app, pending, exc)
                await asyncio.sleep(self.RETRY_DELAY_S)
            finally:
                self._running.discard(app)
            if app in self._pending:
                self._wake(app)
            if not (self._pending or self._running or self._queued):
                self._settled.set()

    def _failed(self, app: str, pending: Pending, exc: Exception) -> None:
        # Redis down or refusing connections (Key-Value Store mini's 20 clients taken) is not
        # something wrong with these signals: they are kept, however long it lasts, and processed
        # when Redis answers again. The batch stays bounded (counts per database, at most
        # MAX_SAMPLES samples per add-on). Anything else counts towards MAX_ATTEMPTS.
        if not isinstance(exc, StateUnavailable):
            pending.attempts += 1
        if pending.attempts >= pending.MAX_ATTEMPTS:
            # Something that fails five times in a row will not heal by itself; say so loudly.
            log.error(
                "alerts for %s: dropped %d signals after %d failures (%s)",
                app,
                pending.size,
                pending.attempts,
                type(exc).__name__,
                exc_info=exc,
            )
            return
        if isinstance(exc, StateUnavailable):
            log.warning("alerts for %s delayed: %s", app, exc.message)
        else:
            log.warning("alerts for %s failed (%s); retrying", app, type(exc).__name__, exc_info=exc)
        newer = self._pending.get(app)
        if newer is not None:
            pending.merge_newer(newer)
        self._pending[app] = pending

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except StateUnavailable as exc:
                log.warning("periodic alert check skipped: %s", exc.message)
            except Exception:  # noqa: BLE001 - the loop must survive anything
                log.exception("periodic alert check failed")

    # -- resolving app → databases (cached) ------------------------------------

    def forget(self, app: str) -> None:
        """The app's formation or config changed: resolve it again on its next signal.

        Marked stale rather than dropped, so that if Heroku cannot answer then, the old
        answer is still there to fall back on."""
        known = self._known.get(app)
        if known is not None:
            known.fetched_at = float("-inf")

    async def _app(self, app: str) -> KnownApp | None:
        known = self._known.get(app)
        if known is not None and self.clock() - known.fetched_at < self.RESOLVE_CACHE_S:
            return known
        try:
            databases, config_vars, formation = await asyncio.gather(
                self.heroku.databases(app), self.heroku.config_vars(app), self.heroku.formation(app)
            )
        except PgconnError as exc:
            log.warning("could not resolve %s's databases for alerts: %s", app, exc.message)
            return known  # a stale answer beats none
        # Limits are read from pg:info on first use (bot.limits): the plan table only without it.
        known = KnownApp(databases, {}, config_vars, self.clock(), formation)
        self._known[app] = known
        return known

    def _database_key(self, known: KnownApp | None, attachment: str | None) -> str | None:
        """The add-on name for app output (primary) or a Postgres log line's attachment; None
        for an attachment the app does not have. Those names come from the log lines (anyone
        who can write to the drain, or make the app log, chooses them): only the app's own
        databases open incidents. Before the app could be resolved, only the primary counts."""
        attachment = attachment or PRIMARY_ATTACHMENT
        if known is None:
            return attachment if attachment == PRIMARY_ATTACHMENT else None
        for db in known.databases:
            if db.attachment_name == attachment:
                return db.addon_name
        if attachment == PRIMARY_ATTACHMENT and known.databases:
            return known.databases[0].addon_name
        return None

    async def _limit(self, app: str, known: KnownApp | None, database: str) -> int | None:
        if known is None:
            return None
        if known.limits.get(database) is not None:
            return known.limits[database]
        for db in known.databases:
            if db.addon_name == database:
                limit = await fetch_limit(self.heroku, db)
                # Kept as long as the resolution (RESOLVE_CACHE_S): one pg:info per app and period.
                known.limits[database] = limit.value if limit is not None else None
                return known.limits[database]
        return None

    # -- processing a batch ----------------------------------------------------

    async def process(self, app: str, pending: Pending) -> None:
        assert self.incidents is not None and self.metrics is not None
        now = self.clock()
        known = await self._app(app)
        observations: dict[str, Observation] = {}
        samples: dict[tuple[str, str], list[Sample]] = {}
        for attachment, count in pending.fatal.items():
            key = self._database_key(known, attachment)
            if key is None:
                log.warning("alerts for %s: ignored %d refusals naming a database it has not", app, count)
                continue
            prev = observations.get(key, Observation())
            observations[key] = replace(
                prev, fatal=prev.fatal + count, excerpt=pending.excerpt, role=pending.role,
                source=pending.source,
            )
        addons = {db.addon_name for db in known.databases} if known is not None else set()
        for name, batch in pending.samples.items():
            # Metrics name the add-on; a line with only `source=` names an attachment.
            # Before the app is resolved (Heroku unreachable) a sample keeps its add-on name: the
            # batch holds at most Pending.MAX_DATABASES of them.
            found = name if known is None or name in addons else self._database_key(known, name)
            if found is None:
                log.warning("alerts for %s: ignored %d samples of a database it has not", app, len(batch))
                continue
            database = found
            samples[(app, database)] = samples.get((app, database), []) + batch
            prev = observations.get(database, Observation())
            observations[database] = replace(prev, readings=prev.readings + tuple(s.active for s in batch))
        await self.metrics.add(samples, now)
        for database, obs in observations.items():
            limit = await self._limit(app, known, database)
            await self._step(app, database, replace(obs, limit=limit), now)

    async def _step(
        self, app: str, database: str, obs: Observation, now: float, *, opens: bool = True
    ) -> None:
        """Load → decide → compare-and-set (retried on a lost race) → act.

        `opens=False` (the periodic check's probe) moves an incident on but never opens one: the
        incident it looked at may be gone or resolved (by hand) by now, and a probe is no signal: only
        drain signals open incidents. (Without a probe the step still finishes a resolved thread.)"""
        assert self.incidents is not None
        channel = self.channel_for(app)
        if channel is None:
            log.warning("incident signal for %s dropped: %s", app, self.why_disabled(app))
            return
        for attempt in range(20):
            if attempt:
                # Lost a compare-and-set to another process: back off a random while, or the
                # same processes collide in lock step until the attempts run out and the
                # batch's signals are lost (4 processes did, in tests/bot/test_incidents.py).
                await asyncio.sleep(random.uniform(0, LOST_RACE_BACKOFF_S * attempt))
            incident = await self.incidents.load(app, database)
            if not opens and (incident is None or incident.status == "resolved") and obs != Observation():
                return
            d = decide(
                incident,
                obs,
                app=app,
                database=database,
                now=now,
                t=self.t,
                token=self.token,
                channel=channel,
            )
            if d.state is None:
                return
            stored = await self.incidents.commit(incident, d.state)
            if stored is not None:
                if incident is None or incident.id != stored.id:
                    log.info("incident opened: %s %s (%s)", app, database, stored.severity.value)
                    if incident is not None and incident.needs_attention:
                        log.warning("incident %s replaced before its thread was finished", incident.id)
                await self._act(stored, d, before=incident)
                return
        log.warning("incident %s %s: too much contention, gave up on one batch", app, database)

    async def _patch(
        self, app: str, database: str, fn: Callable[[Incident], Decision]
    ) -> tuple[Incident, Decision] | None:
        assert self.incidents is not None
        for _ in range(20):
            incident = await self.incidents.load(app, database)
            if incident is None:
                return None
            d = fn(incident)
            if d.state is None:
                return None
            stored = await self.incidents.commit(incident, d.state)
            if stored is not None:
                return stored, d
        return None

    async def _act(self, incident: Incident, d: Decision, *, before: Incident | None) -> None:
        if d.post:
            await self._post_parent(incident)
            return
        told = False
        if d.reply is not None:
            told = await self._reply(incident, d.reply, told_before=before.told if before else Severity.OK)
        if d.update:
            await self._update_parent(incident)
        if told and d.reply == "resolved":
            await self._ended(incident)

    async def _ended(self, incident: Incident) -> None:
        """The incident ended (its thread was just told): resolved by itself or by hand. PagerDuty
        resolves too when it was told of the incident (bot.alerts.escalation)."""
        log.info("incident ended: %s %s%s", incident.app, incident.database,
                 f" (resolved by {incident.resolved_by})" if incident.resolved_by else "")
        if self.escalator is not None:
            try:
                if await self.escalator.queue(incident, "resolve", by=incident.resolved_by):
                    await self.escalator.deliver()  # now rather than at the next tick
            except StateUnavailable as exc:
                log.warning("pagerduty resolve of %s not queued: %s", incident.id, exc.message)
        if self.on_ended is not None:
            try:
                await self.on_ended(incident)
            except Exception:  # noqa: BLE001 - the alert machinery must not fail with the post-mortem
                log.exception("post-mortem of %s failed to start", incident.id)

    async def resolve_by_hand(
        self, app: str, database: str, user: str, incident_id: str
    ) -> Incident | Refusal:
        """End the open incident `incident_id` of app+database now, as `user` (Slack id): the same path
        as an incident that resolves by itself (the parent redrawn, the thread told, `_ended`: the
        post-mortem, PagerDuty). Of two Resolves at once one wins; the other gets the Refusal."""
        now = self.clock()

        def step(cur: Incident) -> Incident | Refusal:
            done = resolve(cur, user, now)
            if isinstance(done, Refusal):
                return done
            n = replace(done, ok_since=cur.ok_since or now)
            if not n.posted:
                return n  # after_post tells the thread once the parent is posted
            return replace(n, told_resolved=True, last_update_at=now, last_reply_at=now, dirty=False)

        stored = await self.change(app, database, incident_id, step)
        if isinstance(stored, Incident) and stored.posted:
            await self._act(stored, Decision(stored, update=True, reply="resolved"), before=None)
        return stored

    # -- Slack effects -----------------------------------------------------------

    async def _render(
        self, incident: Incident, report: list[dict[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        assert self.incidents is not None and self.metrics is not None
        now = self.clock()
        samples = await self.metrics.recent(incident.app, incident.database, now)
        if report is None:
            report = await self.incidents.report(incident.id)
        return alert_blocks(
            incident,
            samples=[s.active for s in samples],
            report=report,
            now=now,
            resolve_after_s=self.t.resolve_after_s,
        )

    async def _keep_reading(self, report: Report) -> None:
        if self.readings is None:
            return
        try:
            await self.readings.save(reading_of(report, self.clock()))
        except StateUnavailable as exc:
            log.warning("the reading of %s was not kept: %s", report.app, exc.message)

    async def _post_parent(self, incident: Incident) -> None:
        assert self.incidents is not None
        used = limit = None
        try:
            known = self._known.get(incident.app)
            fresh = known is not None and self.clock() - known.fetched_at < self.RESOLVE_CACHE_S
            report = await build_report(
                self.heroku,
                self.inspector,
                incident.app,
                headroom=self.settings.budget_headroom,
                # A stale context (forgotten after a webhook) is no shortcut: the report reads anew.
                context=known.context(incident.app) if known and fresh else None,
                thresholds=self.settings.diagnosis_thresholds,
            )
            blocks = report_blocks(report, idle_after_s=self.settings.kill_idle_after_s)
            used, limit = report.connections_used, report.connections_limit
            log.debug("report for %s: %s", incident.app, report_fallback_text(report))
            await self._keep_reading(report)
            await self._note_start(incident, report)
        except PgconnError as exc:
            # The alert matters more than the report: post it with the reason instead.
            reason = f":x: The report could not be built: {escape(exc.message)}"
            blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": reason}}]
        await self.incidents.save_report(incident.id, blocks)
        if used is not None and incident.last_metric_at is None and self.metrics is not None:
            # The report's count is a sample too (the only one so far on Essential plans).
            now = self.clock()
            await self.metrics.add({(incident.app, incident.database): [Sample(now, used)]}, now)
        drawn = replace(
            incident,
            current=used if used is not None and incident.last_metric_at is None else incident.current,
            limit=incident.limit or limit,
        )
        parent = await self._render(drawn, report=blocks)
        try:
            result = await self._pacer.paced(
                incident.channel,
                lambda: self.slack.chat_postMessage(
                    channel=incident.channel, text=alert_text(drawn), blocks=parent
                ),
            )
        except Exception as exc:  # noqa: BLE001 - Slack refusals and network errors alike
            error = _describe(exc)
            log.warning(
                "alert thread for %s %s not posted (%s); will retry", incident.app, incident.database, error
            )
            await self._patch(
                incident.app,
                incident.database,
                lambda cur: post_failed(cur, incident, error=error, now=self.clock(), t=self.t),
            )
            return
        ts = str(result["ts"])
        channel = str(result.get("channel") or incident.channel)
        log.info("alert thread posted for %s %s: %s", incident.app, incident.database, ts)
        done = await self._patch(
            incident.app,
            incident.database,
            lambda cur: after_post(cur, drawn, ts=ts, channel=channel, now=self.clock(), used=used),
        )
        if done is not None:
            stored, d = done
            await self._act(stored, d, before=None)
            return
        # This post took so long that someone else's claim replaced ours and posted too:
        # take ours back so the channel still has exactly one thread.
        current = await self.incidents.load(incident.app, incident.database)
        if current is not None and current.id == incident.id and current.ts and current.ts != ts:
            log.warning("alert %s %s posted twice; deleting %s", incident.app, incident.database, ts)
            with contextlib.suppress(SlackApiError):
                await self.slack.chat_delete(channel=channel, ts=ts)

    async def _note_start(self, incident: Incident, report: Report) -> None:
        """What the post-mortem will need from the first report: the cause, the budget, the holders."""
        if self.postmortems is None:
            return
        cause = report.diagnosis.cause if report.diagnosis is not None else None
        budget = report.budget
        figure = None if budget is None else BudgetFigure(budget.total, budget.limit, budget.verdict)
        try:
            await self.postmortems.note_start(
                incident.id,
                Start(
                    cause=cause.text if cause is not None else "",
                    cause_check=cause.check if cause is not None else "",
                    budget=figure,
                ),
            )
            if isinstance(report.holders, Holders):
                await self.postmortems.add_holders(incident.id, holder_sample(report.holders, self.clock()))
        except StateUnavailable as exc:
            log.warning("post-mortem notes of %s not kept: %s", incident.id, exc.message)

    async def _update_parent(self, incident: Incident) -> None:
        try:
            blocks = await self._render(incident)
            await self.slack.chat_update(
                channel=incident.channel, ts=incident.ts, text=alert_text(incident), blocks=blocks
            )
        except StateUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - Slack refusals and network errors alike
            error = _describe(exc)
            log.warning("alert parent %s not updated (%s); will retry", incident.ts, error)
            await self._patch(incident.app, incident.database, lambda cur: update_failed(cur, error=error))

    async def _reply(self, incident: Incident, kind: Reply, *, told_before: Severity) -> bool:
        if kind == "resolved":
            text = resolved_reply(incident, self.t.resolve_after_s)
        else:
            text = severity_reply(incident)
        try:
            await self._pacer.paced(
                incident.channel,
                lambda: self.slack.chat_postMessage(
                    channel=incident.channel, thread_ts=incident.ts, text=text
                ),
            )
        except Exception as exc:  # noqa: BLE001 - Slack or network: retried by the next check
            error = _describe(exc)
            log.warning("alert reply (%s) in %s not posted (%s); will retry", kind, incident.ts, error)
            await self._patch(
                incident.app,
                incident.database,
                lambda cur: reply_failed(cur, kind, told_before=told_before, error=error),
            )
            return False
        return True

    # -- the periodic check --------------------------------------------------------

    async def check(self) -> None:
        """One pass over every incident that still needs work, in whichever process opened it."""
        if not self.enabled:
            return
        assert self.incidents is not None
        for app, database in await self.incidents.active():
            if app not in self.settings.apps:
                continue
            # One process per incident per tick: the probe costs a database connection.
            if not await self.incidents.lease(app, database, self.token, self.tick_s * 0.8):
                continue
            incident = await self.incidents.load(app, database)
            if incident is None:
                continue
            obs = Observation()
            if incident.status == "open":
                # Every tick of an open incident counts the holders for its post-mortem; the count
                # also decides the incident when heroku-postgres metrics have not come lately.
                due = self._probe_due(incident)
                probed = await self._probe(app, database, incident, witness=due)
                if due:
                    obs = probed
            await self._step(app, database, obs, self.clock(), opens=False)

    async def _escalations(self) -> None:
        """Every ESCALATION_TICK_S, in every process: escalate what is due, send what the PagerDuty
        outbox holds (whoever queued it). Apart from the periodic check, whose pace follows
        PGCONN_RESOLVE_AFTER and costs a probe: escalation is due to the second, and reads Redis only."""
        assert self.escalator is not None and self.incidents is not None
        while True:
            await asyncio.sleep(ESCALATION_TICK_S)
            try:
                for app, database in await self.incidents.active():
                    if app in self.settings.apps:
                        await self._escalate_if_due(app, database)
                await self.escalator.deliver()
            except asyncio.CancelledError:
                raise
            except StateUnavailable as exc:
                log.warning("escalation check skipped: %s", exc.message)
            except Exception:  # noqa: BLE001 - the loop must survive anything
                log.exception("escalation check failed")

    def _probe_due(self, incident: Incident) -> bool:
        # heroku-postgres metrics, when they come, are the better witness; probe only
        # when they have not come lately (Essential plans never send them).
        now = self.clock()
        return incident.last_metric_at is None or now - incident.last_metric_at > self.t.resolve_after_s

    async def _probe(
        self, app: str, database: str, incident: Incident | None = None, *, witness: bool = True
    ) -> Observation:
        """The role's connections right now, counted over the app's own credentials (and kept,
        by holder, for the incident's post-mortem). Not the `witness` (heroku-postgres metrics
        came lately): the count goes to the post-mortem only, so the sparkline keeps one measure."""
        assert self.metrics is not None
        known = await self._app(app)
        if known is None or known.config_vars is None:
            return Observation()
        db = next((d for d in known.databases if d.addon_name == database), None)
        dsn = known.config_vars.get(db.config_var) if db is not None else None
        if not dsn:
            return Observation()
        limit = await self._limit(app, known, database)
        now = self.clock()
        try:
            holders = await self.inspector.holders(dsn)
        except DatabaseFull:
            # Not even one slot for pgconn: the role is at its limit, which is a number too.
            if limit:
                if witness:
                    await self.metrics.add({(app, database): [Sample(now, limit)]}, now)
                await self._keep_holders(incident, HolderSample(now, {ROLE_FULL: limit}))
            return Observation(probe_full=True, limit=limit)
        except DatabaseError as exc:
            log.info("probe of %s %s failed: %s", app, database, exc.message)
            return Observation()
        # The plan's limit is what Heroku enforces and shows; the role's own is the fallback.
        limit = limit or holders.role_limit
        # Probes feed the sparkline too: on Essential plans they are the only numbers.
        if witness:
            await self.metrics.add({(app, database): [Sample(now, holders.role_connections)]}, now)
        await self._keep_holders(incident, holder_sample(holders, now))
        return Observation(probe=holders.role_connections, limit=limit)

    async def _keep_holders(self, incident: Incident | None, sample: HolderSample) -> None:
        if incident is None or self.postmortems is None or incident.status != "open":
            return
        await self.postmortems.add_holders(incident.id, sample)

    # -- people: acknowledge, snooze, resolve; the end of an incident; escalation ----------

    async def change(
        self, app: str, database: str, incident_id: str, step: Callable[[Incident], Incident | Refusal]
    ) -> Incident | Refusal:
        """Apply a person's step (bot.alerts.ownership) to the incident a button names, with the same
        compare-and-set as every signal: of two clicks at once, one changes it and the other is told."""
        assert self.incidents is not None
        for attempt in range(20):
            if attempt:
                await asyncio.sleep(random.uniform(0, LOST_RACE_BACKOFF_S * attempt))
            incident = await self.incidents.load(app, database)
            if incident is None or incident.id != incident_id:
                return Refusal("this incident is over (a newer one may be open in its own thread)")
            outcome = step(incident)
            if isinstance(outcome, Refusal):
                return outcome
            stored = await self.incidents.commit(incident, outcome)
            if stored is not None:
                return stored
        return Refusal("too many changes at once; click again")

    async def redraw(self, incident: Incident) -> None:
        """Redraw the parent now (a failure is retried by the periodic check, as for signals)."""
        await self._update_parent(incident)

    async def _escalate_if_due(self, app: str, database: str) -> None:
        """Nobody acknowledged the incident in time: queue one PagerDuty trigger (one per incident,
        whichever processes get here: the outbox refuses a second), then mark it on the incident."""
        assert self.incidents is not None
        after = self.escalator.escalate_after(app) if self.escalator is not None else None
        if self.escalator is None or after is None:
            return
        now = self.clock()
        incident = await self.incidents.load(app, database)
        if incident is None or not escalation_due(incident, now, after):
            return
        if await self.escalator.queue(incident, "trigger"):
            log.warning("incident %s unacknowledged for %gs: escalating to PagerDuty", incident.id, after)
        done = await self._patch(
            app,
            database,
            lambda cur: Decision(escalated(cur, now), update=True)
            if cur.id == incident.id and escalation_due(cur, now, after)
            else Decision(),
        )
        if done is not None:
            await self._update_parent(done[0])

    # -- messages from other alerting tools ---------------------------------------------

    async def answer_mention(self, app: str, channel: str, message_ts: str, thread_ts: str) -> bool:
        """Reply with the report in the thread of another tool's alert; once per message."""
        assert self.incidents is not None
        # Once per thread, not per message: a second alert (or an echo) in the thread gets no
        # second report, which also ends any loop with a bot that answers in threads.
        if not await self.incidents.claim_mention(channel, thread_ts):
            return False
        try:
            report = await build_report(
                self.heroku,
                self.inspector,
                app,
                headroom=self.settings.budget_headroom,
                thresholds=self.settings.diagnosis_thresholds,
            )
            blocks = [
                {
                    "type": "context",
                    "elements": [
                        {
                            "type": "mrkdwn",
                            "text": f"pgconn saw this alert about `{app}` running out of database "
                            "connections. Here is what the database says right now:",
                        }
                    ],
                },
                *report_blocks(report, idle_after_s=self.settings.kill_idle_after_s),
            ][:50]
            text = report_fallback_text(report)
        except PgconnError as exc:
            blocks = []
            text = f"pgconn could not build a report for `{app}`: {escape(exc.message)}"
        try:
            await self._pacer.paced(
                channel,
                lambda: self.slack.chat_postMessage(
                    channel=channel, thread_ts=thread_ts, text=text, blocks=blocks or None
                ),
            )
        except Exception:
            # Let a redelivery (or the other process) try again rather than stay silent.
            await self.incidents.release_mention(channel, thread_ts)
            raise
        return True


def holder_sample(holders: Holders, at: float) -> HolderSample:
    """Connections per application_name (the dyno, when the app names its connections)."""
    counts: dict[str, int] = {}
    for g in holders.groups:
        name = g.application_name or (f"{g.usename} (no application_name)" if g.usename else "unnamed")
        counts[name] = counts.get(name, 0) + g.total
    return HolderSample(at, counts)


def _describe(exc: BaseException) -> str:
    """Slack's error code, or the exception's class: short, and never a secret."""
    if isinstance(exc, SlackApiError):
        return f"Slack: {exc.response.get('error', 'unknown')}"
    return type(exc).__name__
