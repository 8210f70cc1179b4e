"""Report rendering: pure, within Slack's limits, outside text made inert."""

from __future__ import annotations

from bot.budget import connection_budget
from bot.models import Database, HolderGroup, Holders, HoldersUnavailable, PgInfo, ProcessType
from bot.render.report import report_blocks
from bot.render.text import MAX_BLOCKS, MAX_TEXT
from bot.report import Report
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


def test_diagnose_advice_names_the_problems_in_the_numbers() -> None:
    from bot.diagnosis import advice

    stuck = HolderGroup("worker.1", "u1", "10.0.0.1", 20, 0, 15, 5, 0, 400.0, 900.0)
    held = Holders(
        role="u1",
        role_limit=20,
        max_connections=500,
        role_connections=20,
        server_connections=20,
        groups=(stuck,),
        state_counts={"active": 0, "idle": 15, "idle in transaction": 5, "other": 0},
        oldest_idle_s=400.0,
        longest_idle_in_tx_s=900.0,
    )
    over = Report(
        app="my-app",
        database=DB,
        pg_info=INFO,
        holders=held,
        formation=FORMATION * 3,
        budget=connection_budget((ProcessType("web", 8, "gunicorn app.wsgi -w 3"),), {}, 20),
    )
    tips = advice(over)
    text = "\n".join(tips)
    assert "at its limit (20/20)" in text
    assert "idle in transaction* for 900s" in text
    assert "15 of 20 connections are idle" in text
    assert "*will* hit the limit" in text
    blocks = report_blocks(over, advice=tips)
    assert "*What to do*" in blocks_text(blocks)
    assert blocks[-1]["type"] in ("actions", "section")
    calm = Report(
        app="my-app",
        database=DB,
        pg_info=None,
        holders=holders([group("web.1", 2)]),
        budget=connection_budget(FORMATION[:0], {}, 20),
        formation=(),
    )
    assert advice(calm) == ["Nothing looks wrong: connections are well under the limit and the budget fits."]
