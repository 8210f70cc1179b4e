"""Report rendering: pure, within Slack's limits, outside text made inert."""

from __future__ import annotations

from dataclasses import replace

from bot.budget import connection_budget
from bot.diagnosis import diagnose
from bot.readings import Backend, Database, HolderGroup, Holders, HoldersUnavailable, PgInfo, ProcessType
from bot.render.report import report_blocks
from bot.render.text import MAX_BLOCKS, MAX_TEXT
from bot.report import Report
from tests.bot.rows import backend
from tests.support import blocks_text

DB = Database("addon-id", "postgresql-x-1", "heroku-postgresql:essential-0", "DATABASE", "DATABASE_URL")
INFO = PgInfo(
    fields=(("Plan", "Essential 0"), ("Connections", "20/20")),
    connections_used=20,
    connections_limit=20,
    plan=DB.plan,
)
FORMATION = (ProcessType("web", 3, "gunicorn app.wsgi -w 3"),)


def group(name: str, total: int = 1, user: str = "u1") -> HolderGroup:
    return HolderGroup(name, user, "10.0.0.1", total, 0, total, 0, 0, 12.0, None)


def holders(groups: list[HolderGroup]) -> Holders:
    return Holders(
        role="u1",
        role_limit=20,
        max_connections=500,
        role_connections=sum(g.total for g in groups),
        server_connections=sum(g.total for g in groups),
        groups=tuple(groups),
        state_counts={"active": 0, "idle": 1, "idle in transaction": 0, "other": 0},
    )


def report(held: Holders | HoldersUnavailable) -> Report:
    return Report(
        app="my-app",
        database=DB,
        pg_info=INFO,
        holders=held,
        budget=connection_budget(FORMATION, {}, 20),
        formation=FORMATION,
    )


def check_limits(blocks: list[dict]) -> None:
    assert len(blocks) <= MAX_BLOCKS
    for b in blocks:
        text = b.get("text", {}).get("text", "")
        assert len(text) <= MAX_TEXT
        for f in b.get("fields", []):
            assert len(f["text"]) <= 2000


def test_any_number_of_holders_stays_within_slack_limits() -> None:
    many = [group(f"web.{i}" + "x" * 50, total=1) for i in range(2000)]
    blocks = report_blocks(report(holders(many)))
    check_limits(blocks)
    text = blocks_text(blocks)
    assert "more group" in text


def test_hostile_application_names_are_inert() -> None:
    evil = [
        group("<!channel>", 5),
        group("<https://evil.example|click>", 4),
        group("*bold* `x` _y_", 3),
        group("ok", 1, user="<@U123>"),
    ]
    text = blocks_text(report_blocks(report(holders(evil))))
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert "<https://evil.example|click>" not in text
    assert "<@U123>" not in text
    check_limits(report_blocks(report(holders(evil))))


def test_full_role_report_says_why_holders_are_missing_and_keeps_kill_all() -> None:
    blocks = report_blocks(report(HoldersUnavailable("no free slot", role_full=True)))
    text = blocks_text(blocks)
    assert "Holders could not be read" in text and "connection reset" in text
    assert "*Connections:* *20/20*" in text
    actions = [b for b in blocks if b["type"] == "actions"][0]
    killall = next(e for e in actions["elements"] if e["action_id"] == "pgconn.killall")
    assert "Terminate 20 connections of my-app's database role" in killall["confirm"]["text"]["text"]


def diagnosed(
    held: Holders, backends: list[Backend], formation: tuple[ProcessType, ...] = FORMATION
) -> Report:
    plain = Report(
        app="my-app",
        database=DB,
        pg_info=INFO,
        holders=held,
        budget=connection_budget(formation, {}, 20),
        formation=formation,
    )
    diagnosis = diagnose(held, backends, used=20, limit=20, budget=plain.budget)
    return replace(plain, diagnosis=diagnosis)


