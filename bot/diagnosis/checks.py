"""The six checks, each from what the inspector read to one green / yellow / red `Check`
with its evidence and, when it explains the trouble, a `Cause` and its weight: connection
count, long-running queries, long transactions, idle in transaction, blocking, and leaks
(connections per dyno against the budget). Pure.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence

from bot.budget import Budget, BudgetLine
from bot.diagnosis.result import (
    EVIDENCE_SHOWN,
    QUERY_SHOWN,
    Band,
    Cause,
    Check,
    Evidence,
    Status,
    _Finding,
)
from bot.postgres import OWN_APPLICATION_NAMES
from bot.readings import Backend, Holders, HoldersUnavailable
from bot.render.text import duration, plural

# A Heroku dyno name as an application_name carries it: "web.3", "worker_high.12", or a
# word of it ("puma web.3", "web.3:1234"). One-off dynos (run.1234) match too but have no
# line in the budget, so nothing is expected of them.
_DYNO = re.compile(r"(?<![\w.-])([A-Za-z][\w-]*)\.(\d{1,6})(?![\w.])")
_WORST = {"green": 0, "unknown": 0, "yellow": 1, "red": 2}


def connection_count(
    holders: Holders | HoldersUnavailable,
    used: int | None,
    limit: int | None,
    budget: Budget | None,
    band: Band,
) -> _Finding:
    key, name = "connections", "Connection count"
    hint = (
        "*Kill idle* frees the idle ones; when the budget is over the limit, PgBouncer lets each "
        "dyno share a few server connections."
    )
    if isinstance(holders, HoldersUnavailable) and holders.role_full:
        # The server refused pgconn itself for want of a slot: full, whatever pg:info counted.
        numbers = f" ({used}/{limit})" if used is not None and limit else ""
        return _Finding(
            Check(
                key,
                name,
                "red",
                f"the role refused pgconn's own connection: every slot is taken{numbers}",
                hint=hint,
            ),
            Cause(
                f"every connection slot of the role is taken{numbers} and pgconn could not look inside; "
                "Kill all still works through Heroku's connection reset",
                "red",
                key,
                "killall",
            ),
        )
    if used is None or not limit:
        return _Finding(Check(key, name, "unknown", "the connection count or the limit is unknown"))
    status = band.status(used / limit)
    summary = f"{used}/{limit} connections ({round(used / limit * 100)}% of the limit)"
    if isinstance(holders, HoldersUnavailable):
        return _Finding(Check(key, name, status, summary, hint=hint))
    mine = _role_holders(holders)
    evidence = tuple(
        Evidence(f"{holder} holds {n}" + (f" ({idle} idle or idle in transaction)" if idle else ""))
        for holder, (n, idle) in sorted(mine.items(), key=lambda kv: -kv[1][0])[:EVIDENCE_SHOWN]
    )
    cause = None
    if budget is not None and budget.verdict == "over":
        per_type = ", ".join(f"{ln.process_type} {ln.total}" for ln in budget.lines if not ln.transient)
        cause = Cause(
            f"the formation can open {budget.total} connections against a limit of {budget.limit}"
            + (f" ({per_type}, plus {budget.headroom} headroom)" if per_type else ""),
            status,
            key,
            "add_pgbouncer",
        )
    elif mine:
        holder, (n, idle) = max(mine.items(), key=lambda kv: kv[1][0])
        idle_heavy = idle * 2 >= n
        cause = Cause(
            f"{holder} holds {n} of {used} connections" + (f", {idle} of them idle" if idle else ""),
            status,
            key,
            "kill_idle" if idle_heavy else None,
        )
    return _Finding(Check(key, name, status, summary, evidence, hint), cause)


def long_queries(backends: Sequence[Backend], band: Band) -> _Finding:
    key, name = "long_queries", "Long-running queries"
    # A query waiting on a lock is the blocking check's business: its blocker is the cause.
    slow, red, status = _over(
        (b for b in backends if b.state == "active" and not b.blocked_by), lambda b: b.query_age_s, band
    )
    if not slow:
        return _Finding(Check(key, name, "green", f"no query has run for {duration(band.yellow)} or more"))
    top = slow[0]
    summary = (
        f"{plural(len(slow), 'query', 'queries')} running for {duration(band.yellow)} or more, "
        f"the longest {duration(top.query_age_s)}"
    )
    evidence = tuple(
        Evidence(f"pid {b.pid} {holder_name(b)}: running {duration(b.query_age_s)}", shorten(b.query))
        for b in slow[:EVIDENCE_SHOWN]
    )
    more = f"; {plural(red, 'query', 'queries')} over {duration(band.red)}" if red > 1 else ""
    cause = Cause(
        f"{holder_name(top)} (pid {top.pid}) has run one query for {duration(top.query_age_s)}{more}",
        status,
        key,
    )
    hint = (
        "Cancel one with `SELECT pg_cancel_backend(pid)`; a `statement_timeout` on the app's role "
        "stops it recurring."
    )
    return _Finding(Check(key, name, status, summary, evidence, hint), cause, red or len(slow))


def long_transactions(backends: Sequence[Backend], band: Band) -> _Finding:
    key, name = "long_transactions", "Long transactions"
    # A transaction that is just its one running query is the long-query check's business.
    old, red, status = _over(
        (b for b in backends if not (b.state == "active" and (b.xact_age_s or 0) - (b.query_age_s or 0) < 1)),
        lambda b: b.xact_age_s,
        band,
    )
    if not old:
        return _Finding(
            Check(key, name, "green", f"no transaction has been open for {duration(band.yellow)} or more")
        )
    top = old[0]
    summary = (
        f"{plural(len(old), 'transaction')} open for {duration(band.yellow)} or more, "
        f"the oldest {duration(top.xact_age_s)}"
    )
    evidence = tuple(
        Evidence(
            f"pid {b.pid} {holder_name(b)}: open {duration(b.xact_age_s)}, {b.state or 'state hidden'}",
            shorten(b.query),
        )
        for b in old[:EVIDENCE_SHOWN]
    )
    cause = Cause(
        f"{holder_name(top)} (pid {top.pid}) has kept a transaction open for {duration(top.xact_age_s)}"
        + (", idle in transaction now" if top.idle_in_transaction else ""),
        status,
        key,
        "kill_idle" if top.idle_in_transaction else None,
    )
    hint = "Long transactions hold their locks and stop vacuum; find the code path that keeps them open."
    return _Finding(Check(key, name, status, summary, evidence, hint), cause, red or len(old))


def idle_in_transaction(backends: Sequence[Backend], band: Band) -> _Finding:
    key, name = "idle_in_transaction", "Idle in transaction"
    stuck = [b for b in backends if b.idle_in_transaction and (b.state_age_s or 0) >= band.yellow]
    if not stuck:
        brief = sum(1 for b in backends if b.idle_in_transaction)
        return _Finding(
            Check(
                key,
                name,
                "green",
                f"no connection idle in transaction for {duration(band.yellow)} or more"
                + (f" ({brief} briefly)" if brief else ""),
            )
        )
    by_holder: dict[str, list[Backend]] = defaultdict(list)
    for b in stuck:
        by_holder[holder_name(b)].append(b)
    ranked = sorted(by_holder.items(), key=lambda kv: (-len(kv[1]), -max(b.state_age_s or 0 for b in kv[1])))
    oldest = max(stuck, key=lambda b: b.state_age_s or 0)
    status = band.status(oldest.state_age_s)
    summary = (
        f"{plural(len(stuck), 'connection')} idle in transaction for {duration(band.yellow)} or more, "
        f"the oldest {duration(oldest.state_age_s)} ({holder_name(oldest)})"
    )
    evidence = []
    for holder, group in ranked[:EVIDENCE_SHOWN]:
        first = max(group, key=lambda b: b.state_age_s or 0)
        evidence.append(
            Evidence(
                f"{holder}: {len(group)} idle in transaction, the oldest {duration(first.state_age_s)} "
                f"(pid {first.pid}, last query)",
                shorten(first.query),
            )
        )
    holder, group = ranked[0]
    age = max(b.state_age_s or 0 for b in group)
    cause = Cause(
        f"{holder} holds {plural(len(group), 'connection')} idle in transaction"
        + (f", the oldest for {duration(age)}" if len(group) > 1 else f" for {duration(age)}"),
        status,
        key,
        "kill_idle",
    )
    hint = (
        "A request or job opened a transaction and never finished it: it holds a slot and its locks. "
        "*Kill idle* ends them; `idle_in_transaction_session_timeout` stops it recurring."
    )
    return _Finding(Check(key, name, status, summary, tuple(evidence), hint), cause, len(group))


def blocking(backends: Sequence[Backend], band: Band) -> _Finding:
    key, name = "blocking", "Blocking queries"
    waiting = [b for b in backends if b.blocked_by]
    if not waiting:
        return _Finding(Check(key, name, "green", "no query is waiting for another session's lock"))
    by_pid = {b.pid: b for b in backends}
    victims: dict[int, list[Backend]] = defaultdict(list)
    for b in waiting:
        for pid in b.blocked_by:
            victims[pid].append(b)

    def wait(b: Backend) -> float:
        # The query started waiting about when it started: pg_stat_activity has no wait start.
        return b.query_age_s or 0.0

    longest = max(wait(b) for b in waiting)
    status = band.status(longest)
    # A blocker that waits itself is a link in a chain; the one at the root is the cause.
    roots = [pid for pid in victims if not (by_pid.get(pid) and by_pid[pid].blocked_by)] or list(victims)
    ranked = sorted(
        victims, key=lambda pid: (pid not in roots, -len(victims[pid]), -max(map(wait, victims[pid])))
    )
    summary = (
        f"{plural(len(waiting), 'session')} waiting for a lock, the longest {duration(longest)}; "
        f"held by {plural(len(victims), 'session')}"
    )

    def who(pid: int) -> str:
        b = by_pid.get(pid)
        if b is None:
            return f"pid {pid}"
        doing = b.state or "state hidden"
        age = b.state_age_s if b.idle_in_transaction else b.query_age_s
        return f"{holder_name(b)} (pid {pid}, {doing}" + (
            f" for {duration(age)})" if age is not None else ")"
        )

    evidence = []
    for pid in ranked[:EVIDENCE_SHOWN]:
        blocked = victims[pid]
        first = max(blocked, key=wait)
        lock = f" for {first.waiting_for}" if first.waiting_for else ""
        evidence.append(
            Evidence(
                f"{who(pid)} blocks {plural(len(blocked), 'session')}: "
                f"{holder_name(first)} (pid {first.pid}) waiting {duration(wait(first))}{lock}",
                shorten(first.query),
            )
        )
    root = ranked[0]
    blocked = victims[root]
    first = max(blocked, key=wait)
    lock = f" for {first.waiting_for}" if first.waiting_for else ""
    blocker = by_pid.get(root)
    idle = blocker is not None and blocker.idle_in_transaction
    cause = Cause(
        f"{who(root)} blocks {plural(len(blocked), 'session')}, waiting up to {duration(wait(first))}{lock}",
        status,
        key,
        "kill_idle" if idle else None,
    )
    hint = (
        "Ending the blocking session releases its locks (*Kill idle* when it is idle in transaction; "
        "`SELECT pg_terminate_backend(pid)` otherwise)."
    )
    # The blocker holds a connection too, and every session it blocks holds one.
    return _Finding(Check(key, name, status, summary, tuple(evidence), hint), cause, len(blocked) + 1)


def leaks(holders: Holders, budget: Budget | None, factor: float) -> _Finding:
    key, name = "leak", "Connections per dyno vs the budget"
    if budget is None:
        return _Finding(
            Check(key, name, "unknown", "no budget to compare with (the plan's limit is unknown)")
        )
    lines = {ln.process_type: ln for ln in budget.lines if not ln.transient and ln.per_dyno > 0}
    counted = _role_holders(holders)
    dynos: list[tuple[str, str, int, BudgetLine]] = []
    for holder, (n, _) in counted.items():
        dyno = dyno_name(holder)
        if dyno is not None and dyno[0] in lines:
            dynos.append((holder, dyno[0], n, lines[dyno[0]]))
    if not dynos:
        if not counted:
            return _Finding(Check(key, name, "green", "no connections besides pgconn's own"))
        return _Finding(
            Check(
                key,
                name,
                "unknown",
                "no connection's application_name names a dyno of the formation, so pgconn cannot tell "
                "which process holds them (set PGAPPNAME=$DYNO: see the README)",
            )
        )
    over: list[tuple[str, str, int, BudgetLine, Status]] = []
    for holder, ptype, n, ln in dynos:
        expected = ln.per_dyno
        if n <= expected:
            continue
        # An unknown command's expectation is a guess: it can say "look", not "leak".
        red = n >= factor * expected and n - expected >= 2 and ln.server != "unknown"
        over.append((holder, ptype, n, ln, "red" if red else "yellow"))
    if not over:
        return _Finding(
            Check(
                key,
                name,
                "green",
                f"every dyno holds what the budget expects or less ({plural(len(dynos), 'dyno')} named)",
            )
        )
    over.sort(key=lambda o: (-_WORST[o[4]], -(o[2] - o[3].per_dyno)))
    status: Status = over[0][4]
    summary = f"{plural(len(over), 'dyno')} above the budget's expectation for its process type"
    evidence = tuple(
        Evidence(
            f"{holder} holds {n}, the budget says {ln.per_dyno} per {ptype} dyno"
            + (f" ({'; '.join(ln.assumptions)})" if ln.assumptions else "")
        )
        for holder, ptype, n, ln, _ in over[:EVIDENCE_SHOWN]
    )
    holder, ptype, n, ln, _ = over[0]
    same_type = [o for o in over if o[1] == ptype and o[4] == status]
    others = len(same_type) - 1
    cause = Cause(
        f"{holder} holds {n} connections; the budget expects {ln.per_dyno} per {ptype} dyno"
        + (
            f", and {plural(others, f'more {ptype} dyno')} {'is' if others == 1 else 'are'} above it"
            if others
            else ""
        ),
        status,
        key,
        "restart",
        ptype,
    )
    hint = (
        "A process holding more connections than its settings allow usually leaks them (checked out, "
        "never returned to its pool). Restarting that process type frees them; then look for the leak."
    )
    weight = sum(o[2] - o[3].per_dyno for o in same_type)
    return _Finding(Check(key, name, status, summary, evidence, hint), cause, weight)


# -- helpers ------------------------------------------------------------------------------


def _over(
    candidates: Iterable[Backend], age: Callable[[Backend], float | None], band: Band
) -> tuple[list[Backend], int, Status]:
    """The candidates at least `band.yellow` old, oldest first; how many are red; the worst status."""
    found = sorted((b for b in candidates if (age(b) or 0) >= band.yellow), key=lambda b: -(age(b) or 0))
    red = sum(1 for b in found if band.status(age(b)) == "red")
    return found, red, band.status(age(found[0])) if found else "green"


def holder_name(b: Backend) -> str:
    return b.application_name or f"{b.usename or '?'}@{b.client_addr}"


def dyno_name(application_name: str) -> tuple[str, int] | None:
    """("web", 3) for "web.3" or "puma web.3"; None when no dyno name is in it."""
    m = _DYNO.search(application_name)
    return (m.group(1), int(m.group(2))) if m else None


def shorten(query: str, limit: int = QUERY_SHOWN) -> str:
    """The start of a query on one line: whitespace collapsed, at most `limit` characters."""
    flat = " ".join(query.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _role_holders(holders: Holders) -> dict[str, tuple[int, int]]:
    """holder → (connections, idle or idle in transaction), the role's own, pgconn's left out."""
    totals: Counter[str] = Counter()
    idle: Counter[str] = Counter()
    for g in holders.groups:
        if g.usename != holders.role or g.application_name in OWN_APPLICATION_NAMES:
            continue
        name = g.application_name or f"{g.usename}@{g.client_addr}"
        totals[name] += g.total
        idle[name] += g.idle + g.idle_in_transaction
    return {name: (totals[name], idle[name]) for name in totals}
