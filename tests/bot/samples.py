"""Real-looking Heroku drain lines and logplex bodies, for any test that needs them.

Builders return the syslog message *without* its octet count and trailing
newline; frame() adds both, the way logplex does.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

TS = "2024-05-01T12:00:00.123456+00:00"
ADDON = "postgresql-curved-12345"
ROLE = "u8a3kd0bq2lfs1"
HOST = "ec2-52-1-2-3.compute-1.amazonaws.com"

# PRI values Heroku uses: 190 = local7.info (app output), 158 = local3.info
# (router), 134 = local0.info (add-on metrics), 45 = syslog.notice (dyno manager).


def syslog(
    msg: str,
    *,
    app: str = "app",
    proc: str = "web.1",
    pri: int = 190,
    ts: str = TS,
    host: str = "host",
) -> str:
    """One RFC 5424 message as Heroku writes it: one "-" and no structured data."""
    return f"<{pri}>1 {ts} {host} {app} {proc} - {msg}"


def app_line(msg: str, proc: str = "web.1", ts: str = TS) -> str:
    """A line of the app's own output (stdout/stderr of a dyno)."""
    return syslog(msg, app="app", proc=proc, ts=ts)


def router_line(path: str = "/", status: int = 200, dyno: str = "web.1") -> str:
    return syslog(
        f'at=info method=GET path="{path}" host=my-app.herokuapp.com '
        f'request_id=2f1c9d1e-8f4b-4a43-9b3e-6f0c1d2e3f4a fwd="203.0.113.7" '
        f"dyno={dyno} connect=0ms service=14ms status={status} bytes=1523 protocol=https",
        app="heroku",
        proc="router",
        pri=158,
    )


def metric_line(
    active: int,
    waiting: int = 0,
    addon: str = ADDON,
    source: str = "DATABASE",
    ts: str = TS,
) -> str:
    """A heroku-postgres metrics line (Standard and larger plans log one every few minutes)."""
    return syslog(
        f"source={source} addon={addon} sample#current_transaction=1873 "
        f"sample#db_size=11213455bytes sample#tables=36 sample#active-connections={active} "
        f"sample#waiting-connections={waiting} sample#index-cache-hit-rate=0.99 "
        f"sample#table-cache-hit-rate=0.99 sample#load-avg-1m=0.03 sample#load-avg-5m=0.04 "
        f"sample#load-avg-15m=0.05 sample#read-iops=0 sample#write-iops=0.5 "
        f"sample#memory-total=3944536kB sample#memory-free=186676kB "
        f"sample#memory-cached=3167600kB sample#memory-postgres=25416kB "
        f"sample#wal-percentage-used=0.0665",
        app="app",
        proc="heroku-postgres",
        pri=134,
        ts=ts,
    )


# The same server refusal as each client library prints it. {role} and {host}
# are filled in by fatal_message(). libpq puts two spaces after "FATAL:".
FATAL_FORMS: dict[str, str] = {
    "libpq": 'FATAL:  too many connections for role "{role}"',
    "rails": 'PG::ConnectionBad: FATAL:  too many connections for role "{role}"',
    "rails7": (
        'ActiveRecord::ConnectionNotEstablished: connection to server at "{host}" '
        '(52.1.2.3), port 5432 failed: FATAL:  too many connections for role "{role}"'
    ),
    "sequel": (
        "Sequel::DatabaseConnectionError: PG::ConnectionBad: FATAL:  too many "
        'connections for role "{role}"'
    ),
    "django": (
        'django.db.utils.OperationalError: connection to server at "{host}" '
        '(52.1.2.3), port 5432 failed: FATAL:  too many connections for role "{role}"'
    ),
    "psycopg2": 'psycopg2.OperationalError: FATAL:  too many connections for role "{role}"',
    "psycopg3": (
        'psycopg.OperationalError: connection failed: connection to server at "52.1.2.3", '
        'port 5432 failed: FATAL:  too many connections for role "{role}"'
    ),
    "sqlalchemy": (
        "sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) FATAL:  too many "
        'connections for role "{role}"'
    ),
    "node-pg": 'error: too many connections for role "{role}"',
    "prisma": (
        "PrismaClientInitializationError: Error querying the database: db error: FATAL: "
        'too many connections for role "{role}"'
    ),
    "go-pq": 'pq: too many connections for role "{role}"',
    "pgx": 'FATAL: too many connections for role "{role}" (SQLSTATE 53300)',
    "jdbc": 'org.postgresql.util.PSQLException: FATAL: too many connections for role "{role}"',
    "postgrex": (
        "** (DBConnection.ConnectionError) FATAL 53300 (too_many_connections) too many "
        'connections for role "{role}"'
    ),
    "json": (
        '{{"level":"error","msg":"could not connect","error":"FATAL:  too many connections '
        'for role \\"{role}\\""}}'
    ),
}


def fatal_message(role: str = ROLE, form: str = "rails") -> str:
    return FATAL_FORMS[form].format(role=role, host=HOST)


def fatal_line(role: str = ROLE, form: str = "rails", proc: str = "web.1") -> str:
    """An app line carrying Postgres's "too many connections for role" refusal."""
    return app_line(fatal_message(role, form), proc=proc)


def reserved_line(proc: str = "worker.1") -> str:
    return app_line(
        "PG::ConnectionBad: FATAL:  remaining connection slots are reserved for "
        "non-replication superuser connections",
        proc=proc,
    )


def frame(lines: Iterable[str], newline: bool = True) -> bytes:
    """A logplex-1 body: each line UTF-8 encoded, newline-terminated, octet-counted."""
    return frame_bytes(
        (line + "\n" if newline else line).encode("utf-8") for line in lines
    )


def frame_bytes(messages: Iterable[bytes]) -> bytes:
    """Octet-count raw messages (for bodies with non-UTF-8 bytes)."""
    return b"".join(b"%d %s" % (len(m), m) for m in messages)


def logplex_headers(msg_count: int, frame_id: str | None = None) -> dict[str, str]:
    """The headers logplex sends with a body of `msg_count` messages (auth not included).

    Every frame logplex sends has its own id (a retry re-sends the same one): a fresh id
    unless `frame_id` names one."""
    if frame_id is None:
        frame_id = secrets.token_hex(16).upper()
    return {
        "Content-Type": "application/logplex-1",
        "Logplex-Msg-Count": str(msg_count),
        "Logplex-Frame-Id": frame_id,
        "Logplex-Drain-Token": "d.fc6b856b-3332-4546-93de-7d0ee272c3bd",
        "User-Agent": "Logplex/v123",
    }
