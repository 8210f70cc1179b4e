"""The diagnosis checks and the choice of the likely cause: pure, from plain rows."""

from __future__ import annotations

import pytest

from bot.budget import Budget, connection_budget
from bot.diagnosis import Band, Diagnosis, DiagnosisThresholds, diagnose, dyno_name, shorten
from bot.readings import Backend, HolderGroup, Holders, HoldersUnavailable, ProcessType
from tests.bot.rows import backend

ROLE = "u1"  # the role tests.bot.rows gives its backends
FORMATION = (
    ProcessType("web", 3, "gunicorn app.wsgi -w 3"),  # 3 per dyno
    ProcessType("worker", 2, "celery -A app worker -c 4"),  # 4 per dyno
)
BUDGET = connection_budget(FORMATION, {}, 120)
T = DiagnosisThresholds(
    connections=Band(0.8, 0.95),
    long_query_s=Band(10, 60),
    long_transaction_s=Band(10, 60),
    idle_in_transaction_s=Band(10, 60),
    blocked_s=Band(5, 30),
    leak_factor=2.0,
)


def held(*groups: tuple[str, int] | tuple[str, int, int]) -> Holders:
    """(application_name, connections[, idle in transaction]) per holder, all of the role."""
    gs = tuple(
        HolderGroup(
            g[0],
            ROLE,
            "10.0.0.1",
            g[1],
            0,
            g[1] - (g[2] if len(g) > 2 else 0),
            g[2] if len(g) > 2 else 0,
            0,
            1.0,
            None,
        )
        for g in groups
    )
    total = sum(g.total for g in gs)
    return Holders(ROLE, 120, 500, total, total, gs, {})


def run(
    holders: Holders | HoldersUnavailable,
    backends: list[Backend],
    used: int | None = None,
    limit: int = 120,
    budget: Budget | None = BUDGET,
) -> Diagnosis:
    if used is None:
        used = holders.role_connections if isinstance(holders, Holders) else None
    return diagnose(holders, backends, used=used, limit=limit, budget=budget, thresholds=T)


def test_a_quiet_database_is_all_green_and_has_no_cause() -> None:
    d = run(held(("web.1", 3), ("worker.1", 4)), [backend(1, "web.1", age=0.2)])
    assert [c.status for c in d.checks] == ["green"] * 6
    assert d.cause is None
    assert [c.key for c in d.checks] == [
        "connections",
        "long_queries",
        "long_transactions",
        "idle_in_transaction",
        "blocking",
        "leak",
    ]


def test_connection_count_turns_yellow_then_red_with_the_biggest_holders_as_evidence() -> None:
    assert run(held(("web.1", 3)), [], used=95, limit=120).check("connections").status == "green"
    assert run(held(("web.1", 3)), [], used=96, limit=120).check("connections").status == "yellow"
    red = run(held(("web.1", 3), ("web.2", 2)), [], used=114, limit=120).check("connections")
    assert red.status == "red" and red.summary == "114/120 connections (95% of the limit)"
    assert red.evidence[0].text == "web.1 holds 3 (3 idle or idle in transaction)"


def test_long_query_is_yellow_then_red_and_names_its_holder() -> None:
    assert run(held(("web.2", 1)), [backend(7, "web.2", age=9)]).check("long_queries").status == "green"
    assert run(held(("web.2", 1)), [backend(7, "web.2", age=10)]).check("long_queries").status == "yellow"
    d = run(held(("web.2", 1)), [backend(7, "web.2", age=125, query="SELECT pg_sleep(600)")])
    check = d.check("long_queries")
    assert check.status == "red"
    assert check.evidence[0].text == "pid 7 web.2: running 2m 05s"
    assert check.evidence[0].query == "SELECT pg_sleep(600)"
    assert d.cause is not None and d.cause.check == "long_queries"
    assert d.cause.text == "web.2 (pid 7) has run one query for 2m 05s"
    assert d.cause.remedy is None  # no button fits: pgconn does not cancel queries
    # Idle connections' last queries are not running.
    assert (
        run(held(("web.2", 1)), [backend(7, "web.2", "idle", age=500)]).check("long_queries").status
        == "green"
    )


def test_a_transaction_that_is_only_its_running_query_is_not_a_long_transaction() -> None:
    lone = backend(7, "web.2", age=100)
    assert run(held(("web.2", 1)), [lone]).check("long_transactions").status == "green"
    many = backend(8, "web.2", age=5, xact_age_s=100.0)  # its 5 s query in a 100 s transaction
    check = run(held(("web.2", 1)), [many]).check("long_transactions")
    assert check.status == "red" and "the oldest 1m 40s" in check.summary


