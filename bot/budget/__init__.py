"""The connection budget: what the app can open against what the plan allows. Pure.

Formation (process type, dyno count, command, dyno size) + config vars + the plan's
limit in, a `Budget` out: per process type `dynos × processes per dyno × connections
per process`, a headroom line for what the formation does not show, the verdict
(fits / tight / over) and what would fit (dynos per type, or a PgBouncer pool).

Commands are read the way the dyno would run them — `bash -c` with the config vars in
the environment — so `$WEB_CONCURRENCY`, `FOO=1 cmd`, `bundle exec`, `sh -c '…'` and
`bin/start-pgbouncer` are understood. Whatever cannot be read becomes an assumption
written on the line ("unknown command, assumed 1 connection per dyno"); nothing here
raises on odd input.

Where things are:
- plans.py — each Heroku Postgres plan's connection limit;
- dynos.py — dyno sizes and their CPU counts;
- result.py — `Budget`, `BudgetLine`, `HeadroomItem`, the verdict;
- compute.py — the maths: totals, verdict, most dynos per type, PgBouncer sizing;
- shell.py — reading a Procfile command as `bash -c` would, down to a server's argv;
- options.py — reading a server's flags from its option table;
- parts.py — what the readers share (a server's part of a dyno, a word, the environment);
- servers.py — which reader reads which server;
- python.py, ruby.py, node.py, jvm.py — one reader per server family, each with the
  defaults it assumes and where they come from.
"""

from bot.budget.compute import _INTERNAL_FALLBACK, connection_budget
from bot.budget.parts import UNKNOWN_COMMAND
from bot.budget.plans import plan_connection_limit
from bot.budget.result import (
    DEFAULT_HEADROOM,
    PGBOUNCER_MAX_PREPARED_STATEMENTS,
    TIGHT_SHARE,
    Budget,
    BudgetLine,
    HeadroomItem,
    Verdict,
)

__all__ = [
    "DEFAULT_HEADROOM",
    "PGBOUNCER_MAX_PREPARED_STATEMENTS",
    "TIGHT_SHARE",
    "UNKNOWN_COMMAND",
    "_INTERNAL_FALLBACK",
    "Budget",
    "BudgetLine",
    "HeadroomItem",
    "Verdict",
    "connection_budget",
    "plan_connection_limit",
]
