"""The budget maths: lines per process type, the total against the limit, the verdict, the
most dynos each type could run, and the PgBouncer sizing that would fit. Pure.

heroku-buildpack-pgbouncer: PGBOUNCER_DEFAULT_POOL_SIZE 1, PGBOUNCER_RESERVE_POOL_SIZE 1,
PGBOUNCER_MAX_CLIENT_CONN 100 (its README and bin/gen-pgbouncer-conf.sh); the pool is per
(user, database) pair, so per dyno for one database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.budget.dynos import _size_key
from bot.budget.parts import _env_int, _n
from bot.budget.result import (
    DEFAULT_HEADROOM,
    TIGHT_SHARE,
    Budget,
    BudgetLine,
    HeadroomItem,
    Verdict,
)
from bot.budget.shell import _language_of, _Reader
from bot.readings import ProcessType

_INTERNAL_FALLBACK = "pgconn could not analyse this command; assumed 1 connection per dyno"


def connection_budget(
    formation: Sequence[ProcessType],
    config_vars: Mapping[str, str],
    limit: int,
    *,
    headroom: int | Sequence[HeadroomItem] = DEFAULT_HEADROOM,
    tight_share: float = TIGHT_SHARE,
) -> Budget:
    """Compute the app's connection budget. Pure; never raises on odd commands or vars."""
    config = {k: v for k, v in dict(config_vars or {}).items() if isinstance(k, str) and isinstance(v, str)}
    items = _headroom_items(headroom)
    headroom_total = sum(i.connections for i in items)
    lines = tuple(_line(pt, config) for pt in formation)
    total = sum(ln.total for ln in lines) + headroom_total
    limit = int(limit)
    if not 0 < tight_share <= 1:
        tight_share = TIGHT_SHARE
    share = total / limit if limit > 0 else (float("inf") if total > 0 else 0.0)
    verdict: Verdict = "over" if total > limit else "tight" if share > tight_share else "fits"

    max_dynos: dict[str, int] = {}
    for ln in lines:
        if ln.transient or ln.per_dyno <= 0:
            continue
        room = limit - (total - ln.total)
        max_dynos[ln.process_type] = max(0, room // ln.per_dyno)

    pool, reserve, max_client, pgb_total, pgb_notes = _pgbouncer_sizing(lines, headroom_total, limit)
    frameworks = frozenset(ln.framework for ln in lines if ln.framework != "unknown") or frozenset(
        {"unknown"}
    )
    notes = list(pgb_notes)
    if config.get("DATABASE_CONNECTION_POOL_URL"):
        notes.append(
            "Heroku's server-side connection pooling is attached (DATABASE_CONNECTION_POOL_URL): "
            "processes that connect through it share the pooler's connections and count for less"
        )
    return Budget(
        lines=lines,
        headroom=headroom_total,
        headroom_items=items,
        limit=limit,
        total=total,
        verdict=verdict,
        share=share,
        tight_share=tight_share,
        max_dynos=max_dynos,
        pgbouncer_pool_size=pool,
        pgbouncer_reserve_pool_size=reserve,
        pgbouncer_max_client_conn=max_client,
        pgbouncer_total=pgb_total,
        frameworks=frameworks,
        notes=tuple(notes),
    )


def _headroom_items(headroom: int | Sequence[HeadroomItem]) -> tuple[HeadroomItem, ...]:
    if isinstance(headroom, int):
        n = max(0, headroom)
        if n == 3:
            return DEFAULT_HEADROOM
        return (HeadroomItem("pgconn, one-off dynos and Heroku's tools", n),) if n else ()
    return tuple(HeadroomItem(i.label, max(0, int(i.connections))) for i in headroom)


# Sized with the buildpack's default reserve pool of 1 so that setting only
# PGBOUNCER_DEFAULT_POOL_SIZE keeps the promise; the reserve drops to 0 only when
# that is the difference between fitting and not.
_PGBOUNCER_RESERVE = 1
_PGBOUNCER_MAX_CLIENT = 100


def _pgbouncer_sizing(
    lines: tuple[BudgetLine, ...], headroom: int, limit: int
) -> tuple[int | None, int, int, int | None, list[str]]:
    steady = [ln for ln in lines if not ln.transient and ln.dynos > 0]
    dynos = sum(ln.dynos for ln in steady)
    transient = sum(ln.total for ln in lines if ln.transient)
    demand = max((ln.client_per_dyno for ln in steady), default=0)
    max_client = max(_PGBOUNCER_MAX_CLIENT, demand)
    if dynos == 0:
        return None, _PGBOUNCER_RESERVE, max_client, None, []
    per_dyno = (limit - headroom - transient) // dynos
    reserve = _PGBOUNCER_RESERVE
    pool = min(per_dyno - reserve, max(demand, 1))
    if pool < 1:
        reserve, pool = 0, min(per_dyno, max(demand, 1))
    if pool < 1:
        return (
            None,
            0,
            max_client,
            None,
            [
                f"Even PgBouncer with 1 server connection per dyno does not fit: {dynos} dynos + "
                f"{headroom} headroom{' + the release phase' if transient else ''} is more than "
                f"{limit}. Scale down or move to a plan with more connections"
            ],
        )
    total = dynos * (pool + reserve) + transient + headroom
    return pool, reserve, max_client, total, []


def _line(pt: ProcessType, config: Mapping[str, str]) -> BudgetLine:
    ptype = str(getattr(pt, "type", "") or "?")
    command = str(getattr(pt, "command", "") or "")
    try:
        quantity = max(0, int(getattr(pt, "quantity", 0) or 0))
    except (TypeError, ValueError):
        quantity = 0
    try:
        return _read_line(ptype, command, quantity, _size_key(getattr(pt, "size", "")), config)
    except Exception:  # a safety net: a budget with an assumption beats no report at all
        return BudgetLine(
            process_type=ptype,
            command=command,
            dynos=quantity,
            processes_per_dyno=1,
            connections_per_process=1,
            extra_per_dyno=0,
            total=quantity,
            server="unknown",
            framework="unknown",
            explanation=f"{_n(quantity, 'dyno')} × 1 process × 1 connection",
            assumptions=(_INTERNAL_FALLBACK,),
            client_per_dyno=1,
        )


def _read_line(ptype: str, command: str, quantity: int, size: str, config: Mapping[str, str]) -> BudgetLine:
    reader = _Reader(config, size, _language_of(command))
    parts = reader.command(command, depth=0)
    main = max(parts, key=lambda p: p.per_dyno)
    others = [p for p in parts if p is not main]
    extra = main.extra + sum(p.per_dyno for p in others)
    extra_labels = [main.extra_label] if main.extra else []
    extra_labels += [f"{p.per_dyno} for {p.server}" for p in others]
    assumptions = [*reader.notes]
    for p in parts:
        assumptions.extend(p.notes)
    transient = ptype == "release"
    dynos = 1 if transient else quantity
    processes, per_process = main.processes, main.per_process
    client = processes * per_process + extra
    proc_noun, conn_noun, detail = main.proc_noun, main.conn_noun, main.detail

    if reader.pgbouncer:
        env = reader.env()
        pool = _env_int(env, "PGBOUNCER_DEFAULT_POOL_SIZE", 1, assumptions)
        reserve = _env_int(env, "PGBOUNCER_RESERVE_POOL_SIZE", 1, assumptions)
        max_client = _env_int(env, "PGBOUNCER_MAX_CLIENT_CONN", _PGBOUNCER_MAX_CLIENT, assumptions)
        urls = (env.configured("PGBOUNCER_URLS") or "DATABASE_URL").split()
        if len(urls) > 1:
            assumptions.append(f"PgBouncer pools {len(urls)} database URLs; counted the pool of one database")
        if client > max_client:
            assumptions.append(
                f"each dyno asks for {client} client connections but PGBOUNCER_MAX_CLIENT_CONN is "
                f"{max_client}: the rest are refused"
            )
        server_side = min(client, pool + reserve)
        detail = (
            f"PgBouncer default pool {pool} + reserve {reserve}; the app side asks for "
            f"{_n(processes, proc_noun)} × {_n(per_process, conn_noun)}"
            + (f" + {extra}" if extra else "")
            + " per dyno"
        )
        processes, per_process, extra, extra_labels = 1, server_side, 0, []
        proc_noun, conn_noun = "PgBouncer", "server connection"

    per_dyno = processes * per_process + extra
    total = dynos * per_dyno
    lead = "1 release dyno" if transient else _n(dynos, "dyno")
    explanation = f"{lead} × {_n(processes, proc_noun)} × {_n(per_process, conn_noun)}"
    if extra:
        explanation += f" + {extra} ({', '.join(extra_labels)})"
    if detail:
        explanation += f" ({detail})"
    if transient:
        assumptions.append("the release phase runs one dyno per deploy, next to the running dynos")
    elif quantity == 0:
        assumptions.append(f"scaled to 0: each dyno would open {per_dyno}")
    return BudgetLine(
        process_type=ptype,
        command=command,
        dynos=dynos,
        processes_per_dyno=processes,
        connections_per_process=per_process,
        extra_per_dyno=extra,
        total=total,
        server=main.server,
        framework=main.framework,
        explanation=explanation,
        assumptions=tuple(dict.fromkeys(assumptions)),
        behind_pgbouncer=reader.pgbouncer,
        client_per_dyno=client,
        transient=transient,
    )