def test_idle_in_transaction_counts_per_holder_and_leads_with_kill_idle() -> None:
    backends = [backend(10 + i, "worker.2", "idle in transaction", 2400 - i) for i in range(12)]
    backends += [
        backend(40, "web.1", "idle in transaction", 20),
        backend(41, "web.1", "idle in transaction", 2),
    ]
    d = run(held(("worker.2", 12, 12), ("web.1", 3, 2)), backends)
    check = d.check("idle_in_transaction")
    assert check.status == "red"
    assert check.summary == (
        "13 connections idle in transaction for 10s or more, the oldest 40m 00s (worker.2)"
    )
    assert check.evidence[0].text.startswith("worker.2: 12 idle in transaction, the oldest 40m 00s")
    assert check.evidence[1].text.startswith("web.1: 1 idle in transaction, the oldest 20s")
    assert d.cause is not None
    assert d.cause.text == "worker.2 holds 12 connections idle in transaction, the oldest for 40m 00s"
    assert d.cause.remedy == "kill_idle"


def test_brief_idle_in_transaction_is_green() -> None:
    check = run(held(("web.1", 2, 2)), [backend(1, "web.1", "idle in transaction", 0.05)]).check(
        "idle_in_transaction"
    )
    assert check.status == "green" and "(1 briefly)" in check.summary


def test_blocking_names_the_root_blocker_and_who_waits_how_long_for_what() -> None:
    blocker = backend(5, "worker.1", "idle in transaction", 130, "SELECT * FROM orders FOR UPDATE")
    waiters = [
        backend(6, "web.1", age=45, blocked_by=(5,), waiting_for="a row lock", query="UPDATE orders SET x=1"),
        backend(7, "web.2", age=12, blocked_by=(5,), waiting_for="a row lock"),
        # A chain: web.3 waits for web.1, which waits for worker.1.
        backend(8, "web.3", age=3, blocked_by=(6,), waiting_for="RowExclusiveLock on orders"),
    ]
    d = run(held(("worker.1", 1, 1), ("web.1", 1), ("web.2", 1), ("web.3", 1)), [blocker, *waiters])
    check = d.check("blocking")
    assert check.status == "red"
    assert check.summary == "3 sessions waiting for a lock, the longest 45s; held by 2 sessions"
    assert check.evidence[0].text == (
        "worker.1 (pid 5, idle in transaction for 2m 10s) blocks 2 sessions: web.1 (pid 6) waiting 45s "
        "for a row lock"
    )
    assert d.cause is not None and d.cause.check == "blocking"
    assert d.cause.text == (
        "worker.1 (pid 5, idle in transaction for 2m 10s) blocks 2 sessions, waiting up to 45s for a row lock"
    )
    assert d.cause.remedy == "kill_idle"
    short = run(held(("web.1", 1)), [blocker, backend(6, "web.1", age=6, blocked_by=(5,))])
    assert short.check("blocking").status == "yellow"


def test_an_active_blocker_gets_no_button_and_its_waiters_are_not_long_queries() -> None:
    blocker = backend(5, "worker.1", "active", 200, "ALTER TABLE orders ADD COLUMN y int")
    waiter = backend(6, "web.1", age=100, blocked_by=(5,), waiting_for="RowExclusiveLock on orders")
    d = run(held(("worker.1", 1), ("web.1", 1)), [blocker, waiter])
    assert d.cause is not None and d.cause.check == "blocking" and d.cause.remedy is None
    assert [e.text for e in d.check("long_queries").evidence] == ["pid 5 worker.1: running 3m 20s"]


def test_a_dyno_far_above_its_budget_is_a_leak_with_a_restart_of_its_type() -> None:
    d = run(held(("web.3", 9), ("web.1", 3), ("worker.1", 4)), [])
    check = d.check("leak")
    assert check.status == "red"
    assert check.evidence[0].text == "web.3 holds 9, the budget says 3 per web dyno"
    assert d.cause is not None
    assert d.cause.text == "web.3 holds 9 connections; the budget expects 3 per web dyno"
    assert (d.cause.remedy, d.cause.process_type) == ("restart", "web")
    # A little over the budget: yellow, and no cause while the role has room.
    mild = run(held(("web.3", 4)), [])
    assert mild.check("leak").status == "yellow" and mild.cause is None
    # The same a yellow leak explains a role under pressure.
    pressed = run(held(("web.3", 4)), [], used=118)
    assert pressed.cause is not None and pressed.cause.check == "leak"


def test_leak_reads_dyno_names_inside_application_names_and_ignores_what_is_not_a_dyno() -> None:
    assert dyno_name("web.3") == ("web", 3)
    assert dyno_name("puma web.3") == ("web", 3)
    assert dyno_name("worker_high.12:4242") == ("worker_high", 12)
    for name in ("pgconn-reserved", "10.0.0.1", "app.herokuapp.com", "psql", "", "web.3x"):
        assert dyno_name(name) is None, name
    d = run(held(("puma web.2", 10), ("run.1234", 30)), [])  # a one-off dyno has no budget line
    assert d.check("leak").evidence[0].text == "puma web.2 holds 10, the budget says 3 per web dyno"
    assert len(d.check("leak").evidence) == 1


