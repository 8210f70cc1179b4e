"""What a diagnosis is made of: the yellow/red bands and thresholds, each `Check` with its
`Evidence`, the likely `Cause` and the `Diagnosis` that holds them. Pure data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["green", "yellow", "red", "unknown"]
# The remediation buttons, by what they do; renderers map them to the public action ids.
Remedy = Literal["kill_idle", "killall", "restart", "add_pgbouncer"]
QUERY_SHOWN = 80
EVIDENCE_SHOWN = 5


@dataclass(frozen=True)
class Band:
    """A measure is yellow from `yellow`, red from `red` (both inclusive)."""

    yellow: float
    red: float

    def status(self, value: float | None) -> Status:
        if value is None:
            return "green"
        if value >= self.red:
            return "red"
        if value >= self.yellow:
            return "yellow"
        return "green"


@dataclass(frozen=True)
class DiagnosisThresholds:
    """Where each diagnosis check turns yellow and red (PGCONN_DIAG_*)."""

    connections: Band = Band(0.80, 0.95)  # share of the limit (PGCONN_ALERT_WARN / _CRITICAL)
    long_query_s: Band = Band(30, 300)
    long_transaction_s: Band = Band(60, 600)
    idle_in_transaction_s: Band = Band(60, 300)
    blocked_s: Band = Band(5, 30)
    # Red when a dyno holds this many times what the budget expects of its process type
    # (and at least 2 more); yellow as soon as it holds more than expected.
    leak_factor: float = 2.0

    @property
    def older_than_s(self) -> float:
        """The youngest query or transaction any check could flag: what the inspector reads."""
        return min(self.long_query_s.yellow, self.long_transaction_s.yellow)


DEFAULT_THRESHOLDS = DiagnosisThresholds()


@dataclass(frozen=True)
class Evidence:
    text: str
    query: str | None = None  # shortened, whitespace collapsed; shown as code


@dataclass(frozen=True)
class Check:
    key: str
    name: str
    status: Status
    summary: str
    evidence: tuple[Evidence, ...] = ()
    hint: str = ""  # what to do about it (pgconn's own mrkdwn), shown when not green


@dataclass(frozen=True)
class Cause:
    """One line for the top of a report, and the button that fits it."""

    text: str
    status: Status
    check: str
    remedy: Remedy | None = None
    process_type: str | None = None  # for a restart of one process type


@dataclass(frozen=True)
class Diagnosis:
    checks: tuple[Check, ...]
    cause: Cause | None = None

    def check(self, key: str) -> Check:
        return next(c for c in self.checks if c.key == key)


@dataclass(frozen=True)
class _Finding:
    check: Check
    cause: Cause | None = None
    weight: int = 0  # connections the cause accounts for: the biggest explanation wins
