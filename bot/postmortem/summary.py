"""The post-mortem of an incident, pure: what happened, why, what was done, what would prevent it.

`build_postmortem` takes what pgconn recorded while the incident ran (the incident itself, the
holder samples, the actions from the audit with their verification, what the first report said
about the cause and the budget) and the budget now, and returns a `PostMortem`: plain data that
`to_markdown` writes out for a team's own post-mortem document and bot.render.postmortem shows
in Slack. No I/O, no clock.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from bot.postmortem.chart import ROLE_FULL, HolderSample

NOT_VERIFIED = "not verified"
LABELS = {
    "pgconn.kill_idle": "Kill idle",
    "pgconn.killall": "Kill all",
    "pgconn.restart": "Restart dynos",
    "pgconn.add_pgbouncer": "Add PgBouncer",
}


@dataclass(frozen=True)
class BudgetFigure:
    """The budget's bottom line at one moment."""

    total: int
    limit: int
    verdict: str  # "fits" | "tight" | "over"

    @property
    def text(self) -> str:
        if self.verdict == "over":
            return f"{self.total} of {self.limit}: over by {self.total - self.limit}"
        return f"{self.total} of {self.limit}: {self.verdict}"


@dataclass(frozen=True)
class Start:
    """What pgconn's first report of the incident said (kept when the thread opened)."""

    cause: str = ""  # the likely cause, pgconn's own mrkdwn
    cause_check: str = ""  # the diagnosis check it came from ("idle_in_transaction", "leak", …)
    budget: BudgetFigure | None = None


@dataclass(frozen=True)
class Action:
    """One action taken through pgconn during the incident, from the audit."""

    at: float
    user: str
    action: str
    ok: bool
    result: str
    verified: str = NOT_VERIFIED  # the verification's one line, once one exists

    @property
    def label(self) -> str:
        return LABELS.get(self.action, self.action)


@dataclass(frozen=True)
class Verified:
    """A fix's checked effect (bot.state.verification): who ran what, when, and its one line."""

    action: str
    user: str
    acted_at: float
    line: str


# An audit record is written when its action finished; the verification names when it started.
MATCH_WITHIN_S = 900.0


def with_verification(actions: Sequence[Action], checked: Sequence[Verified]) -> list[Action]:
    """Each action with the line its verification said: the nearest unused one of the same action
    by the same person; NOT_VERIFIED while none exists (not yet checked, or never)."""
    free = list(checked)
    out = []
    for a in sorted(actions, key=lambda a: a.at):
        # The audit names the button (pgconn.killall), the verification the fix (killall).
        kind = a.action.removeprefix("pgconn.")
        same = [
            v
            for v in free
            if v.action.removeprefix("pgconn.") == kind
            and v.user == a.user
            and abs(v.acted_at - a.at) <= MATCH_WITHIN_S
        ]
        if not same:
            out.append(a)
            continue
        best = min(same, key=lambda v: abs(v.acted_at - a.at))
        free.remove(best)
        out.append(replace(a, verified=best.line))
    return out


@dataclass(frozen=True)
class Event:
    at: float
    what: str  # pgconn's own mrkdwn (user mentions as <@U…>)


