"""`/pgconn APP diagnose`: what the numbers in a report suggest doing, most urgent first. Pure."""

from __future__ import annotations

from bot.models import Holders
from bot.report import Report

LONG_IDLE_IN_TX_S = 60.0
LONG_IDLE_S = 300.0


def advice(report: Report) -> list[str]:
    tips: list[str] = []
    used, limit = report.connections_used, report.connections_limit
    held = report.holders
    full = used is not None and limit is not None and used >= limit
    if full:
        tips.append(
            f"The role is at its limit ({used}/{limit}): new connections fail with `too many connections`. "
            "*Kill idle* frees idle ones safely; *Kill all* frees everything (open transactions roll back)."
        )
    elif not isinstance(held, Holders) and held.role_full:
        tips.append("pgconn could not connect because the role is full: *Kill all* uses Heroku's reset.")
    if isinstance(held, Holders):
        if held.longest_idle_in_tx_s is not None and held.longest_idle_in_tx_s >= LONG_IDLE_IN_TX_S:
            tips.append(
                f"A connection has been *idle in transaction* for {int(held.longest_idle_in_tx_s)}s: a "
                "request or job opened a transaction and never finished it. It holds locks and a slot; "
                "*Kill idle* ends it. Consider `idle_in_transaction_session_timeout`."
            )
        idle = held.state_counts.get("idle", 0)
        # Idle pools only matter when they crowd the limit.
        pressure = limit is not None and held.role_connections >= 0.5 * limit
        if pressure and idle and idle / held.role_connections >= 0.5:
            tips.append(
                f"{idle} of {held.role_connections} connections are idle: app-side pools are holding "
                "connections they do not use. PgBouncer (transaction pooling) lets them share a few."
            )
    budget = report.budget
    if budget is not None:
        if budget.verdict == "over":
            fits = ", ".join(f"{t} ≤ {n}" for t, n in budget.max_dynos.items())
            tips.append(
                f"The formation can open {budget.total} connections against a limit of {budget.limit}: it "
                "*will* hit the limit under load, whatever gets killed now. Add PgBouncer"
                + (f" (pool {budget.pgbouncer_pool_size} per dyno)" if budget.pgbouncer_pool_size else "")
                + (f", or scale down ({fits})" if fits else "")
                + ", or lower workers/threads. See `/pgconn APP budget`."
            )
        elif budget.verdict == "tight":
            tips.append(
                f"The budget is tight ({budget.total} of {budget.limit}): a deploy (old and new dynos "
                "overlap) or a few `heroku run` consoles can push it over."
            )
        if budget.assumptions:
            tips.append(
                "The budget made assumptions (see `/pgconn APP budget`): set the real values as "
                "config vars (e.g. `WEB_CONCURRENCY`) to make it exact."
            )
    if not tips:
        tips.append("Nothing looks wrong: connections are well under the limit and the budget fits.")
    return tips
