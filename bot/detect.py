"""Connection-exhaustion signals in drain lines and Slack messages. Pure: no I/O.

Three things count as a signal in a drain:

- too_many_connections: Postgres refused a connection because the role (or
  the database, or the whole server: "sorry, too many clients already") is at
  its limit. It reaches the logs wrapped by whatever client the app uses —
  `PG::ConnectionBad: FATAL:  too many connections for role "u1"` (libpq puts
  two spaces after "FATAL:"), `psycopg2.OperationalError: ...`, node-postgres'
  `error: too many connections for role "u1"`, Go's `pq: ...`, Prisma's
  `db error: FATAL: ...`, Postgrex's `FATAL 53300 (too_many_connections) ...`,
  JSON loggers' `\\"u1\\"` — so the rule matches the server's own phrase, not
  the wrappers, and every wrapper works.
- reserved_slots: the server-wide limit minus superuser_reserved_connections
  is reached ("remaining connection slots are reserved for ..."; PG 16 has
  two new wordings, same prefix).
- metrics: a heroku-postgres metrics line; whether its active-connections
  count is a problem is for classify() against the plan's limit.

Lines from the platform itself (app_name "heroku": router, API, dyno manager)
are never error signals: they describe requests and dynos, and a router line
can carry the phrase in a request path. Lines whose syslog header did not
parse (app_name "") are still checked: a FATAL line is worth an alert even
from an odd sender. Application-side pool timeouts (ActiveRecord's "could
not obtain a connection from the pool", SQLAlchemy's "QueuePool limit") are
not signals: the database is not full, the process's own pool is.

Most lines match nothing, so detect() rejects them with one or two substring
checks before any regex runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Literal

from bot.drain import LogLine

SignalKind = Literal["too_many_connections", "reserved_slots", "metrics"]

EXCERPT_CHARS = 300
# How much text before the match an excerpt keeps: enough for the exception
# class and "connection to server at ... failed:" that say which client/host.
_EXCERPT_LEAD = 160

# Cheap pre-filters. Every error phrase and the metrics key contain
# "onnection" (also catching a capitalised "Connection"), except Postgres's
# server-wide "sorry, too many clients already".
_NEEDLE = "onnection"
_NEEDLE_CLIENTS = "too many clients"
_METRICS_KEY = "sample#active-connections="
_PG_METRICS_PROC = "heroku-postgres"
# heroku-redis and pgbouncer metrics lines carry sample#active-connections too;
# only heroku-postgres's are about the database.

# The role is quoted by the server; JSON loggers escape the quotes (\"u1\").
_TOO_MANY_RE = re.compile(
    r'too many connections for (?P<what>role|database)(?: \\?"(?P<name>[^"\\]*)\\?")?'
)
_RESERVED_RE = re.compile(r"remaining connection slots are reserved")
_CLIENTS_RE = re.compile(r"sorry, too many clients already")

# ASCII digits, at most 9 of them: int() of a 5,000-digit run raises
# ValueError (Python's int max_str_digits), and no count is that big.
_ACTIVE_RE = re.compile(r"sample#active-connections=([0-9]{1,9})(?![0-9])")
_WAITING_RE = re.compile(r"sample#waiting-connections=([0-9]{1,9})(?![0-9])")
_ADDON_RE = re.compile(r"(?:^| )addon=(\S+)")
_SOURCE_RE = re.compile(r"(?:^| )source=(\S+)")
# Postgres's own log lines (proc "postgres.1234") start with the attachment in
# brackets: "[DATABASE] [9-1] sql_error_code = 53300 FATAL: ...".
_PG_LOG_DB_RE = re.compile(r"\[([A-Z][A-Z0-9_]*)\]")


@dataclass(frozen=True, slots=True)
class Signal:
    """Evidence of connection pressure from one drain line."""

    kind: SignalKind
    app_proc: str  # proc_id of the line: "web.3", "heroku-postgres", "postgres.1234", "" if unknown
    role: str | None  # from `for role "u1"`; None when the message does not name it
    database: str | None  # addon name (metrics), attachment ("DATABASE") or None
    active: int | None  # metrics only
    waiting: int | None  # metrics only
    excerpt: str  # the matched text, at most ~EXCERPT_CHARS characters
    timestamp: str


class Severity(StrEnum):
    """How close a connection count is to the plan's limit.

    A StrEnum, so Severity.WARN == "warn" and it serialises as the plain string.
    """

    OK = "ok"
    WARN = "warn"
    CRITICAL = "critical"


def classify(
    active: int, limit: int, warn_share: float = 0.8, critical_share: float = 0.95
) -> Severity:
    """Severity of `active` connections against a `limit`.

    Boundaries are inclusive: active/limit >= critical_share is CRITICAL, >=
    warn_share is WARN. The comparison divides rather than multiplies because
    a correctly rounded active/limit equals the share literal exactly when the
    product is a whole number (19/20 == 0.95, 96/120 == 0.8), whereas
    0.95 * 20 might land a hair off 19. Counts above the limit (superuser or
    replication connections) are CRITICAL. A limit <= 0 is a caller bug:
    ValueError.
    """
    if limit <= 0:
        raise ValueError(f"connection limit must be positive, got {limit}")
    share = active / limit
    if share >= critical_share:
        return Severity.CRITICAL
    if share >= warn_share:
        return Severity.WARN
    return Severity.OK


def detect(line: LogLine) -> Signal | None:
    """The connection-exhaustion signal carried by one drain line, or None."""
    msg = line.message
    if _NEEDLE not in msg and _NEEDLE_CLIENTS not in msg:
        return None
    if _PG_METRICS_PROC in (line.proc_id, line.app_name) and _METRICS_KEY in msg:
        return _metrics(line)
    if line.app_name == "heroku":
        return None
    return _error(line)


def detect_all(lines: Iterable[LogLine]) -> list[Signal]:
    """Every signal in `lines`, in order."""
    out: list[Signal] = []
    for line in lines:
        sig = detect(line)
        if sig is not None:
            out.append(sig)
    return out


def _metrics(line: LogLine) -> Signal | None:
    msg = line.message
    active = _ACTIVE_RE.search(msg)
    if active is None:
        return None
    waiting = _WAITING_RE.search(msg)
    addon = _ADDON_RE.search(msg)
    source = _SOURCE_RE.search(msg)
    database = addon.group(1) if addon else source.group(1) if source else None
    return Signal(
        kind="metrics",
        app_proc=line.proc_id,
        role=None,
        database=database,
        active=int(active.group(1)),
        waiting=int(waiting.group(1)) if waiting else None,
        excerpt=_excerpt(msg, 0),
        timestamp=line.timestamp,
    )


def _error(line: LogLine) -> Signal | None:
    msg = line.message
    kind: SignalKind
    role: str | None = None
    m = _TOO_MANY_RE.search(msg)
    if m is not None:
        kind = "too_many_connections"
        # "for database \"x\"" names a database (datconnlimit), not a role.
        if m.group("what") == "role" and m.group("name"):
            role = m.group("name")
    elif (m := _RESERVED_RE.search(msg)) is not None:
        kind = "reserved_slots"
    elif (m := _CLIENTS_RE.search(msg)) is not None:
        kind = "too_many_connections"
    else:
        return None
    database = None
    if line.proc_id.startswith("postgres"):
        db = _PG_LOG_DB_RE.match(msg)
        database = db.group(1) if db else None
    return Signal(
        kind=kind,
        app_proc=line.proc_id,
        role=role,
        database=database,
        active=None,
        waiting=None,
        excerpt=_excerpt(msg, m.start()),
        timestamp=line.timestamp,
    )


def _excerpt(msg: str, at: int) -> str:
    """At most EXCERPT_CHARS (+ ellipses) of `msg`, keeping some lead-in before `at`."""
    if len(msg) <= EXCERPT_CHARS:
        return msg
    start = max(0, min(at - _EXCERPT_LEAD, len(msg) - EXCERPT_CHARS))
    end = start + EXCERPT_CHARS
    return ("…" if start else "") + msg[start:end] + ("…" if end < len(msg) else "")


# --- Slack messages from other alerting tools and people ---------------------

# Phrases that say "the database is out of connections", in the words alert
# tools and people use. Matched on lowercased, de-linked text.
_EXHAUSTION_RE = re.compile(
    r"too many (?:db |database |postgres(?:ql)? |pg |open |active )?(?:connections|clients)"
    r"|connection slots"
    r"|connections? (?:limit|pool) (?:reached|exceeded|hit|maxed)"
    r"|(?:reach(?:ed|ing)?|hit(?:ting)?|exceed(?:ed|ing|s)?|at|over|maxed out) "
    r"(?:the |its |their |our |max(?:imum)? |db |database |postgres |pg )*"
    r"(?:connection limit|max(?:imum)? connections)"
    r"|max(?:imum)? connections (?:reached|exceeded|hit)"
    r"|connections? (?:pool |slots )?(?:are |is |have been |has been |got |were )?"
    r"(?:exhausted|maxed out)"
    r"|connection exhaustion"
    r"|exhausted (?:the |all |its |db |database |postgres |pg )*connections"
    r"|out of (?:db |database |postgres |pg )?connections"
    r"|no (?:more )?(?:db |database )?connections? (?:available|left)"
    r"|\b53300\b"  # SQLSTATE too_many_connections, as Sentry titles often show it
)
# "connections at 98%", "connection usage is 95.5%", "Connections: 100%"
_PERCENT_RE = re.compile(r"connections?\b[^%\n]{0,30}?\b(\d{1,3}(?:\.\d+)?)\s?%")
# "Connections: 20/20" (pg:info pasted), "connections at 98% (196/200)"
_RATIO_RE = re.compile(r"connections?\b[^/\n]{0,30}?\b(\d{1,6})\s?/\s?(\d{1,6})\b")
# A share of the limit at or above this is "exhausted" when stated as a number.
_HIGH_SHARE = 0.9
# Recovery notices ("Resolved: ...", "Datadog: [Recovered] ...", Grafana's
# "[OK]", Opsgenie's "[Closed]") repeat the triggering text; answering them
# would be noise. A leading word, or a bracketed tag anywhere.
_RECOVERY_RE = re.compile(
    r"^\W*(?:resolved|recovered|closed)\b|\[(?:resolved|recovered|closed|ok)\]"
)

# Slack's own markup: <url|label>, <url>, <@U123>, <#C1|name>. A literal "<"
# typed by a person arrives as &lt;, so every raw "<...>" is markup.
_SLACK_LINK_RE = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")
_APP_CHARS = "a-z0-9-"  # Heroku app names: lowercase letters, digits, dashes


def mentions_exhaustion(text: str, apps: Iterable[str]) -> str | None:
    """The configured app that `text` says is out of database connections, or None.

    For messages posted by PagerDuty/Datadog/Sentry bots or people. The app
    must appear as a whole name, case-insensitively (`my-app` does not match
    inside `my-app-staging`); when several configured names appear, the
    longest wins, then the earliest in the text. Returned as configured.
    Recovery notices ("[Resolved] …", "Recovered: …") give None.
    """
    plain = _slack_to_plain(text).lower()
    if _RECOVERY_RE.search(plain) or not _says_exhausted(plain):
        return None
    return _named(plain, apps)


def names_app(text: str, apps: Iterable[str]) -> str | None:
    """The configured app `text` names (a whole name, case-insensitively; the longest, then the
    earliest), whatever it says about it: for "Diagnose with pgconn" on any message."""
    return _named(_slack_to_plain(text).lower(), apps)


def _named(plain: str, apps: Iterable[str]) -> str | None:
    best: tuple[int, int, str] | None = None  # (-len, position, app as configured)
    for app in apps:
        name = app.strip().lower()
        if not name:
            continue
        m = _app_re(name).search(plain)
        if m is not None:
            key = (-len(name), m.start(), app.strip())
            if best is None or key < best:
                best = key
    return best[2] if best else None


def _says_exhausted(plain: str) -> bool:
    if _EXHAUSTION_RE.search(plain):
        return True
    for m in _PERCENT_RE.finditer(plain):
        if float(m.group(1)) >= _HIGH_SHARE * 100:
            return True
    for m in _RATIO_RE.finditer(plain):
        used, limit = int(m.group(1)), int(m.group(2))
        if limit > 0 and used / limit >= _HIGH_SHARE:
            return True
    return False


def _slack_to_plain(text: str) -> str:
    # Links keep both label and URL (either may name the app: a Sentry link's
    # URL often carries the project), padded with spaces so the brackets and
    # "|" cannot glue a name to its neighbours. Entities are decoded after
    # links, so a literal "&lt;x|y&gt;" typed by a person is not taken as markup.
    def link(m: re.Match[str]) -> str:
        label = m.group(2)
        return f" {label} {m.group(1)} " if label is not None else f" {m.group(1)} "

    plain = _SLACK_LINK_RE.sub(link, text)
    return plain.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


@lru_cache(maxsize=256)
def _app_re(app: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![{_APP_CHARS}]){re.escape(app)}(?![{_APP_CHARS}])")