@dataclass(frozen=True)
class PostMortem:
    app: str
    database: str
    incident: str
    opened_at: float
    resolved_at: float
    resolved_by: str  # "" when it resolved by itself
    resolve_after_s: float
    first_signal: str
    peak: int | None
    peak_at: float | None
    limit: int | None
    refused: int
    actions: tuple[Action, ...]
    cause: str
    budget_before: BudgetFigure | None
    budget_after: BudgetFigure | None
    prevention: tuple[str, ...]
    samples: int
    holders_at_peak: tuple[tuple[str, int], ...] = field(default_factory=tuple)

    @property
    def lasted_s(self) -> float:
        return max(0.0, self.resolved_at - self.opened_at)

    @property
    def resolution(self) -> str:
        if self.resolved_by:
            return f"resolved by hand by <@{self.resolved_by}>"
        below = _duration(self.resolve_after_s)
        return f"resolved by itself: connections stayed below the warning threshold for {below}"

    def timeline(self) -> list[Event]:
        events = [Event(self.opened_at, f"First signal: {self.first_signal}")]
        if self.peak is not None and self.peak_at is not None:
            of = f" of {self.limit}" if self.limit else ""
            who = ", ".join(f"{name} {n}" for name, n in self.holders_at_peak[:4])
            events.append(
                Event(self.peak_at, f"Peak: {self.peak}{of} connections" + (f" ({who})" if who else ""))
            )
        for a in self.actions:
            outcome = a.result if a.ok else f"failed: {a.result}"
            events.append(Event(a.at, f"<@{a.user}> ran {a.label}: {outcome} — {a.verified}"))
        events.append(Event(self.resolved_at, f"Resolved: {self.resolution}"))
        return sorted(events, key=lambda e: e.at)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> PostMortem:
        data = dict(raw)
        data["actions"] = tuple(Action(**a) for a in data.get("actions") or ())
        for key in ("budget_before", "budget_after"):
            data[key] = BudgetFigure(**data[key]) if data.get(key) else None
        data["prevention"] = tuple(data.get("prevention") or ())
        data["holders_at_peak"] = tuple((str(n), int(c)) for n, c in data.get("holders_at_peak") or ())
        return cls(**data)


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def peak_of(
    samples: Sequence[HolderSample], counts: Sequence[tuple[float, int]] = ()
) -> tuple[int | None, float | None, tuple[tuple[str, int], ...]]:
    """The highest count (holder samples and plain counts together), when, and who held it."""
    best: tuple[int, float] | None = None
    holders: tuple[tuple[str, int], ...] = ()
    for s in samples:
        if best is None or s.total > best[0]:
            best = (s.total, s.at)
            named = [(n, c) for n, c in s.counts.items() if c > 0 and n != ROLE_FULL]
            holders = tuple(sorted(named, key=lambda nc: (-nc[1], nc[0])))
    for at, n in counts:
        if best is None or n > best[0]:
            best, holders = (n, at), ()
    if best is None:
        return None, None, ()
    return best[0], best[1], holders


def build_postmortem(
    *,
    app: str,
    database: str,
    incident: str,
    opened_at: float,
    resolved_at: float,
    resolved_by: str,
    resolve_after_s: float,
    first_signal: str,
    limit: int | None,
    refused: int,
    samples: Sequence[HolderSample],
    counts: Sequence[tuple[float, int]],
    actions: Sequence[Action],
    start: Start,
    budget_after: BudgetFigure | None,
    fixes: Sequence[str],
) -> PostMortem:
    peak, peak_at, holders = peak_of(samples, counts)
    return PostMortem(
        app=app,
        database=database,
        incident=incident,
        opened_at=opened_at,
        resolved_at=resolved_at,
        resolved_by=resolved_by,
        resolve_after_s=resolve_after_s,
        first_signal=first_signal,
        peak=peak,
        peak_at=peak_at,
        limit=limit,
        refused=refused,
        actions=tuple(sorted(actions, key=lambda a: a.at)),
        cause=start.cause or "pgconn's diagnosis named no single cause",
        budget_before=start.budget,
        budget_after=budget_after,
        prevention=tuple(prevention(start, budget_after, peak, limit, fixes)),
        samples=len(samples),
        holders_at_peak=holders,
    )


# What keeps each kind of cause from coming back, beyond the budget's own fixes.
_BY_CAUSE = {
    "idle_in_transaction": (
        "Sessions left idle in a transaction held the slots: end transactions in the code path that "
        "opens them, and let Postgres end the rest — `ALTER ROLE … SET idle_in_transaction_session_timeout "
        "= '60s'`."
    ),
    "leak": (
        "One process type held more than its budget: its connection pool leaks (connections checked out "
        "and never returned). Cap the pool, and restart that type until the leak is fixed."
    ),
    "blocking": (
        "Sessions queued behind a lock: find the blocker's code path (long transaction, `LOCK`, migration) "
        "and set `lock_timeout` for the app's role so waiters fail fast instead of piling up."
    ),
    "long_queries": "Long-running queries held the slots: set `statement_timeout` for the app's role.",
    "long_transactions": (
        "Long transactions held the slots: keep transactions short; set `idle_session_timeout`."
    ),
}


