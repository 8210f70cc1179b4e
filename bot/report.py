"""Gather everything the report shows, with as few sequential Heroku round trips as possible.

Longest dependent chain: add-on attachments → pg:info (config vars and formation are
fetched alongside the attachments; holders alongside pg:info). Each part that fails is
reported as a sentence instead of sinking the whole report.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from bot.budget import Budget, connection_budget
from bot.diagnosis import DEFAULT_THRESHOLDS, Diagnosis, DiagnosisThresholds, diagnose
from bot.errors import DatabaseError, DatabaseFull, HerokuError, PgconnError, StateUnavailable
from bot.heroku import HerokuClient
from bot.limits import ConnectionLimit, decide_limit, fetch_limit
from bot.postgres import PostgresInspector
from bot.readings import Activity, AppContext, Database, Holders, HoldersUnavailable, PgInfo, ProcessType
from bot.render.budget import verdict_line
from bot.state import STATE_DOWN_NOTE, redis_ok
from bot.state.home import Reading

if TYPE_CHECKING:
    from bot.dependencies import Services

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Report:
    app: str
    database: Database
    pg_info: PgInfo | None
    holders: Holders | HoldersUnavailable
    budget: Budget | None
    formation: tuple[ProcessType, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    diagnosis: Diagnosis | None = None  # the checks and the likely cause the report leads with

    @property
    def connections_used(self) -> int | None:
        # The role's live count (pgconn's own connection included) is what the limit applies
        # to; pg:info's figure is the fallback when pgconn could not connect.
        if isinstance(self.holders, Holders):
            return self.holders.role_connections
        if self.pg_info and self.pg_info.connections_used is not None:
            return self.pg_info.connections_used
        return None

    @property
    def limit(self) -> ConnectionLimit | None:
        role_limit = self.holders.role_limit if isinstance(self.holders, Holders) else None
        return decide_limit(self.pg_info, self.database.plan, role_limit)

    @property
    def connections_limit(self) -> int | None:
        limit = self.limit
        return limit.value if limit is not None else None


async def load_app_context(heroku: HerokuClient, app: str) -> AppContext:
    """App → database, config vars, formation: the one resolution every feature shares."""
    database, config_vars, formation = await asyncio.gather(
        heroku.database(app), heroku.config_vars(app), heroku.formation(app)
    )
    return AppContext(app=app, database=database, config_vars=config_vars, formation=formation)


class AppContextLoader:
    """Concurrent requests for the same app share one in-flight fetch.

    A burst of 200 `/pgconn APP` costs Heroku 3 calls for the app context instead of 600.
    Nothing is kept once the fetch is done, so no answer is ever stale.
    """

    def __init__(self, heroku: HerokuClient) -> None:
        self._heroku = heroku
        self._inflight: dict[str, asyncio.Future[AppContext]] = {}

    async def load(self, app: str) -> AppContext:
        future = self._inflight.get(app)
        if future is None:
            future = asyncio.ensure_future(load_app_context(self._heroku, app))
            self._inflight[app] = future
            future.add_done_callback(lambda _: self._inflight.pop(app, None))
        # shield: one waiter giving up must not cancel the fetch the others wait for.
        return await asyncio.shield(future)


async def build_report(
    heroku: HerokuClient,
    inspector: PostgresInspector,
    app: str,
    *,
    headroom: int = 3,
    context: AppContext | None = None,
    thresholds: DiagnosisThresholds = DEFAULT_THRESHOLDS,
) -> Report:
    """Raises only when the app itself cannot be resolved (unknown app, bad key, no DB).

    `context` skips the first round trip when the caller resolved the app moments ago.
    The diagnosis is read in the same round trip as the holders.
    """
    if context is None:
        context = await load_app_context(heroku, app)
    notes: list[str] = []

    async def info() -> PgInfo | None:
        try:
            return await heroku.pg_info(context.database)
        except HerokuError as exc:
            notes.append(f"pg:info unavailable: {exc.message}")
            return None

    async def holders() -> Activity | HoldersUnavailable:
        dsn = context.database_url
        if not dsn:
            return HoldersUnavailable(
                f"{context.database.config_var} is not set in the app's config vars", role_full=False
            )
        try:
            # Take the reserved slot while there is room; at the limit it is what still works.
            await inspector.ensure_reserved(dsn)
            return await inspector.activity(dsn, older_than_s=thresholds.older_than_s)
        except DatabaseFull as exc:
            return HoldersUnavailable(
                f"pgconn could not open a connection: {exc.message}. Every slot of the app's role "
                "is taken, which is the problem itself",
                role_full=True,
            )
        except DatabaseError as exc:
            return HoldersUnavailable(exc.message, role_full=False)

    pg_info, activity = await asyncio.gather(info(), holders())
    held = activity.holders if isinstance(activity, Activity) else activity
    limit = decide_limit(pg_info, context.database.plan)
    budget = None
    if limit is not None:
        budget = connection_budget(context.formation, context.config_vars, limit.value, headroom=headroom)
    else:
        notes.append("The plan's connection limit is unknown, so the budget cannot be checked")
    report = Report(
        app=app,
        database=context.database,
        pg_info=pg_info,
        holders=held,
        budget=budget,
        formation=context.formation,
        notes=tuple(notes),
    )
    diagnosis = diagnose(
        held,
        activity.backends if isinstance(activity, Activity) else (),
        used=report.connections_used,
        limit=report.connections_limit,
        budget=budget,
        thresholds=thresholds,
    )
    return replace(report, diagnosis=diagnosis)


async def app_budget(heroku: HerokuClient, app: str, *, headroom: int = 3) -> tuple[str, Budget]:
    """The budget alone: formation and config vars against the plan's limit (pg:info first)."""
    context = await load_app_context(heroku, app)
    return app, await budget_for(heroku, context, headroom=headroom)


async def budget_for(heroku: HerokuClient, context: AppContext, *, headroom: int) -> Budget:
    """The app's budget against its limit as `bot.limits` decides it (pg:info first)."""
    limit = await fetch_limit(heroku, context.database)
    if limit is None:
        raise PgconnError(f"the connection limit of plan {context.database.plan} is unknown")
    return connection_budget(context.formation, context.config_vars, limit.value, headroom=headroom)


async def report_for(services: Services, app: str) -> Report:
    """The report a person asked for (`/pgconn APP`, the message shortcut, the Home tab's
    Refresh), with a note when Redis is down (its buttons will refuse to run until it is
    back); its numbers are kept for the Home tab (bot.state.home)."""

    async def report() -> Report:
        context = await services.contexts.load(app)
        return await build_report(
            services.heroku,
            services.inspector,
            app,
            headroom=services.settings.budget_headroom,
            context=context,
            thresholds=services.settings.diagnosis_thresholds,
        )

    built, state_up = await asyncio.gather(report(), redis_ok(services.redis))
    if not state_up:
        return replace(built, notes=(*built.notes, STATE_DOWN_NOTE))
    try:
        await services.home.save(reading_of(built, time.time()))
    except StateUnavailable as exc:
        log.warning("the reading of %s was not kept: %s", app, exc.message)
    return built


def reading_of(report: Report, at: float) -> Reading:
    """What the Home tab keeps of a report."""
    return Reading(
        app=report.app,
        at=at,
        database=report.database.addon_name,
        used=report.connections_used,
        limit=report.connections_limit,
        verdict=report.budget.verdict if report.budget else None,
        budget_line=verdict_line(report.budget) if report.budget else "",
        notes=tuple(n for n in report.notes if n != STATE_DOWN_NOTE)[:3],
    )