def test_report_leads_with_the_cause_and_its_button_first() -> None:
    stuck = HolderGroup("worker.2", "u1", "10.0.0.1", 12, 0, 0, 12, 0, None, 2400.0)
    held = holders([stuck, group("web.1", 8)])
    stuck_backends = [backend(100 + i, "worker.2", "idle in transaction", 2400.0 - i) for i in range(12)]
    report = diagnosed(held, stuck_backends)
    blocks = report_blocks(report)
    assert blocks[0]["type"] == "header"
    assert blocks[1]["block_id"] == "pgconn.cause"
    assert blocks[1]["text"]["text"] == (
        ":red_circle: *Likely cause:* worker.2 holds 12 connections idle in transaction, "
        "the oldest for 40m 00s"
    )
    assert blocks[2]["text"]["text"].startswith("*Connections:* *20/20*")
    actions = next(b for b in blocks if b["type"] == "actions")
    first = actions["elements"][0]
    assert first["action_id"] == "pgconn.kill_idle" and first["style"] == "primary"
    assert [e["action_id"] for e in actions["elements"][1:]] == [
        "pgconn.killall", "pgconn.restart", "pgconn.add_pgbouncer"
    ]
    # The report alone does not list the checks; `diagnose` does.
    assert "*Checks*" not in blocks_text(blocks)


def test_a_leaking_process_type_puts_its_restart_first_and_keeps_restart_all_in_the_menu() -> None:
    formation = (
        ProcessType("web", 3, "gunicorn app.wsgi -w 3"),
        ProcessType("worker", 1, "celery -A a worker -c 2"),
    )
    held = holders([group("web.3", 9), group("web.1", 3), group("worker.1", 2)])
    blocks = report_blocks(diagnosed(held, [], formation))
    text = blocks_text(blocks)
    assert "*Likely cause:* web.3 holds 9 connections; the budget expects 3 per web dyno" in text
    actions = next(b for b in blocks if b["type"] == "actions")
    first = actions["elements"][0]
    assert (first["action_id"], first["value"], first["style"]) == ("pgconn.restart", "my-app:web", "primary")
    assert first["text"]["text"] == "Restart web dynos"
    assert "every web dyno of my-app" in first["confirm"]["text"]["text"]
    assert len({e["action_id"] for e in actions["elements"]}) == 4  # action ids stay unique in the block
    menu = next(b for b in blocks if b.get("block_id") == "pgconn.restart_type")
    assert [o["value"] for o in menu["accessory"]["options"]] == ["my-app:web", "my-app:worker", "my-app"]
    check_limits(blocks)


def test_no_cause_keeps_the_plain_button_order() -> None:
    calm = Report(
        app="my-app",
        database=DB,
        pg_info=None,
        holders=holders([group("web.1", 2)]),
        budget=connection_budget(FORMATION, {}, 20),
        formation=FORMATION,
    )
    report = replace(
        calm, diagnosis=diagnose(calm.holders, [], used=2, limit=20, budget=calm.budget)
    )
    blocks = report_blocks(report)
    assert "Likely cause" not in blocks_text(blocks)
    actions = next(b for b in blocks if b["type"] == "actions")
    assert [e["action_id"] for e in actions["elements"]] == [
        "pgconn.kill_idle", "pgconn.killall", "pgconn.restart", "pgconn.add_pgbouncer"
    ]
    assert all(e.get("style") != "primary" for e in actions["elements"])


def test_diagnose_lists_every_check_with_short_escaped_queries_within_slack_limits() -> None:
    secret_query = "SELECT * FROM users WHERE email = 'a@b.c' AND token = '" + "x" * 500 + "'"
    hostile = "<!channel> *web*"
    backends = [
        backend(1, hostile, "active", 900.0, secret_query),
        backend(2, "worker.1", "idle in transaction", 600.0, "UPDATE accounts\n   SET balance = 0"),
        backend(3, "web.2", "active", 45.0, "UPDATE t SET x = 1", blocked_by=(2,), waiting_for="a row lock"),
        *[backend(10 + i, f"web.{i}", "idle in transaction", 400.0, secret_query) for i in range(40)],
    ]
    held = holders([group(hostile, 3), group("worker.1", 1), *[group(f"web.{i}", 1) for i in range(40)]])
    blocks = report_blocks(diagnosed(held, backends), checks=True)
    check_limits(blocks)
    text = blocks_text(blocks)
    for name in (
        "Connection count", "Long-running queries", "Long transactions", "Idle in transaction",
        "Blocking queries", "Connections per dyno vs the budget",
    ):
        assert f"*{name}*" in text
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert "x" * 100 not in text  # never the whole query
    assert "`UPDATE accounts SET balance = 0`" in text  # whitespace collapsed, shown as code
    assert ":red_circle: *Blocking queries*" in text
    # worker.1 blocks web.2 while idle in transaction: 2 connections, more than any other finding.
    assert blocks[1]["text"]["text"] == (
        ":red_circle: *Likely cause:* worker.1 (pid 2, idle in transaction for 10m 00s) blocks 1 session, "
        "waiting up to 45s for a row lock"
    )
