"""The connection limit: one rule for the report, the budget, the alerts and Add PgBouncer.

pg:info's `Connections: used/limit` is Heroku's own word on the limit and wins whenever
Heroku gives it. The plan table (`bot.budget.plan_connection_limit`) is only the fallback
when pg:info cannot be read or has no figure: plans it does not know (Postgres Advanced
compute sizes allow 380 to 5,000) or a plan whose limit changed would otherwise give
thresholds and pool sizes that contradict the report beside them
(../shared/contracts/README.md, "Heroku Postgres").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.budget import plan_connection_limit
from bot.errors import HerokuError
from bot.heroku import HerokuClient
from bot.readings import Database, PgInfo

log = logging.getLogger(__name__)

FROM_PG_INFO = "pg:info"
FROM_PLAN = "the plan table"
FROM_ROLE = "the role's own limit"


@dataclass(frozen=True)
class ConnectionLimit:
    value: int
    source: str  # FROM_PG_INFO, FROM_PLAN or FROM_ROLE: the report says which it used

    def describe(self) -> str:
        if self.source == FROM_PG_INFO:
            return f"limit {self.value} from pg:info"
        return f"limit {self.value} from {self.source} (pg:info gave none)"


def decide_limit(
    pg_info: PgInfo | None, plan: str | None, role_limit: int | None = None
) -> ConnectionLimit | None:
    """pg:info's figure when Heroku gives one; the plan table only when it does not."""
    if pg_info is not None and pg_info.connections_limit:
        return ConnectionLimit(pg_info.connections_limit, FROM_PG_INFO)
    planned = plan_connection_limit(plan)
    if planned is not None:
        return ConnectionLimit(planned, FROM_PLAN)
    if role_limit is not None and role_limit > 0:
        return ConnectionLimit(role_limit, FROM_ROLE)
    return None


async def fetch_limit(heroku: HerokuClient, database: Database) -> ConnectionLimit | None:
    """Read pg:info for the limit; when Heroku cannot answer, fall back to the plan table."""
    info = None
    try:
        info = await heroku.pg_info(database)
    except HerokuError as exc:
        log.info(
            "pg:info for %s failed (%s); using the plan's documented limit", database.addon_name, exc.message
        )
    return decide_limit(info, database.plan)
