"""Rendering the budget: the one-line verdict and the Block Kit table, always within Slack limits."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.budget import HeadroomItem, connection_budget
from bot.readings import ProcessType
from bot.render.budget import MAX_LINE_SECTIONS, budget_blocks, budget_fallback_text, verdict_line
from bot.render.text import MAX_BLOCKS, MAX_TEXT

ISSUE_FORMATION = [
    ProcessType("web", 6, "gunicorn -w 3 app:app"),
    ProcessType("worker", 2, "celery -A proj worker -c 4"),
]


def texts(blocks: list[dict[str, Any]]) -> list[str]:
    """Every text Slack will render, wherever it sits in a block."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(blocks)
    return found


def assert_within_slack_limits(blocks: list[dict[str, Any]]) -> None:
    assert 0 < len(blocks) <= MAX_BLOCKS
    for t in texts(blocks):
        assert 0 < len(t) <= MAX_TEXT
    for b in blocks:
        if b["type"] == "header":
            assert len(b["text"]["text"]) <= 150
        if b["type"] == "context":
            assert 1 <= len(b["elements"]) <= 10


# -- the one-line verdict ------------------------------------------------------------------


def test_verdict_line_over_the_limit() -> None:
    budget = connection_budget(ISSUE_FORMATION, {}, 20)
    assert verdict_line(budget) == (
        "Budget: *29* of 20 connections — over the limit by 9 (web 18, worker 8, headroom 3)"
    )


def test_verdict_line_without_headroom_matches_the_issue() -> None:
    budget = connection_budget(ISSUE_FORMATION, {}, 20, headroom=0)
    assert verdict_line(budget) == "Budget: *26* of 20 connections — over the limit by 6 (web 18, worker 8)"


def test_verdict_line_tight_and_fits() -> None:
    tight = connection_budget([ProcessType("web", 2, "gunicorn -w 7 a:b")], {}, 20)
    assert (
        verdict_line(tight) == "Budget: *17* of 20 connections — tight, 85% of the limit (web 14, headroom 3)"
    )
    fits = connection_budget([ProcessType("web", 2, "gunicorn -w 3 a:b")], {}, 120)
    assert verdict_line(fits) == "Budget: *9* of 120 connections — fits, 8% of the limit (web 6, headroom 3)"


def test_verdict_line_counts_assumptions_and_folds_many_types() -> None:
    formation = [ProcessType(f"p{i}", 1, f"gunicorn -w {i + 1} a:b") for i in range(6)]
    formation.append(ProcessType("mystery", 1, "./bin/thing"))
    line = verdict_line(connection_budget(formation, {}, 500))
    assert "(p5 6, p4 5, p3 4, p2 3, +3 more, headroom 3)" in line
    assert line.endswith(" · 1 assumption")


def test_verdict_line_escapes_process_types() -> None:
    budget = connection_budget([ProcessType("<!channel>", 1, "gunicorn -w 2 a:b")], {}, 20)
    line = verdict_line(budget)
    assert "<!channel>" not in line
    assert "&lt;!channel&gt; 2" in line


def test_verdict_line_with_no_limit_does_not_crash() -> None:
    budget = connection_budget([ProcessType("web", 1, "gunicorn -w 2 a:b")], {}, 0)
    assert "over the limit by 5" in verdict_line(budget)
    assert_within_slack_limits(budget_blocks("app", budget))


# -- the full table --------------------------------------------------------------------------


def test_budget_blocks_show_the_arithmetic_headroom_total_and_what_fits() -> None:
    formation = [*ISSUE_FORMATION, ProcessType("clock", 1, "python clock.py")]
    budget = connection_budget(formation, {}, 20)
    blocks = budget_blocks("my-app", budget)
    assert_within_slack_limits(blocks)
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Connection budget — my-app"},
    }
    body = "\n".join(texts(blocks))
    assert (
        "*Over the limit.* At full concurrency this app needs *30* connections "
        "(27 from its dynos + 3 headroom); the plan allows *20*, so 10 would be refused" in body
    )
    assert "*web* · `gunicorn -w 3 app:app`\n6 dynos × 3 gunicorn workers × 1 thread = *18*" in body
    assert "2 dynos × 4 celery prefork children × 1 connection = *8*" in body
    assert "pgconn's reserved connection 1" in body and "= *3*" in body
    assert "*Total:* 27 from the formation + 3 headroom = *30* of *20*" in body
    # web: 20 - (30 - 18) = 8 → 2 dynos of 3
    assert "• web: up to 2 dynos at its current settings (now 6)" in body
    assert "• worker: no dyno fits while the rest stays as it is (now 2)" in body
    # 9 dynos in 20 - 3: one server connection each, so no reserve pool
    assert "`PGBOUNCER_DEFAULT_POOL_SIZE=1`, `PGBOUNCER_RESERVE_POOL_SIZE=0`" in body
    assert "9 dynos × 1 + 3 headroom = *12* of 20" in body
    assumptions = blocks[-1]
    assert assumptions["type"] == "context"
    assert "• clock: unknown command, assumed 1 connection per dyno" in assumptions["elements"][0]["text"]