def prevention(
    start: Start, budget: BudgetFigure | None, peak: int | None, limit: int | None, fixes: Sequence[str]
) -> list[str]:
    """What would keep it from coming back: the budget maths first, then the cause's own advice."""
    out: list[str] = []
    if budget is not None:
        before = start.budget
        if budget.verdict == "over":
            out.append(
                f"The formation can open {budget.total} connections against {budget.limit}: it will run "
                "out again at full load until one of these is done:"
            )
        elif before is not None and before.verdict == "over":
            out.append(
                f"When it ran out, the formation could open {before.total} connections against "
                f"{before.limit}; now it is {budget.text}. For the next scale-up or concurrency change, "
                "sized by the same maths:"
            )
        elif peak is not None and limit and peak >= limit:
            out.append(
                f"The budget fits ({budget.total} of {budget.limit}), yet the role reached {peak}: "
                "connections the formation does not explain (a leak, one-off dynos, clients outside "
                "Heroku). The holders in the chart say which. Sized by the same maths:"
            )
        else:
            out.append(f"The budget is {budget.text}; sized by the same maths:")
        out += [f"• {f}" for f in fixes]
    advice = _BY_CAUSE.get(start.cause_check)
    if advice:
        out.append(advice)
    if not out:
        out.append("pgconn could not read the budget: run `/pgconn APP budget` to size the fixes.")
    return out


# --- Markdown, for a team's own post-mortem document ---------------------------------

_MENTION = re.compile(r"<@([A-Z0-9]+)>")
_LINK = re.compile(r"<([^|>]+)\|([^>]+)>")


def plain(mrkdwn: str) -> str:
    """pgconn's Slack mrkdwn as Markdown: *bold* → **bold**, <@U1> → @U1, emoji codes dropped."""
    s = _MENTION.sub(r"@\1", mrkdwn)
    s = _LINK.sub(r"\2", s)
    s = re.sub(r":[a-z_]+: ?", "", s)
    s = re.sub(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])", r"**\1**", s)
    return s.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").replace("\u200b", "")


def _utc(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))


def to_markdown(pm: PostMortem, *, chart_name: str = "connections-by-holder.png") -> str:
    lines = [
        f"# Post-mortem: {pm.app} ran out of database connections",
        "",
        f"- **Database:** {pm.database}",
        f"- **When:** {_utc(pm.opened_at)} → {_utc(pm.resolved_at)} ({_duration(pm.lasted_s)})",
        f"- **Peak:** {pm.peak if pm.peak is not None else '?'}"
        + (f" of {pm.limit} connections" if pm.limit else " connections")
        + (f" at {_utc(pm.peak_at)}" if pm.peak_at else ""),
        f"- **Refused connections logged:** {pm.refused}",
        f"- **Resolution:** {plain(pm.resolution)}",
        "",
        "## Timeline (UTC)",
        "",
    ]
    lines += [f"- {time.strftime('%H:%M:%S', time.gmtime(e.at))} — {plain(e.what)}" for e in pm.timeline()]
    lines += ["", "## Likely cause", "", plain(pm.cause), "", "## Connection budget", ""]
    before = pm.budget_before.text if pm.budget_before else "unknown"
    after = pm.budget_after.text if pm.budget_after else "unknown"
    lines += [
        f"- **Before:** {before}",
        f"- **After:** {after}",
        "",
        "## What would keep it from coming back",
        "",
    ]
    lines += [plain(p) if p.startswith("•") is False else "- " + plain(p[1:].strip()) for p in pm.prevention]
    lines += [
        "",
        "## Connections by holder",
        "",
        f"![Connections by holder over the incident]({chart_name})",
        "",
        f"_{pm.samples} samples of pg_stat_activity taken by pgconn during the incident "
        f"(incident {pm.incident})._",
        "",
    ]
    return "\n".join(lines)
