"""Postgres inspection and termination over the app's own credentials (psycopg 3).

Every query runs with a short statement timeout. Connection strings are never
logged or put in an error message: psycopg errors are mapped at `_connect` to
`DatabaseFull` / `DatabaseUnreachable` carrying only the server's own sentence.

pgconn keeps one *reserved* connection per watched database (application_name
`pgconn-reserved`): opened while the role has room, it lets pgconn read holders
and terminate backends when the role is at its limit. It costs the app one of its
slots, which the connection budget counts in its headroom line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict

from bot.errors import DatabaseError, DatabaseFull, DatabaseUnreachable
from bot.readings import Activity, Backend, HolderGroup, Holders

log = logging.getLogger(__name__)

RESERVED_APPLICATION_NAME = "pgconn-reserved"
ADHOC_APPLICATION_NAME = "pgconn"
OWN_APPLICATION_NAMES = (RESERVED_APPLICATION_NAME, ADHOC_APPLICATION_NAME)

_HOLDERS_SQL = """
SELECT coalesce(application_name, ''), coalesce(usename, ''),
       coalesce(host(client_addr), 'local'),
       count(*),
       count(*) FILTER (WHERE state = 'active'),
       count(*) FILTER (WHERE state = 'idle'),
       count(*) FILTER (WHERE state LIKE 'idle in transaction%%'),
       max(extract(epoch FROM now() - state_change)) FILTER (WHERE state = 'idle'),
       max(extract(epoch FROM now() - xact_start)) FILTER (WHERE state LIKE 'idle in transaction%%'),
       count(*) FILTER (WHERE usename = current_user)
FROM pg_stat_activity
WHERE backend_type = 'client backend'
GROUP BY 1, 2, 3
ORDER BY 4 DESC, 1
"""

_COUNT_SQL = """
SELECT count(*) FROM pg_stat_activity WHERE usename = current_user AND backend_type = 'client backend'
"""

_LIMITS_SQL = """
SELECT current_user,
       (SELECT rolconnlimit FROM pg_roles WHERE rolname = current_user),
       current_setting('max_connections')::int
"""

# The backends a diagnosis looks at, not every backend: those idle in transaction, those
# whose query or transaction is older than %(older_than)s, those waiting on a lock and
# whoever they wait for. pg_blocking_pids takes the lock manager's locks, so it runs only
# for backends that wait on a lock. Only the start of the query text is read: it may
# carry data, and the diagnosis shows a shortened form at most.
_BACKENDS_SQL = """
WITH a AS MATERIALIZED (
    SELECT pid, application_name, usename, client_addr, state, query_start, xact_start,
           state_change, query,
           CASE WHEN wait_event_type = 'Lock' THEN pg_blocking_pids(pid) END AS blocked_by
    FROM pg_stat_activity
    WHERE backend_type = 'client backend'
      AND pid <> pg_backend_pid()
      AND coalesce(application_name, '') NOT IN ('pgconn-reserved', 'pgconn')
)
SELECT pid, coalesce(application_name, ''), coalesce(usename, ''),
       coalesce(host(client_addr), 'local'), coalesce(state, ''),
       extract(epoch FROM now() - query_start),
       extract(epoch FROM now() - xact_start),
       extract(epoch FROM now() - state_change),
       coalesce(blocked_by, '{}'),
       (SELECT CASE l.locktype
                   WHEN 'transactionid' THEN 'a row lock'
                   WHEN 'tuple' THEN 'a row lock on ' || l.relation::regclass::text
                   ELSE l.mode || ' on ' || coalesce(l.relation::regclass::text, l.locktype)
               END
        FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted LIMIT 1),
       left(coalesce(query, ''), %(query_chars)s)
FROM a
WHERE state LIKE 'idle in transaction%%'
   OR cardinality(blocked_by) > 0
   OR pid IN (SELECT unnest(blocked_by) FROM a)
   OR (state = 'active' AND now() - query_start >= make_interval(secs => %(older_than)s))
   OR now() - xact_start >= make_interval(secs => %(older_than)s)
