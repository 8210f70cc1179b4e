"""Detection rules on real-looking drain lines, classify(), and Slack-message matching."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.detect import (
    EXCERPT_CHARS,
    Severity,
    Signal,
    classify,
    detect,
    detect_all,
    mentions_exhaustion,
)
from bot.drain import LogLine, parse_frames
from tests.bot.samples import (
    ADDON,
    FATAL_FORMS,
    ROLE,
    TS,
    app_line,
    fatal_line,
    fatal_message,
    frame,
    metric_line,
    reserved_line,
    router_line,
    syslog,
)


def one(line: str) -> LogLine:
    [parsed] = parse_frames(frame([line]))
    return parsed


# --- too many connections, in every client's words ------------------------------


@pytest.mark.parametrize("form", sorted(FATAL_FORMS))
def test_too_many_connections_for_role_in_every_client_form(form: str) -> None:
    sig = detect(one(fatal_line(role=ROLE, form=form, proc="web.3")))
    assert sig is not None
    assert sig.kind == "too_many_connections"
    assert sig.role == ROLE
    assert sig.app_proc == "web.3"
    assert sig.timestamp == TS
    assert (sig.active, sig.waiting, sig.database) == (None, None, None)
    assert "too many connections for role" in sig.excerpt


@pytest.mark.parametrize(
    ("message", "kind", "role"),
    [
        # Prisma and others sometimes drop the role.
        ("Error querying the database: db error: FATAL: too many connections for role",
         "too_many_connections", None),
        ("psycopg2.OperationalError: FATAL:  sorry, too many clients already",
         "too_many_connections", None),
        ("PG::ConnectionBad: FATAL:  sorry, too many clients already",
         "too_many_connections", None),
        ('FATAL:  too many connections for database "d9k2l3"', "too_many_connections", None),
        ("PG::ConnectionBad: FATAL:  remaining connection slots are reserved for "
         "non-replication superuser connections", "reserved_slots", None),
        # PostgreSQL 16 wordings.
        ('connection to server at "10.0.0.1", port 5432 failed: FATAL:  remaining connection '
         "slots are reserved for roles with the SUPERUSER attribute", "reserved_slots", None),
        ("FATAL:  remaining connection slots are reserved for roles with privileges of the "
         '"pg_use_reserved_connections" role', "reserved_slots", None),
        # A retry message still carries the refusal.
        ('Retrying in 2s (attempt 3/5) after: FATAL:  too many connections for role "abc"',
         "too_many_connections", "abc"),
        # A capitalised prefix is fine: the rule keys on the server's phrase.
        ('ConnectionError: too many connections for role "Abc-1"', "too_many_connections", "Abc-1"),
    ],
)
def test_error_rules(message: str, kind: str, role: str | None) -> None:
    sig = detect(one(app_line(message, proc="worker.2")))
    assert sig is not None
    assert (sig.kind, sig.role, sig.app_proc) == (kind, role, "worker.2")


def test_reserved_slots_sample() -> None:
    sig = detect(one(reserved_line(proc="worker.1")))
    assert sig is not None and sig.kind == "reserved_slots" and sig.app_proc == "worker.1"


def test_postgres_server_log_names_the_attachment() -> None:
    line = syslog(
        '[DATABASE] [12-1] sql_error_code = 53300 FATAL:  too many connections for role "u1"',
        proc="postgres.1234",
    )
    sig = detect(one(line))
    assert sig is not None
    assert (sig.kind, sig.role, sig.database, sig.app_proc) == (
        "too_many_connections", "u1", "DATABASE", "postgres.1234")


def test_unparsed_header_is_still_checked() -> None:
    sig = detect(LogLine("", "", "", "", 'garbled FATAL:  too many connections for role "x"'))
    assert sig is not None and sig.role == "x" and sig.app_proc == ""


# --- heroku-postgres metrics -----------------------------------------------------


def test_metrics_line() -> None:
    sig = detect(one(metric_line(19, waiting=2)))
    assert sig == Signal(
        kind="metrics",
        app_proc="heroku-postgres",
        role=None,
        database=ADDON,
        active=19,
        waiting=2,
        excerpt=sig.excerpt if sig else "",
        timestamp=TS,
    )
    assert sig is not None and len(sig.excerpt) <= EXCERPT_CHARS + 2


def test_metrics_devcenter_example_with_color_source() -> None:
    msg = ("source=HEROKU_POSTGRESQL_SILVER addon=postgresql-devcenter-123456 "
           "sample#current_transaction=54017686 sample#db_size=16012956319bytes sample#tables=97 "
           "sample#active-connections=7 sample#waiting-connections=0 "
           "sample#index-cache-hit-rate=0.9239 sample#table-cache-hit-rate=0.93609")
    sig = detect(one(syslog(msg, proc="heroku-postgres", pri=134)))
    assert sig is not None
    assert (sig.active, sig.waiting, sig.database) == (7, 0, "postgresql-devcenter-123456")


@pytest.mark.parametrize(("app", "proc"), [("heroku", "heroku-postgres"),
                                           ("heroku-postgres", "-")])
def test_metrics_from_other_spellings_of_the_source(app: str, proc: str) -> None:
    sig = detect(one(syslog("source=DATABASE sample#active-connections=5 "
                            "sample#waiting-connections=1", app=app, proc=proc)))
    assert sig is not None
    # No addon= field: the attachment (source) stands in for it.
    assert (sig.kind, sig.active, sig.waiting, sig.database) == ("metrics", 5, 1, "DATABASE")


def test_metrics_without_waiting_count() -> None:
    sig = detect(one(syslog(f"addon={ADDON} sample#active-connections=3", proc="heroku-postgres")))
    assert sig is not None and (sig.active, sig.waiting) == (3, None)


def test_metrics_with_absurd_counts_do_not_raise() -> None:
    huge = "9" * 5000
    line = syslog(f"addon=x sample#active-connections={huge} sample#waiting-connections=٣",
                  proc="heroku-postgres")
    assert detect(one(line)) is None


# --- lines that are not signals --------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        app_line("Started GET \"/\" for 203.0.113.7 at 2024-05-01 12:00:00 +0000"),
        app_line("connection established to postgres"),
        app_line("Opened connection to database (pool size 5)"),
        app_line("PG::ConnectionBad: could not translate host name \"x\" to address"),
        app_line('psycopg2.OperationalError: connection to server at "10.0.0.1", port 5432 '
                 "failed: Connection refused"),
        # The app's own pool is full, not the database: a different problem.
        app_line("ActiveRecord::ConnectionTimeoutError: could not obtain a connection from the "
                 "pool within 5.000 seconds (waited 5.001 seconds); all pooled connections were "
                 "in use"),
        app_line("sqlalchemy.exc.TimeoutError: QueuePool limit of size 5 overflow 10 reached, "
                 "connection timed out, timeout 30.00"),
        app_line("too many requests"),
        # Router lines describe requests; a path can carry any words.
        router_line(path="/search?q=FATAL:+too+many+connections+for+role+%22x%22"),
        router_line(path="/too many connections for role \"x\""),
        syslog('State changed from up to down: too many connections for role "x"',
               app="heroku", proc="web.1", pri=45),
        # heroku-redis and PgBouncer metrics carry similar keys but are not the database.
        syslog("source=REDIS addon=redis-cubed-12345 sample#active-connections=90 "
               "sample#load-avg-1m=0.1", proc="heroku-redis"),
        syslog("source=DATABASE sample#client_active_connections=10", proc="heroku-pgbouncer"),
        # A heroku-postgres line without the connection counts.
        syslog("source=DATABASE addon=x sample#db_size=123bytes connection",
               proc="heroku-postgres"),
        metric_line(19).replace("app heroku-postgres", "app web.1"),
    ],
)
def test_not_a_signal(line: str) -> None:
    assert detect(one(line)) is None


def test_detect_all_keeps_order_and_skips_noise() -> None:
    lines = parse_frames(frame([
        router_line(),
        fatal_line(role="a", form="django", proc="web.1"),
        app_line("normal"),
        metric_line(118, waiting=4),
        reserved_line(proc="worker.1"),
    ]))
    signals = detect_all(lines)
    assert [s.kind for s in signals] == ["too_many_connections", "metrics", "reserved_slots"]
    assert detect_all([]) == []


def test_excerpt_is_trimmed_around_the_match() -> None:
    msg = "x" * 1000 + " " + fatal_message("r", "rails") + " " + "y" * 1000
    sig = detect(one(app_line(msg)))
    assert sig is not None
    assert len(sig.excerpt) <= EXCERPT_CHARS + 2
    assert "too many connections for role" in sig.excerpt
    assert sig.excerpt.startswith("…") and sig.excerpt.endswith("…")
    short = detect(one(fatal_line(form="psycopg2")))
    assert short is not None and short.excerpt == fatal_message(form="psycopg2")


@given(st.text(max_size=300), st.text(max_size=20), st.text(max_size=20))
def test_detect_never_raises(message: str, app: str, proc: str) -> None:
    sig = detect(LogLine(TS, "host", app, proc, message))
    assert sig is None or isinstance(sig, Signal)


# --- classify ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("active", "limit", "expected"),
    [
        (0, 20, Severity.OK),
        (15, 20, Severity.OK),
        (16, 20, Severity.WARN),  # exactly 80 %: inclusive
        (18, 20, Severity.WARN),
        (19, 20, Severity.CRITICAL),  # exactly 95 %: inclusive
        (20, 20, Severity.CRITICAL),
        (23, 20, Severity.CRITICAL),  # above the limit (superuser connections)
        (95, 120, Severity.OK),
        (96, 120, Severity.WARN),
        (113, 120, Severity.WARN),
        (114, 120, Severity.CRITICAL),
        (399, 500, Severity.OK),
        (400, 500, Severity.WARN),
        (475, 500, Severity.CRITICAL),
    ],
)
def test_classify_boundaries(active: int, limit: int, expected: Severity) -> None:
    assert classify(active, limit) is expected


def test_classify_custom_shares_and_string_values() -> None:
    assert classify(10, 20, warn_share=0.5, critical_share=0.75) == "warn"
    assert classify(15, 20, warn_share=0.5, critical_share=0.75) == "critical"
    assert Severity.OK == "ok"
    with pytest.raises(ValueError):
        classify(1, 0)


@given(st.integers(1, 10_000), st.integers(0, 200))
def test_classify_exact_at_integer_boundaries(limit: int, pct: int) -> None:
    # Whenever pct% of limit is a whole number of connections, that count is
    # already at the threshold: no float wobble.
    if (limit * pct) % 100:
        return
    active = limit * pct // 100
    share = pct / 100
    assert classify(active, limit, warn_share=share, critical_share=2.1) is (
        Severity.WARN if active > 0 or share == 0 else Severity.OK
    )


# --- Slack messages ---------------------------------------------------------------

APPS = ["my-app", "my-app-staging", "billing"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[Sentry] OperationalError: FATAL: too many connections for role "u8a3kd" in my-app',
         "my-app"),
        ("Datadog: my-app Postgres connections at 98% (196/200)", "my-app"),
        ("my-app is throwing too many connections again", "my-app"),
        ("my-app-staging is throwing too many connections again", "my-app-staging"),
        ("*[Triggered] billing*: remaining connection slots are reserved", "billing"),
        ("billing hit the connection limit", "billing"),
        ("billing: connection limit reached", "billing"),
        ("DB connections exhausted on billing", "billing"),
        ("billing ran out of db connections", "billing"),
        ("billing: sorry, too many clients already", "billing"),
        ("pg:info for billing says Connections: 20/20", "billing"),
        ("billing reached max connections", "billing"),
        ("[Sentry] billing: OperationalError 53300", "billing"),
        ("MY-APP: Too Many Connections", "my-app"),
        # Slack links: label and URL both count; the "|" does not glue words.
        ("<https://sentry.io/organizations/acme/issues/42/?project=my-app|OperationalError: "
         "too many connections for role>", "my-app"),
        ("<https://dashboard.heroku.com/apps/billing|billing> postgres connections at 97.5%",
         "billing"),
        ("&lt;billing&gt; too many connections", "billing"),
        ("FATAL: too many connections for role &quot;x&quot; on `my-app`", "my-app"),
        # Both named: the longest configured name wins.
        ("my-app and my-app-staging: too many connections", "my-app-staging"),
        ("Alert in my-app.herokuapp.com: too many connections", "my-app"),
    ],
)
def test_mentions_exhaustion_positive(text: str, expected: str) -> None:
    assert mentions_exhaustion(text, APPS) == expected


@pytest.mark.parametrize(
    "text",
    [
        "my-app deployed v123 by alice",
        "my-app connections back to normal (40%)",
        "my-app: Postgres connections at 52% (104/200)",
        "my-app connection limit is 20",
        "my-app: connection established",
        "too many connections on some-other-app",  # not a configured app
        "my-app-production is throwing too many connections",  # not my-app
        "xmy-app too many connections",
        "[Resolved] my-app Postgres connections at 98%",
        "Recovered: my-app too many connections",
        "[OK] my-app connections at 99%",
        "Datadog: [Recovered] my-app Postgres connections at 98% (196/200)",
        "Resolved: #4821 my-app FATAL: too many connections for role",
        "billing has 53300123 rows",
        "",
    ],
)
def test_mentions_exhaustion_negative(text: str) -> None:
    assert mentions_exhaustion(text, APPS) is None


def test_mentions_exhaustion_app_config_edge_cases() -> None:
    assert mentions_exhaustion("too many connections in my-app", []) is None
    assert mentions_exhaustion("too many connections in my-app", [" My-App ", ""]) == "My-App"
    # Earliest wins among names of equal length.
    assert mentions_exhaustion("app-b then app-a: too many connections", ["app-a", "app-b"]) == (
        "app-b"
    )
    # Only my-app configured: the staging app's alert is not ours.
    assert mentions_exhaustion("my-app-staging too many connections", ["my-app"]) is None


@given(st.text(max_size=200))
def test_mentions_exhaustion_never_raises(text: str) -> None:
    assert mentions_exhaustion(text, APPS) in (None, *APPS)


# --- the real server's words --------------------------------------------------------


def test_real_postgres_refusal_is_detected(app_dsn: str) -> None:
    """Exhaust a CONNECTION LIMIT role on a real server; the client's error text is a signal."""
    import psycopg

    from tests.support import APP_ROLE, ROLE_LIMIT

    held: list[psycopg.Connection[tuple[object, ...]]] = []
    error: str | None = None
    try:
        for _ in range(ROLE_LIMIT + 5):
            try:
                held.append(psycopg.connect(app_dsn, autocommit=True))
            except psycopg.OperationalError as exc:
                error = f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}"
                break
    finally:
        for conn in held:
            conn.close()
    assert error is not None, "the role limit was never reached"
    # Tracebacks arrive one syslog message per line; the refusal is on one of them.
    lines = parse_frames(frame([app_line(part) for part in error.splitlines()]))
    signals = detect_all(lines)
    assert [s.kind for s in signals] == ["too_many_connections"]
    assert signals[0].role == APP_ROLE
