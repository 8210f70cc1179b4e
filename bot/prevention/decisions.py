"""Prevention, the pure half: warn when a scale-up or a release breaks the connection budget, before
any connection fails. Pure: snapshots, what changed, the fixes and their numbers, and
the decision (warn, follow up, resolve) — no I/O, no clock.

The flow around it (watcher.py): a verified Heroku webhook says the formation
or a release changed; pgconn re-reads the app, computes the budget, and hands the new
`BudgetSnapshot` and the last stored `WatchState` to `decide`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from bot.budget import Budget, Verdict, connection_budget
from bot.readings import ProcessType
from bot.webhooks import WebhookEvent

# Config vars the budget reads whose values may be shown in Slack: counts and sizes only.
# URLs (DATABASE_URL, PGBOUNCER_URLS, …) carry passwords and are never listed here.
BUDGET_VARS = (
    "WEB_CONCURRENCY",
    "RAILS_MAX_THREADS",
    "MAX_THREADS",
    "PUMA_MAX_THREADS",
    "SIDEKIQ_COUNT",
    "CELERYD_CONCURRENCY",
    "CELERY_WORKER_CONCURRENCY",
    "GUNICORN_CMD_ARGS",
    "DB_POOL",
    "DB_POOL_SIZE",
    "DB_POOL_MAX",
    "DB_MAX_OVERFLOW",
    "DATABASE_POOL_SIZE",
    "DATABASE_POOL_MAX",
    "DATABASE_MAX_OVERFLOW",
    "MAX_OVERFLOW",
    "POOL_SIZE",
    "POOL_MAX",
    "PG_POOL_MAX",
    "PG_POOL_SIZE",
    "PGPOOL_MAX",
    "KNEX_POOL_MAX",
    "SQLALCHEMY_POOL_SIZE",
    "SQLALCHEMY_MAX_OVERFLOW",
    "JDBC_POOL_SIZE",
    "HIKARI_MAXIMUM_POOL_SIZE",
    "SPRING_DATASOURCE_HIKARI_MAXIMUM_POOL_SIZE",
    "PGBOUNCER_DEFAULT_POOL_SIZE",
    "PGBOUNCER_RESERVE_POOL_SIZE",
    "PGBOUNCER_MAX_CLIENT_CONN",
)
# Process counts a person can set as a config var to shrink the budget without scaling.
# Thread counts (RAILS_MAX_THREADS, …) are left out on purpose: lowering a pool below the
# threads that share it trades "too many connections" for pool timeouts.
CONCURRENCY_VARS = ("WEB_CONCURRENCY", "CELERY_WORKER_CONCURRENCY")
_MAX_CONCURRENCY = 64
_SHOWN_VALUE = 60

Step = Literal["none", "warn", "follow_up", "resolve"]


def bad(verdict: str) -> bool:
    return verdict in ("tight", "over")


@dataclass(frozen=True)
class BudgetSnapshot:
    """What the budget said last time, and the inputs a person can change."""

    verdict: Verdict
    total: int
    limit: int
    quantities: Mapping[str, int]
    config: Mapping[str, str]  # BUDGET_VARS that are set

    @classmethod
    def of(
        cls, budget: Budget, formation: Sequence[ProcessType], config_vars: Mapping[str, str]
    ) -> BudgetSnapshot:
        return cls(
            verdict=budget.verdict,
            total=budget.total,
            limit=budget.limit,
            quantities={p.type: p.quantity for p in formation},
            config={k: str(config_vars[k])[:_SHOWN_VALUE] for k in BUDGET_VARS if k in config_vars},
        )

    def to_json(self) -> dict[str, object]:
        return {
            "verdict": self.verdict,
            "total": self.total,
            "limit": self.limit,
            "quantities": dict(self.quantities),
            "config": dict(self.config),
        }

    @classmethod
    def from_json(cls, data: object) -> BudgetSnapshot | None:
        if not isinstance(data, dict):
            return None
        verdict, total, limit = data.get("verdict"), data.get("total"), data.get("limit")
        quantities, config = data.get("quantities"), data.get("config")
        if (
            verdict not in ("fits", "tight", "over")
            or not isinstance(total, int)
            or not isinstance(limit, int)
        ):
            return None
        if not isinstance(quantities, dict) or not isinstance(config, dict):
            return None
        return cls(
            verdict=verdict,
            total=total,
            limit=limit,
            quantities={str(k): int(v) for k, v in quantities.items() if isinstance(v, int)},
            config={str(k): str(v) for k, v in config.items()},
        )


@dataclass(frozen=True)
class OpenWarning:
    """A warning thread in the alert channel, open until the budget fits again."""

    channel: str
    ts: str
    opened_at: float
    change: str  # the change that opened it
    verdict: Verdict  # the last verdict posted in it
    total: int

    def to_json(self) -> dict[str, object]:
        return {
            "channel": self.channel,
            "ts": self.ts,
            "opened_at": self.opened_at,
            "change": self.change,
            "verdict": self.verdict,
            "total": self.total,
        }

    @classmethod
    def from_json(cls, data: object) -> OpenWarning | None:
        if not isinstance(data, dict):
            return None
        try:
            verdict = data["verdict"]
            if verdict not in ("fits", "tight", "over"):
                return None
            return cls(
                channel=str(data["channel"]),
                ts=str(data["ts"]),
                opened_at=float(data["opened_at"]),
                change=str(data["change"]),
                verdict=verdict,
                total=int(data["total"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True)
class WatchState:
    snapshot: BudgetSnapshot | None = None
    warning: OpenWarning | None = None


@dataclass(frozen=True)
class Decision:
    step: Step
    # The state to store once the step's Slack effect succeeded (the warning's channel
    # and ts are filled in by whoever posts it).
    state: WatchState


def decide(state: WatchState, new: BudgetSnapshot) -> Decision:
    """What a change means for the warning thread.

    - No open warning: warn when the budget stops fitting (or gets worse while it already
      did not fit, e.g. when pgconn started watching an app that was over already).
    - An open warning: follow up in its thread when the verdict or total moves; resolve it
      when the budget fits again.
    """
    previous, warning = state.snapshot, state.warning
    if warning is None:
        worse = previous is None or not bad(previous.verdict) or new.total > previous.total
        step: Step = "warn" if bad(new.verdict) and worse else "none"
    elif not bad(new.verdict):
        step = "resolve"
    elif new.verdict != warning.verdict or new.total != warning.total:
        step = "follow_up"
    else:
        step = "none"
    if step == "resolve":
        return Decision(step, WatchState(snapshot=new, warning=None))
    if step == "follow_up" and warning is not None:
        warning = replace(warning, verdict=new.verdict, total=new.total)
    return Decision(step, WatchState(snapshot=new, warning=warning))


# --- who changed what -------------------------------------------------------------------


def describe_change(event: WebhookEvent | None, before: BudgetSnapshot | None, after: BudgetSnapshot) -> str:
    """One plain-text sentence: "alice@example.com scaled web 3 → 6".

    The event says who and, for a formation, what; the stored snapshot fills in what a
    release changed (Heroku's release payload carries no config values).
    """
    who = (event.actor if event is not None else None) or "someone"
    diffs = _differences(before, after)
    if event is not None and event.formation is not None:
        f = event.formation
        old = f.previous_quantity
        if old is None and before is not None:
            old = before.quantities.get(f.process_type)
        if f.quantity is not None and old is not None and old != f.quantity:
            return f"{who} scaled {f.process_type} {old} → {f.quantity}"
        if f.size and f.previous_size and f.size != f.previous_size:
            return f"{who} resized {f.process_type} dynos {f.previous_size} → {f.size}"
        if f.quantity is not None:
            return f"{who} scaled {f.process_type} to {f.quantity}"
    if event is not None and event.release is not None:
        r = event.release
        what = f"v{r.version}" if r.version is not None else "a new release"
        text = f"{who} released {what}"
        if r.description:
            text += f" ({r.description})"
        return text + (f": {'; '.join(diffs)}" if diffs else "")
    if diffs:
        return f"{who} changed {'; '.join(diffs)}"
    return f"{who} changed the app"


def _differences(before: BudgetSnapshot | None, after: BudgetSnapshot) -> list[str]:
    if before is None:
        return []
    out = []
    for ptype in sorted(set(before.quantities) | set(after.quantities)):
        old, new = before.quantities.get(ptype, 0), after.quantities.get(ptype, 0)
        if old != new:
            out.append(f"{ptype} {old} → {new}")
    for name in BUDGET_VARS:
        old_v, new_v = before.config.get(name), after.config.get(name)
        if old_v != new_v:
            out.append(f"{name} {_shown(old_v)} → {_shown(new_v)}")
    if before.limit != after.limit:
        out.append(f"plan limit {before.limit} → {after.limit}")
    return out


def _shown(value: str | None) -> str:
    return value if value is not None else "(unset)"


# --- the fixes and their numbers --------------------------------------------------------


@dataclass(frozen=True)
class Fix:
    kind: Literal["scale", "concurrency", "pgbouncer"]
    text: str  # mrkdwn-free plain sentence with the numbers
    command: str = ""  # the CLI command that does it, when there is one
    total_after: int | None = None


@dataclass(frozen=True)
class Fixes:
    items: tuple[Fix, ...] = field(default_factory=tuple)
    pgbouncer_pool: int | None = None  # for the Add PgBouncer button


def fixes(
    app: str,
    budget: Budget,
    formation: Sequence[ProcessType],
    config_vars: Mapping[str, str],
    *,
    changed_type: str | None = None,
    headroom: int = 3,
) -> Fixes:
    """Ways back under the limit, each with its number, sized by the same budget maths.

    Scale: the changed process type (else the largest) down to the most dynos that fit.
    Concurrency: the highest value of a worker/thread config var that fits, when that var
    actually drives the budget (a `-w 3` on the command line makes WEB_CONCURRENCY moot).
    PgBouncer: the pool per dyno the budget sizes for the Add PgBouncer action.
    """
    items: list[Fix] = []
    limit = budget.limit
    types = [ln for ln in budget.lines if not ln.transient and ln.dynos > 0 and ln.per_dyno > 0]
    target = next((ln for ln in types if ln.process_type == changed_type), None)
    if target is None and types:
        target = max(types, key=lambda ln: ln.total)
    if target is not None:
        most = budget.max_dynos.get(target.process_type)
        if most is not None and most < target.dynos:
            after = budget.total - target.total + most * target.per_dyno
            if most > 0:
                text = (
                    f"Scale {target.process_type} back to {most} dyno{'s' if most != 1 else ''} "
                    f"({after} of {limit}{_still_tight(after, budget)})"
                )
            else:
                text = (
                    f"Even 1 {target.process_type} dyno needs {target.per_dyno} connections, more than the "
                    f"{limit - (budget.total - target.total)} the rest leaves: lower its concurrency, or "
                    f"stop it ({after} of {limit})"
                )
            items.append(Fix("scale", text, f"heroku ps:scale {target.process_type}={most} -a {app}", after))
    for name in CONCURRENCY_VARS:
        found = _concurrency_fix(app, name, budget, formation, config_vars, headroom)
        if found is not None:
            items.append(found)
    pool = budget.pgbouncer_pool_size
    if pool is not None and budget.pgbouncer_total is not None:
        items.append(
            Fix(
                "pgbouncer",
                f"Add PgBouncer with a pool of {pool} server connection{'s' if pool != 1 else ''} per dyno "
                f"(+{budget.pgbouncer_reserve_pool_size} reserve): {budget.pgbouncer_total} of {limit}, "
                "however many threads the app runs",
                total_after=budget.pgbouncer_total,
            )
        )
    return Fixes(items=tuple(items), pgbouncer_pool=pool)


def _still_tight(total: int, budget: Budget) -> str:
    return " — still tight" if total > budget.tight_share * budget.limit else ""


def _concurrency_fix(
    app: str,
    name: str,
    budget: Budget,
    formation: Sequence[ProcessType],
    config_vars: Mapping[str, str],
    headroom: int,
) -> Fix | None:
    def total_with(value: int) -> int:
        config = {**config_vars, name: str(value)}
        return connection_budget(formation, config, budget.limit, headroom=headroom).total

    current = config_vars.get(name)
    start = int(current) if current is not None and current.isdigit() else _MAX_CONCURRENCY
    # A var that changes nothing between 1 and its current value does not drive the budget.
    if total_with(1) >= budget.total:
        return None
    for value in range(min(start, _MAX_CONCURRENCY), 0, -1):
        after = total_with(value)
        if after <= budget.limit and after < budget.total:
            was = f" (now {current})" if current is not None else ""
            return Fix(
                "concurrency",
                f"Set {name} to {value}{was}: {after} of {budget.limit}{_still_tight(after, budget)}",
                f"heroku config:set {name}={value} -a {app}",
                after,
            )
    return None
