"""The four fixes, through real APIs. Each returns an Outcome saying what was and was not done.

No function here checks who clicked or whether it already ran: that protocol lives in
clicks.py, so every action gets the same safety and these stay about the fix itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from bot.budget import Budget
from bot.errors import DatabaseError, DatabaseFull, HerokuError, NoDatabase, PgconnError
from bot.heroku import HerokuClient
from bot.postgres import PostgresInspector
from bot.readings import AppContext, Dyno, ProcessType
from bot.render.text import code, inert
from bot.report import budget_for, load_app_context

log = logging.getLogger(__name__)

PGBOUNCER_BUILDPACK = "heroku/pgbouncer"
PGBOUNCER_START = "bin/start-pgbouncer"
# Essential-tier (and legacy hobby/mini/basic) databases refuse Heroku's server-side pooling.
_NO_SERVER_POOLING = ("essential", "mini", "basic", "hobby", "dev")

# What each driver needs behind the buildpack's PgBouncer now that Add PgBouncer sets
# PGBOUNCER_MAX_PREPARED_STATEMENTS (PgBouncer ≥ 1.21 tracks protocol-level prepared statements
# in transaction pooling when max_prepared_statements > 0; SQL-level PREPARE/EXECUTE still
# breaks: pgbouncer.org/config.html#max_prepared_statements, pgbouncer NEWS 1.21.0).
PREPARED_STATEMENTS_ADVICE = {
    # rails/rails#55683: ActiveRecord's PostgreSQL adapter frees statements with SQL DEALLOCATE,
    # which PgBouncer cannot track, except on releases that close them at protocol level
    # (PostgreSQL and libpq 17). Until then the safe setting stays false.
    "rails": "Rails: keep `prepared_statements: false` for production in `config/database.yml` "
    "unless your Rails closes statements at protocol level (rails/rails#55683, with libpq 17): "
    "ActiveRecord frees them with SQL `DEALLOCATE`, which PgBouncer cannot track.",
    # psycopg docs, "Prepared statements" / "Using PgBouncer": psycopg 3.2+ deallocates at
    # protocol level only with libpq 17; with an older libpq it sends SQL DEALLOCATE.
    "django": "Django on psycopg 3.2+ with libpq 17 (the `psycopg[binary]` wheels ship it) keeps "
    "prepared statements: PgBouncer tracks them now. With an older libpq set "
    "`OPTIONS: {'prepare_threshold': None}`; keep `CONN_MAX_AGE = 0` and "
    "`DISABLE_SERVER_SIDE_CURSORS = True` (cursors cannot span transactions). psycopg2 never prepares.",
    "sqlalchemy": "SQLAlchemy on psycopg 3.2+ with libpq 17 keeps prepared statements (PgBouncer tracks "
    "them now); with an older libpq pass `prepare_threshold=None` in `connect_args`. Use `NullPool` "
    "or a small pool, since PgBouncer pools for you.",
    "psycopg": "psycopg 3.2+ with libpq 17 keeps preparing (PgBouncer tracks protocol-level prepared "
    "statements now); with an older libpq connect with `prepare_threshold=None`.",
    # node-postgres named queries and Prisma use protocol-level statements; Prisma's docs
    # recommend not setting `pgbouncer=true` on PgBouncer 1.21 or later.
    "node": "node-postgres named queries and Prisma keep working (protocol-level prepared statements, "
    "which PgBouncer tracks now); do not add `?pgbouncer=true` for Prisma. Never use SQL `PREPARE`.",
}


class Progress(Protocol):
    """Told before a change is sent and after it is done, so that an action a dyno restart
    stops half-way can be told truthfully by the next process (bot.state.inflight)."""

    async def sending(self, what: str) -> None: ...

    async def done(self, what: str) -> None: ...


class _Quiet:
    async def sending(self, what: str) -> None:
        return None

    async def done(self, what: str) -> None:
        return None


QUIET = _Quiet()


@dataclass(frozen=True)
class Outcome:
    ok: bool
    summary: str  # one line for the thread: "terminated 18 of 20 connections"
    details: tuple[str, ...] = ()
    # Did anything change? A failure that changed nothing lets the same button be retried.
    changed: bool = True
    done: tuple[str, ...] = field(default_factory=tuple)
    not_done: tuple[str, ...] = field(default_factory=tuple)


async def kill_idle(
    heroku: HerokuClient,
    inspector: PostgresInspector,
    app: str,
    idle_after_s: int,
    progress: Progress = QUIET,
) -> Outcome:
    context = await load_app_context(heroku, app)
    dsn = _dsn(context)
    await progress.sending("terminating idle connections")
    try:
        result = await inspector.terminate(dsn, idle_older_than_s=idle_after_s)
    except DatabaseFull:
        return Outcome(
            ok=False,
            changed=False,
            summary="could not connect: every slot of the role is taken. Use *Kill all*, which goes "
            "through Heroku's connection reset when pgconn cannot connect",
        )
    return Outcome(
        ok=True,
        changed=result.terminated > 0,
        summary=f"terminated {result.terminated} idle of {result.candidates} connections "
        f"(idle or idle in transaction for over {idle_after_s}s)",
    )


async def kill_all(
    heroku: HerokuClient, inspector: PostgresInspector, app: str, progress: Progress = QUIET
) -> Outcome:
    context = await load_app_context(heroku, app)
    dsn = _dsn(context)
    await progress.sending("terminating the role's connections")
    try:
        result = await inspector.terminate(dsn)
        return Outcome(
            ok=True,
            changed=result.terminated > 0,
            summary=f"terminated {result.terminated} of {result.candidates} connections",
        )
    except DatabaseFull:
        log.info("kill all on %s: role full, using Heroku's connection reset", app)
    except DatabaseError as exc:
        log.info("kill all on %s: database error (%s), using Heroku's connection reset", app, exc.message)
    used = None
    with contextlib.suppress(HerokuError):  # the count is a nicety; the reset is what matters
        used = (await heroku.pg_info(context.database)).connections_used
    await progress.sending("Heroku's connection reset")
    await heroku.connection_reset(context.database)
    held = f"{used} " if used is not None else ""
    return Outcome(
        ok=True,
        summary=f"reset all {held}connections through Heroku (pgconn could not connect itself: "
        "the role was full)",
    )


async def restart(
    heroku: HerokuClient, app: str, process_type: str | None, progress: Progress = QUIET
) -> Outcome:
    formation = await heroku.formation(app)
    if process_type and process_type not in {p.type for p in formation}:
        return Outcome(ok=False, changed=False, summary=f"{app} has no {code(process_type, 40)} process type")
    dynos = sum(p.quantity for p in formation if process_type in (None, p.type))
    what = f"{dynos} {process_type + ' ' if process_type else ''}dyno{'s' if dynos != 1 else ''}"
    await progress.sending(f"the restart of {what}")
    await heroku.restart(app, process_type)
    await progress.done(f"restarted {what}")
    return Outcome(ok=True, summary=f"restarted {what}")


async def wait_for_dynos(
    heroku: HerokuClient,
    app: str,
    process_type: str | None,
    on_progress: Callable[[list[Dyno]], Awaitable[None]],
    *,
    timeout_s: float,
    interval_s: float = 2.0,
) -> tuple[bool, list[Dyno]]:
    """Poll the dyno list until every (matching) dyno is up, or the timeout passes."""
    deadline = time.monotonic() + timeout_s
    last: list[Dyno] = []
    while True:
        try:
            dynos = [d for d in await heroku.dynos(app) if process_type in (None, d.type)]
        except HerokuError as exc:
            log.warning("polling %s's dynos failed: %s", app, exc.message)
            dynos = last
        if dynos != last:
            await on_progress(dynos)
            last = dynos
        if dynos and all(d.state == "up" for d in dynos):
            return True, dynos
        if time.monotonic() >= deadline:
            return False, dynos
        await asyncio.sleep(interval_s)


def dyno_progress(dynos: list[Dyno]) -> str:
    up = sum(1 for d in dynos if d.state == "up")
    others = sorted({d.state for d in dynos if d.state != "up"})
    return f"{up}/{len(dynos)} dynos up" + (f" ({', '.join(others)})" if others else "")


def supports_server_pooling(plan: str) -> bool:
    name = plan.split(":", 1)[-1].lower()
    return not any(name.startswith(p) for p in _NO_SERVER_POOLING)


def procfile_lines(formation: tuple[ProcessType, ...]) -> list[str]:
    lines = []
    for p in formation:
        if p.type == "release" or p.command.startswith(PGBOUNCER_START):
            lines.append(f"{p.type}: {p.command}")
        else:
            lines.append(f"{p.type}: {PGBOUNCER_START} {p.command}")
    return lines


async def add_pgbouncer(heroku: HerokuClient, app: str, headroom: int, progress: Progress = QUIET) -> Outcome:
    context = await load_app_context(heroku, app)
    budget = await _budget(heroku, context, headroom)
    if supports_server_pooling(context.database.plan):
        return await _server_pooling(heroku, context)
    current = await heroku.buildpacks(app)
    if any("pgbouncer" in b for b in current):
        return Outcome(
            ok=True,
            changed=False,
            summary=f"PgBouncer is already installed on {app} ({inert(', '.join(current))}); changed nothing",
        )
    wanted = [PGBOUNCER_BUILDPACK, *current]
    done: list[str] = []
    not_done: list[str] = []
    await progress.sending(f"buildpacks {inert(', '.join(wanted))}")
    try:
        after = await heroku.set_buildpacks(app, wanted)
    except HerokuError as exc:
        return Outcome(ok=False, changed=False, summary=f"nothing changed: {inert(exc.message)}")
    done.append(f"buildpacks are now {inert(', '.join(after))}")
    await progress.done(done[-1])
    pool = budget.pgbouncer_pool_size if budget else None
    changes: dict[str, str | None] = dict(budget.pgbouncer_config_vars) if budget and pool else {}
    try:
        if changes:
            await progress.sending("config vars " + ", ".join(f"{k}={v}" for k, v in changes.items()))
            await heroku.update_config_vars(app, changes)
            done.append(", ".join(f"{k}={v}" for k, v in changes.items()))
            await progress.done(done[-1])
    except HerokuError as exc:
        not_done.append(
            f"config vars not set ({inert(exc.message)}): "
            f"set {', '.join(f'{k}={v}' for k, v in changes.items())}"
        )
    details = [
        "Change the Procfile so each process starts behind PgBouncer, then deploy:",
        # Commands come from the app's formation: inert, and unable to close the code block.
        "```\n" + inert("\n".join(procfile_lines(context.formation))).replace("```", "`\u200b``") + "\n```",
    ]
    frameworks = sorted(budget.frameworks) if budget else []
    advice = [PREPARED_STATEMENTS_ADVICE[f] for f in frameworks if f in PREPARED_STATEMENTS_ADVICE]
    details.extend(
        advice
        or [
            "PgBouncer keeps protocol-level prepared statements (`PGBOUNCER_MAX_PREPARED_STATEMENTS`); "
            "SQL-level `PREPARE` still breaks in transaction pooling."
        ]
    )
    if budget and pool:
        dynos = sum(p.quantity for p in context.formation)
        details.append(
            f"Pool: {pool} (+{budget.pgbouncer_reserve_pool_size} reserve) server connections per dyno "
            f"× {dynos} dynos + {budget.headroom} headroom = at most {budget.pgbouncer_total} of "
            f"{budget.limit}."
        )
    elif budget:
        details.extend(budget.notes)
    return Outcome(
        ok=not not_done,
        summary="added the PgBouncer buildpack"
        + (f" with a pool of {pool} per dyno" if pool else "")
        + ("" if not not_done else " — partly: see below"),
        details=tuple(details),
        done=tuple(done),
        not_done=tuple(not_done),
    )


async def _server_pooling(heroku: HerokuClient, context: AppContext) -> Outcome:
    attachment = await heroku.enable_connection_pooling(context.database, context.app)
    name = str(attachment.get("name") or "DATABASE_CONNECTION_POOL")
    return Outcome(
        ok=True,
        summary=f"enabled Heroku's connection pooling on {inert(context.database.addon_name)} "
        "(this plan supports it, so no buildpack is needed)",
        details=(
            f"Switch the app from {code(context.database.config_var)} to {code(name + '_URL')}, "
            "then restart.",
        ),
    )


async def _budget(heroku: HerokuClient, context: AppContext, headroom: int) -> Budget | None:
    # The same limit as the report beside the button: pg:info's, the plan table only without it.
    try:
        return await budget_for(heroku, context, headroom=headroom)
    except PgconnError:
        return None


def _dsn(context: AppContext) -> str:
    dsn = context.database_url
    if not dsn:
        raise NoDatabase(f"{context.database.config_var} is not set on {context.app}")
    return dsn
