"""What a budget computation returns: `Budget`, its per-process-type `BudgetLine`s and the
headroom items. Pure data; the numbers are filled in by compute.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Verdict = Literal["fits", "tight", "over"]

TIGHT_SHARE = 0.8
# The buildpack (v0.18, PgBouncer 1.24.1) maps PGBOUNCER_MAX_PREPARED_STATEMENTS to
# max_prepared_statements and defaults it to 0; see Budget.pgbouncer_config_vars.
PGBOUNCER_MAX_PREPARED_STATEMENTS = 200


@dataclass(frozen=True)
class HeadroomItem:
    """Connections the formation does not show, kept free on purpose."""

    label: str
    connections: int


DEFAULT_HEADROOM: tuple[HeadroomItem, ...] = (
    HeadroomItem("pgconn's reserved connection", 1),
    HeadroomItem("one-off dynos (heroku run, Heroku Scheduler)", 1),
    HeadroomItem("Heroku's own tools (pg:backups, pg:diagnose, dataclips)", 1),
)


@dataclass(frozen=True)
class BudgetLine:
    """One process type: `dynos × processes_per_dyno × connections_per_process (+ extra)`."""

    process_type: str
    command: str
    dynos: int
    processes_per_dyno: int
    connections_per_process: int
    extra_per_dyno: int  # e.g. celery's embedded beat, a second server in `a & b`
    total: int
    server: str  # "gunicorn", "puma", "celery", …, "unknown"
    framework: str  # "rails", "django", "sqlalchemy", "psycopg", "node", "java", "unknown"
    explanation: str  # "6 dynos × 3 gunicorn workers × 1 thread"
    assumptions: tuple[str, ...] = ()
    behind_pgbouncer: bool = False  # the command starts with bin/start-pgbouncer
    client_per_dyno: int = 0  # what the app side asks for on one dyno (before PgBouncer)
    transient: bool = False  # the release phase: one dyno, only while deploying

    @property
    def per_dyno(self) -> int:
        return self.processes_per_dyno * self.connections_per_process + self.extra_per_dyno


@dataclass(frozen=True)
class Budget:
    lines: tuple[BudgetLine, ...]
    headroom: int  # sum of headroom_items
    headroom_items: tuple[HeadroomItem, ...]
    limit: int
    total: int  # sum of line totals + headroom
    verdict: Verdict
    share: float  # total / limit
    tight_share: float
    # Dynos each type could run at its current settings, the other types held constant.
    max_dynos: Mapping[str, int]
    # PgBouncer on every dyno (heroku/pgbouncer buildpack): server connections per dyno
    # = default pool + reserve pool. None when no pool size can fit (or nothing runs).
    pgbouncer_pool_size: int | None
    pgbouncer_reserve_pool_size: int
    pgbouncer_max_client_conn: int
    pgbouncer_total: int | None  # the total with that sizing
    frameworks: frozenset[str]
    notes: tuple[str, ...] = ()

    @property
    def app_total(self) -> int:
        return self.total - self.headroom

    @property
    def over_by(self) -> int:
        return max(0, self.total - self.limit)

    @property
    def spare(self) -> int:
        return max(0, self.limit - self.total)

    @property
    def assumptions(self) -> tuple[tuple[str, str], ...]:
        """(process type, assumption) for every line, in line order."""
        return tuple((ln.process_type, a) for ln in self.lines for a in ln.assumptions)

    @property
    def pgbouncer_config_vars(self) -> dict[str, str]:
        """The PGBOUNCER_* config vars the add-PgBouncer action should set."""
        if self.pgbouncer_pool_size is None:
            return {}
        return {
            "PGBOUNCER_DEFAULT_POOL_SIZE": str(self.pgbouncer_pool_size),
            "PGBOUNCER_RESERVE_POOL_SIZE": str(self.pgbouncer_reserve_pool_size),
            "PGBOUNCER_MAX_CLIENT_CONN": str(self.pgbouncer_max_client_conn),
            # The buildpack (v0.18, PgBouncer 1.24.1) maps this to max_prepared_statements and
            # defaults it to 0 (bin/gen-pgbouncer-conf.sh). Above 0, PgBouncer ≥ 1.21 keeps
            # protocol-level prepared statements working in transaction pooling; 200 is
            # PgBouncer's own default since 1.24 (pgbouncer NEWS, config.html#max_prepared_statements).
            "PGBOUNCER_MAX_PREPARED_STATEMENTS": str(PGBOUNCER_MAX_PREPARED_STATEMENTS),
        }