def test_leak_is_unknown_when_no_application_name_names_a_dyno() -> None:
    check = run(held(("", 5), ("rails", 3)), []).check("leak")
    assert check.status == "unknown" and "PGAPPNAME=$DYNO" in check.summary


def test_a_guessed_budget_can_only_make_a_leak_yellow() -> None:
    budget = connection_budget((ProcessType("clock", 1, "./bin/clock"),), {}, 120)
    check = run(held(("clock.1", 9)), [], budget=budget).check("leak")
    assert check.status == "yellow"
    assert "assumed 1 connection per dyno" in check.evidence[0].text


def test_idle_in_transaction_that_dominates_beats_a_leak_of_the_same_holder() -> None:
    backends = [backend(10 + i, "worker.2", "idle in transaction", 400) for i in range(12)]
    d = run(held(("worker.2", 12, 12)), backends)
    assert d.check("leak").status == "red"  # 12 against 4 per worker dyno
    assert d.cause is not None and d.cause.check == "idle_in_transaction" and d.cause.remedy == "kill_idle"


def test_a_leak_that_explains_more_than_idle_in_transaction_wins() -> None:
    backends = [backend(1, "web.1", "idle in transaction", 400)]
    d = run(held(("web.1", 3, 1), ("worker.1", 16)), backends)
    assert d.check("idle_in_transaction").status == "red"
    assert d.cause is not None and (d.cause.check, d.cause.process_type) == ("leak", "worker")


def test_at_the_limit_with_nothing_else_wrong_the_cause_is_the_formation_or_the_biggest_holder() -> None:
    over = connection_budget((ProcessType("web", 8, "gunicorn app.wsgi -w 3"),), {}, 20)
    d = run(held(("web.1", 3), ("web.2", 3)), [], used=20, limit=20, budget=over)
    assert d.cause is not None and d.cause.remedy == "add_pgbouncer"
    assert (
        d.cause.text
        == "the formation can open 27 connections against a limit of 20 (web 24, plus 3 headroom)"
    )
    no_budget = run(held(("web.1", 3, 0), ("rails", 6)), [], used=19, limit=20, budget=None)
    assert (
        no_budget.cause is not None
        and no_budget.cause.text == "rails holds 6 of 19 connections, 6 of them idle"
    )
    assert no_budget.cause.remedy == "kill_idle"


def test_role_full_before_pgconn_could_read_points_to_kill_all() -> None:
    d = run(HoldersUnavailable("no free slot", role_full=True), [], used=20, limit=20)
    assert d.check("connections").status == "red"
    assert {c.status for c in d.checks[1:]} == {"unknown"}
    assert d.cause is not None and d.cause.remedy == "killall" and "20/20" in d.cause.text
    # pg:info may not count them; the refusal pgconn itself got is proof enough.
    unknown = run(HoldersUnavailable("no free slot", role_full=True), [], used=None, limit=20)
    assert unknown.check("connections").status == "red"
    assert unknown.cause is not None and unknown.cause.text.startswith(
        "every connection slot of the role is taken and"
    )
    unreachable = run(HoldersUnavailable("could not connect", role_full=False), [], used=3, limit=20)
    assert unreachable.check("connections").status == "green" and unreachable.cause is None


def test_pgconns_own_connections_are_not_holders() -> None:
    d = run(held(("pgconn-reserved", 1), ("pgconn", 40)), [], used=41)
    assert d.check("leak").summary == "no connections besides pgconn's own"
    assert d.check("connections").evidence == ()


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ("SELECT 1", "SELECT 1"),
        ("SELECT *\n\tFROM   t\n WHERE id = 1", "SELECT * FROM t WHERE id = 1"),
        ("SELECT '" + "x" * 200 + "'", "SELECT '" + "x" * 71 + "…"),
    ],
)
def test_query_text_is_collapsed_and_cut(query: str, shown: str) -> None:
    assert shorten(query) == shown
    assert len(shorten(query)) <= 80


def test_bands_are_inclusive_and_the_inspector_reads_from_the_youngest_threshold() -> None:
    band = Band(10, 60)
    assert [band.status(v) for v in (None, 9.9, 10, 59.9, 60)] == [
        "green",
        "green",
        "yellow",
        "yellow",
        "red",
    ]
    assert DiagnosisThresholds(long_query_s=Band(30, 300), long_transaction_s=Band(5, 10)).older_than_s == 5