ORDER BY coalesce(xact_start, query_start) NULLS LAST
LIMIT %(max_rows)s
"""
QUERY_CHARS = 200
MAX_BACKENDS = 500

# Backends of this role other than pgconn's own; idle ones only when asked.
_TERMINATE_SQL = """
WITH mine AS (
    SELECT pid, state, state_change FROM pg_stat_activity
    WHERE usename = current_user
      AND backend_type = 'client backend'
      AND pid <> pg_backend_pid()
      AND coalesce(application_name, '') NOT IN ('pgconn-reserved', 'pgconn')
)
SELECT array_agg(pid) FILTER (
           WHERE (%(idle_only)s IS FALSE
                  OR (state IN ('idle', 'idle in transaction', 'idle in transaction (aborted)')
                      AND now() - state_change >= make_interval(secs => %(older_than)s)))
             AND pg_terminate_backend(pid)),
       count(*)
FROM mine
"""
# pg_terminate_backend only sends SIGTERM: "terminated 4 of 4" must not be said while the
# backends still hold their slots (a busy machine takes a while to let them exit). The
# per-backend `timeout` argument (PostgreSQL 14+) would wait for each in turn; signalling all
# first and then waiting for all keeps a slow one from delaying the others. Each autocommit
# statement reads a fresh pg_stat_activity snapshot.
_STILL_THERE_SQL = "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%(pids)s)"
TERMINATE_WAIT_S = 5.0


_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def sslmode_for(dsn: str) -> str:
    """Encrypted whatever the URL says (the keyword argument overrides the URL's own sslmode):
    the connection carries the app's password and its query text. "require" rather than
    "verify-full": Heroku Postgres serves certificates libpq cannot verify by name. A database
    on this machine's loopback (the sandbox, local tests; never Heroku's) gets "prefer": TLS when
    the server offers it, as the suite's does, and no refusal from a local build without TLS."""
    try:
        host = str(conninfo_to_dict(dsn).get("host") or "")
    except psycopg.ProgrammingError:
        return "require"
    return "prefer" if host in _LOOPBACK else "require"


@dataclass(frozen=True)
class Termination:
    terminated: int
    candidates: int  # the role's backends that are not pgconn's own, before terminating


