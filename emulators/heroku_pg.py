"""The Heroku emulator's hands on the real Postgres: count and terminate an app role's backends.

Heroku's effects on a database are modelled for real: a dyno restart or a connection
reset terminates the role's backends with `pg_terminate_backend`, and pg:info's
"Connections" is the live count from `pg_stat_activity`. A superuser DSN (`admin_dsn`)
does this; one short-lived connection per call keeps the emulator stateless towards
the server (a restarted Postgres needs no reconnect logic).

Which backends belong to which dyno: the convention is the backend's
`application_name`. A dyno named `web.1` connects with application_name `web.1`
(optionally followed by a non-digit suffix, e.g. `web.1 gunicorn`). Restarting
process type `web` terminates backends named `web.*`; restarting dyno `web.1`
terminates `web.1` (not `web.12`). Restarting every dyno terminates all the role's
backends except those whose application_name starts with one of the emulator's
`external_application_prefixes` (default `pgconn`): those run outside the app's dynos
— the bot's own reserved connection survives a dyno restart as it would on Heroku.
A connection reset (pg:killall) terminates every backend of the role, as Heroku's does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg.conninfo import make_conninfo

# Wait for terminated backends to be gone before answering, so that "the API call
# returned" means "the connections are free" — clients (and tests) can count right after.
_TERMINATE_WAIT_S = 5.0


@dataclass(frozen=True)
class Backend:
    pid: int
    application_name: str
    state: str


@dataclass(frozen=True)
class DatabaseFacts:
    """What pg:info reports that only the real server knows."""

    connections: int
    version: str
    size_bytes: int
    tables: int
    rows: int


def database_name(database_url: str) -> str:
    return unquote(urlsplit(database_url).path.lstrip("/")) or "postgres"


def belongs_to_type(process_type: str) -> Callable[[str], bool]:
    prefix = process_type + "."
    return lambda name: name.startswith(prefix)


def belongs_to_dyno(dyno: str) -> Callable[[str], bool]:
    def match(name: str) -> bool:
        if not name.startswith(dyno):
            return False
        rest = name[len(dyno):]
        return rest == "" or not rest[0].isdigit()

    return match


def not_external(prefixes: Sequence[str]) -> Callable[[str], bool]:
    return lambda name: not any(name.startswith(p) for p in prefixes)


class PostgresEffects:
    def __init__(self, admin_dsn: str) -> None:
        self._admin_dsn = admin_dsn

    async def _connect(self, dbname: str | None = None) -> psycopg.AsyncConnection:
        kwargs = {"dbname": dbname} if dbname else {}
        conninfo = make_conninfo(self._admin_dsn, application_name="heroku-emulator", **kwargs)
        return await psycopg.AsyncConnection.connect(conninfo, autocommit=True, connect_timeout=5)

    async def backends(self, role: str) -> list[Backend]:
        async with await self._connect() as conn:
            cur = await conn.execute(
                "SELECT pid, coalesce(application_name, ''), coalesce(state, '') "
                "FROM pg_stat_activity WHERE usename = %s AND pid <> pg_backend_pid()",
                (role,),
            )
            return [Backend(int(r[0]), str(r[1]), str(r[2])) for r in await cur.fetchall()]

    async def terminate(self, role: str, select: Callable[[str], bool] | None = None) -> int:
        """Terminate the role's backends whose application_name `select` accepts; count them."""
        pids = [b.pid for b in await self.backends(role) if select is None or select(b.application_name)]
        if not pids:
            return 0
        async with await self._connect() as conn:
            cur = await conn.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) "
                "FROM unnest(%s::int[]) AS pid",
                (pids,),
            )
            row = await cur.fetchone()
            # Signal all at once, then poll: pg_terminate_backend's own wait sleeps 100 ms
            # per backend, which would make a 20-connection reset take two seconds.
            deadline = time.monotonic() + _TERMINATE_WAIT_S
            while time.monotonic() < deadline:
                cur = await conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)
                )
                left = await cur.fetchone()
                if not left or not left[0]:
                    break
                await asyncio.sleep(0.005)
        return int(row[0]) if row else 0

    async def facts(self, role: str, database_url: str) -> DatabaseFacts:
        dbname = database_name(database_url)
        async with await self._connect(dbname) as conn:
            cur = await conn.execute(
                "SELECT (SELECT count(*) FROM pg_stat_activity WHERE usename = %s),"
                " current_setting('server_version'),"
                " pg_database_size(current_database()),"
                " (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                "   WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog',"
                "   'information_schema') AND n.nspname NOT LIKE 'pg_toast%%'),"
                " (SELECT coalesce(sum(n_live_tup), 0) FROM pg_stat_user_tables)",
                (role,),
            )
            row = await cur.fetchone()
        assert row is not None  # an aggregate-only SELECT always returns one row
        return DatabaseFacts(
            connections=int(row[0]),
            version=str(row[1]).split()[0],
            size_bytes=int(row[2]),
            tables=int(row[3]),
            rows=int(row[4]),
        )
