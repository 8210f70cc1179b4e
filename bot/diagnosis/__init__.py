"""Why the connections are stuck: checks over pg_stat_activity and pg_locks, and the likely cause. Pure.

`diagnose` turns what the inspector read (holders and the backends worth a closer look),
the role's limit and the connection budget into `Check`s — each green / yellow / red with
the evidence behind it — and picks one `Cause` from them: a sentence with its numbers and
the remediation that fits it, which every report and alert leads with.

The checks are the ones `heroku pg:diagnose` runs from a terminal, plus one it cannot run:
connections per dyno against what the budget expects for its process type (a leak).

Text here is plain (nothing escaped); renderers escape it. Query text is kept short: it
may contain data.

Where things are: result.py holds the types (bands, thresholds, checks, the cause),
checks.py the six checks; this module runs them and picks the cause.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.budget import Budget
from bot.diagnosis.checks import (
    blocking,
    connection_count,
    dyno_name,
    idle_in_transaction,
    leaks,
    long_queries,
    long_transactions,
    shorten,
)
from bot.diagnosis.result import (
    DEFAULT_THRESHOLDS,
    QUERY_SHOWN,
    Band,
    Cause,
    Check,
    Diagnosis,
    DiagnosisThresholds,
    Evidence,
    Remedy,
    Status,
    _Finding,
)
from bot.readings import Backend, Holders, HoldersUnavailable

# Ties between equally heavy causes go to the one nearer the root of the trouble.
_PRIORITY = ("blocking", "idle_in_transaction", "leak", "long_transactions", "long_queries", "connections")


def diagnose(
    holders: Holders | HoldersUnavailable,
    backends: Sequence[Backend],
    *,
    used: int | None,
    limit: int | None,
    budget: Budget | None,
    thresholds: DiagnosisThresholds = DEFAULT_THRESHOLDS,
) -> Diagnosis:
    t = thresholds
    count = connection_count(holders, used, limit, budget, t.connections)
    if isinstance(holders, HoldersUnavailable):
        unread = [
            _Finding(Check(key, name, "unknown", "pgconn could not read pg_stat_activity"))
            for key, name in (
                ("long_queries", "Long-running queries"),
                ("long_transactions", "Long transactions"),
                ("idle_in_transaction", "Idle in transaction"),
                ("blocking", "Blocking queries"),
                ("leak", "Connections per dyno vs the budget"),
            )
        ]
        findings = [count, *unread]
    else:
        findings = [
            count,
            long_queries(backends, t.long_query_s),
            long_transactions(backends, t.long_transaction_s),
            idle_in_transaction(backends, t.idle_in_transaction_s),
            blocking(backends, t.blocked_s),
            leaks(holders, budget, t.leak_factor),
        ]
    return Diagnosis(checks=tuple(f.check for f in findings), cause=likely_cause(findings))


def likely_cause(findings: Sequence[_Finding]) -> Cause | None:
    """The red finding that explains the most connections; with the role under pressure
    and nothing red, the yellow one; else the connection count's own reading."""
    pressure = next((f for f in findings if f.check.key == "connections"), None)
    others = [f for f in findings if f.cause is not None and f is not pressure]

    def best(status: Status) -> Cause | None:
        found = [f for f in others if f.check.status == status]
        if not found:
            return None
        top = max(found, key=lambda f: (f.weight, -_PRIORITY.index(f.check.key)))
        return top.cause

    red = best("red")
    if red is not None:
        return red
    if pressure is None or pressure.check.status not in ("yellow", "red"):
        return None
    return best("yellow") or pressure.cause


__all__ = [
    "QUERY_SHOWN",
    "Band",
    "DEFAULT_THRESHOLDS",
    "Cause",
    "Check",
    "Diagnosis",
    "Evidence",
    "Remedy",
    "Status",
    "DiagnosisThresholds",
    "diagnose",
    "dyno_name",
    "shorten",
]