def _safe_reason(exc: BaseException) -> str:
    """The server's sentence without anything that could carry a secret."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    text = primary or str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    text = re.sub(r"postgres(ql)?://\S+", "<database url>", text)
    text = re.sub(r"password=\S+", "password=<hidden>", text)
    text = re.sub(r"^(connection failed: )?connection to server at [^:]+ failed: ", "", text)
    return re.sub(r"^FATAL:\s+", "", text).strip()


def _is_full(exc: BaseException) -> bool:
    if isinstance(exc, pg_errors.TooManyConnections):
        return True
    text = str(exc)
    return (
        "too many connections" in text
        or "remaining connection slots are reserved" in text
        or ("too many clients" in text)
    )


class PostgresInspector:
    """Reads holders and terminates backends; owns the reserved connections."""

    def __init__(self, *, statement_timeout_ms: int = 3000, connect_timeout_s: int = 3) -> None:
        self._statement_timeout_ms = statement_timeout_ms
        self._connect_timeout_s = connect_timeout_s
        self._reserved: dict[str, psycopg.AsyncConnection[Any]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def _connect(self, dsn: str, application_name: str) -> psycopg.AsyncConnection[Any]:
        """A connection of pgconn's own; its sslmode is pgconn's choice (sslmode_for), not the URL's."""
        try:
            return await psycopg.AsyncConnection.connect(
                dsn,
                autocommit=True,
                sslmode=sslmode_for(dsn),
                application_name=application_name,
                connect_timeout=self._connect_timeout_s,
                options=f"-c statement_timeout={self._statement_timeout_ms}",
            )
        except psycopg.Error as exc:
            reason = _safe_reason(exc)
            if _is_full(exc):
                raise DatabaseFull(f"the role has no free connection slot ({reason})") from None
            raise DatabaseUnreachable(f"could not connect to the database ({reason})") from None
        except OSError as exc:
            raise DatabaseUnreachable(f"could not connect to the database ({type(exc).__name__})") from None

    def _lock(self, dsn: str) -> asyncio.Lock:
        return self._locks.setdefault(dsn, asyncio.Lock())

    async def ensure_reserved(self, dsn: str) -> bool:
        """Open (or re-open) the reserved connection; False when the role is full now."""
        async with self._lock(dsn):
            conn = self._reserved.get(dsn)
            if conn is not None and not conn.closed:
                try:
                    await conn.execute("SELECT 1")
                    return True
                except psycopg.Error:
                    log.info("reserved connection was lost; re-opening")
                    await _close_quietly(conn)
            self._reserved.pop(dsn, None)
            try:
                self._reserved[dsn] = await self._connect(dsn, RESERVED_APPLICATION_NAME)
            except DatabaseFull:
                return False
            return True

    async def count_reserved(self, dsn: str) -> int | None:
        """The role's connections (pgconn's own included), over the reserved connection only;
        None without one. Never opens a connection: a periodic count must not take the slot
        it is counting (bot.forecast)."""
        async with self._lock(dsn):
            conn = self._reserved.get(dsn)
            if conn is None or conn.closed:
                return None
            try:
                row = await (await conn.execute(_COUNT_SQL)).fetchone()
            except psycopg.Error:
                return None
        return int(row[0]) if row else None

    def has_reserved(self, dsn: str) -> bool:
        conn = self._reserved.get(dsn)
        return conn is not None and not conn.closed

    async def _run(self, dsn: str, query: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return (await self._run_many(dsn, [(query, params)]))[0]

    async def _run_many(
        self, dsn: str, statements: list[tuple[str, dict[str, Any] | None]]
    ) -> list[list[tuple[Any, ...]]]:
        """Run statements in one pipeline (one round trip), on the reserved connection when
        there is one, else on a short-lived one."""
        async with self._lock(dsn):
            conn = self._reserved.get(dsn)
            if conn is not None and not conn.closed:
                try:
                    return await _pipeline(conn, statements)
                except (psycopg.OperationalError, psycopg.InterfaceError):
                    # Terminated or the server restarted: drop it and try a fresh one.
                    log.info("reserved connection failed; falling back to a new connection")
                    await _close_quietly(conn)
                    self._reserved.pop(dsn, None)
                except psycopg.Error as exc:
                    raise DatabaseError(f"query failed ({_safe_reason(exc)})") from None
        conn = await self._connect(dsn, ADHOC_APPLICATION_NAME)
        try:
            return await _pipeline(conn, statements)
        except psycopg.Error as exc:
            raise DatabaseError(f"query failed ({_safe_reason(exc)})") from None
        finally:
            await _close_quietly(conn)

    async def holders(self, dsn: str) -> Holders:
        limits, rows = await self._run_many(dsn, [(_LIMITS_SQL, None), (_HOLDERS_SQL, None)])
        role, conn_limit, max_conn = limits[0]
        return build_holders(role, conn_limit, max_conn, rows)

    async def activity(self, dsn: str, *, older_than_s: float) -> Activity:
        """Holders plus the backends a diagnosis looks at, in the same round trip (read-only)."""
        limits, rows, backends = await self._run_many(
            dsn,
            [
                (_LIMITS_SQL, None),
                (_HOLDERS_SQL, None),
                (
                    _BACKENDS_SQL,
                    {"older_than": older_than_s, "query_chars": QUERY_CHARS, "max_rows": MAX_BACKENDS},
                ),
            ],
        )
        role, conn_limit, max_conn = limits[0]
        return Activity(
            holders=build_holders(role, conn_limit, max_conn, rows), backends=build_backends(backends)
        )

    async def terminate(self, dsn: str, *, idle_older_than_s: int | None = None) -> Termination:
        rows = await self._run(
            dsn,
            _TERMINATE_SQL,
            {"idle_only": idle_older_than_s is not None, "older_than": idle_older_than_s or 0},
        )
        pids, candidates = rows[0]
        if pids:
            await self._wait_gone(dsn, list(pids))
        return Termination(terminated=len(pids or ()), candidates=int(candidates or 0))

    async def _wait_gone(self, dsn: str, pids: list[int]) -> None:
        """Until the signalled backends have exited, at most TERMINATE_WAIT_S (then they are
        reported as terminated anyway: the signal was delivered and they are on their way out)."""
        deadline = time.monotonic() + TERMINATE_WAIT_S
        while time.monotonic() < deadline:
            rows = await self._run(dsn, _STILL_THERE_SQL, {"pids": pids})
            if not rows[0][0]:
                return
            await asyncio.sleep(0.02)
        log.warning(
            "terminated backends still there after %.0fs (of %d signalled)", TERMINATE_WAIT_S, len(pids)
        )

    async def close(self) -> None:
        for conn in self._reserved.values():
            await _close_quietly(conn)
        self._reserved.clear()


def build_holders(
    role: str, conn_limit: int | None, max_connections: int, rows: list[tuple[Any, ...]]
) -> Holders:
    """Aggregate rows of _HOLDERS_SQL into Holders. Pure."""
    groups: list[HolderGroup] = []
    states = {"active": 0, "idle": 0, "idle in transaction": 0, "other": 0}
    oldest_idle: float | None = None
    longest_tx: float | None = None
    role_total = server_total = 0
    for app_name, user, addr, total, active, idle, iit, idle_age, tx_age, mine in rows:
        other = int(total) - int(active) - int(idle) - int(iit)
        groups.append(
            HolderGroup(
                application_name=str(app_name),
                usename=str(user),
                client_addr=str(addr),
                total=int(total),
                active=int(active),
                idle=int(idle),
                idle_in_transaction=int(iit),
                other=other,
                oldest_idle_s=_seconds(idle_age),
                longest_idle_in_tx_s=_seconds(tx_age),
            )
        )
        states["active"] += int(active)
        states["idle"] += int(idle)
        states["idle in transaction"] += int(iit)
        states["other"] += other
        server_total += int(total)
        role_total += int(mine)
        if idle_age is not None:
            oldest_idle = max(oldest_idle or 0.0, float(idle_age))
        if tx_age is not None:
            longest_tx = max(longest_tx or 0.0, float(tx_age))
    return Holders(
        role=str(role),
        role_limit=None if conn_limit is None or int(conn_limit) < 0 else int(conn_limit),
        max_connections=int(max_connections),
        role_connections=role_total,
        server_connections=server_total,
        groups=tuple(groups),
        state_counts=states,
        oldest_idle_s=oldest_idle,
        longest_idle_in_tx_s=longest_tx,
    )


def build_backends(rows: list[tuple[Any, ...]]) -> tuple[Backend, ...]:
    """Rows of _BACKENDS_SQL as Backends. Pure."""
    return tuple(
        Backend(
            pid=int(pid),
            application_name=str(app_name),
            usename=str(user),
            client_addr=str(addr),
            state=str(state),
            query_age_s=_seconds(query_age),
            xact_age_s=_seconds(xact_age),
            state_age_s=_seconds(state_age),
            blocked_by=tuple(int(p) for p in blocked_by or ()),
            waiting_for=str(waiting_for) if waiting_for else None,
            query=str(query),
        )
        for (
            pid,
            app_name,
            user,
            addr,
            state,
            query_age,
            xact_age,
            state_age,
            blocked_by,
            waiting_for,
            query,
        ) in rows
    )


def _seconds(value: Any) -> float | None:
    # extract(epoch …) arrives as Decimal; NULL when the server left the timestamp empty.
    return float(value) if value is not None else None


async def _pipeline(
    conn: psycopg.AsyncConnection[Any], statements: list[tuple[str, dict[str, Any] | None]]
) -> list[list[tuple[Any, ...]]]:
    # One round trip for all of them: the report's latency is mostly round trips.
    async with conn.pipeline():
        cursors = [await conn.execute(query, params) for query, params in statements]
    return [await cur.fetchall() for cur in cursors]


async def _close_quietly(conn: psycopg.AsyncConnection[Any]) -> None:
    # Closing a dead connection may fail in many ways; none of them matter.
    with contextlib.suppress(Exception):
        await conn.close()