def test_budget_blocks_mark_pgbouncer_release_and_scaled_down_lines() -> None:
    formation = [
        ProcessType("web", 2, "bin/start-pgbouncer gunicorn -w 4 a:b"),
        ProcessType("worker", 0, "celery -A a worker -c 2"),
        ProcessType("release", 1, "python manage.py migrate"),
    ]
    body = "\n".join(texts(budget_blocks("app", connection_budget(formation, {}, 20))))
    assert "*web* · `bin/start-pgbouncer gunicorn -w 4 a:b` _(behind PgBouncer)_" in body
    assert "*worker* · `celery -A a worker -c 2` _(scaled to 0)_" in body
    assert "*release* · `python manage.py migrate` _(only while deploying)_" in body


def test_budget_blocks_escape_outside_text() -> None:
    formation = [
        ProcessType("<!channel>", 1, "gunicorn -w 2 a:b"),
        ProcessType("*bold*", 1, "`rm -rf` <@U123> <https://evil|click> *x*"),
    ]
    blocks = budget_blocks("app", connection_budget(formation, {}, 20))
    raw = json.dumps(blocks, ensure_ascii=False)
    assert "<!channel>" not in raw and "<@U123>" not in raw and "<https://evil" not in raw
    body = "\n".join(texts(blocks))
    assert "&lt;!channel&gt;" in body
    assert "*\u200bbold*\u200b" in body


def test_a_huge_formation_stays_within_slack_limits() -> None:
    formation = [
        ProcessType(f"type-{i}-" + "x" * 200, 3, "gunicorn " + "-w 2 " * 400 + "a:b") for i in range(200)
    ]
    formation.append(ProcessType("odd", 1, "./bin/" + "y" * 5000))
    budget = connection_budget(formation, {}, 500)
    blocks = budget_blocks("app-" + "z" * 300, budget)
    assert_within_slack_limits(blocks)
    body = "\n".join(texts(blocks))
    assert f"… and {201 - MAX_LINE_SECTIONS} more process types" in body
    assert "… and 189 more process types" in body  # in "what would fit"
    assert len(verdict_line(budget)) <= MAX_TEXT


def test_many_assumptions_are_cut_with_a_count() -> None:
    formation = [ProcessType(f"w{i}", 1, f"./bin/mystery-{i} " + "q" * 200) for i in range(40)]
    blocks = budget_blocks("app", connection_budget(formation, {}, 500))
    assert_within_slack_limits(blocks)
    last = blocks[-1]["elements"][0]["text"]
    assert last.startswith("*Assumptions*")
    assert "more assumption" not in last  # 40 short ones fit


def test_long_assumptions_are_cut_with_a_count() -> None:
    formation = [ProcessType("w" * 60 + str(i), 1, f"./bin/mystery-{i}") for i in range(80)]
    blocks = budget_blocks("app", connection_budget(formation, {}, 500))
    assert_within_slack_limits(blocks)
    last = blocks[-1]["elements"][0]["text"]
    assert "more assumptions" in last


def test_fallback_text_is_plain() -> None:
    text = budget_fallback_text("my-app", connection_budget(ISSUE_FORMATION, {}, 20))
    assert text == "my-app: Budget: 29 of 20 connections — over the limit by 9 (web 18, worker 8, headroom 3)"


def test_no_dynos_running() -> None:
    budget = connection_budget([ProcessType("web", 0, "gunicorn -w 2 a:b")], {}, 20)
    body = "\n".join(texts(budget_blocks("app", budget)))
    assert "No dynos are running" in body
    assert "*Fits.*" in body


def test_custom_headroom_items_are_listed() -> None:
    items = [HeadroomItem("<script>", 2)]
    body = "\n".join(texts(budget_blocks("app", connection_budget([], {}, 20, headroom=items))))
    assert "&lt;script&gt; 2 = *2*" in body


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.builds(
            ProcessType,
            type=st.text(min_size=1, max_size=300),
            quantity=st.integers(0, 100),
            command=st.text(max_size=400),
            size=st.sampled_from(["standard-1x", "performance-l", "x"]),
        ),
        max_size=70,
    ),
    st.sampled_from([0, 20, 120, 500]),
)
def test_any_budget_renders_within_slack_limits(formation: list[ProcessType], limit: int) -> None:
    budget = connection_budget(formation, {}, limit)
    assert_within_slack_limits(budget_blocks("app", budget))
    line = verdict_line(budget)
    assert 0 < len(line) <= MAX_TEXT and "\n" not in line
