"""Prevention, the pure half: snapshots, who changed what, the fixes' numbers, and when to
warn, follow up or resolve. No servers."""

from __future__ import annotations

import json

import pytest

from bot.budget import connection_budget
from bot.prevention import (
    BudgetSnapshot,
    OpenWarning,
    WatchState,
    decide,
    describe_change,
    fixes,
)
from bot.readings import ProcessType
from bot.render.prevention import follow_up_reply, resolved_reply, warning_blocks
from bot.webhooks import parse_event

LIMIT = 20
GUNICORN = "gunicorn app.wsgi -w 3"
CELERY = "celery -A app worker -c 4"


def formation(web: int, worker: int = 1, web_command: str = GUNICORN) -> tuple[ProcessType, ...]:
    return (ProcessType("web", web, web_command, "basic"), ProcessType("worker", worker, CELERY, "basic"))


def snapshot(web: int, config: dict[str, str] | None = None, limit: int = LIMIT) -> BudgetSnapshot:
    form = formation(web)
    return BudgetSnapshot.of(connection_budget(form, config or {}, limit), form, config or {})


def warning(total: int, verdict: str = "over") -> OpenWarning:
    return OpenWarning("C0ALERTS", "1.1", 100.0, "alice@example.com scaled web 3 → 6", verdict, total)  # type: ignore[arg-type]


def formation_event(quantity: int, previous: int | None, actor: str = "alice@example.com") -> bytes:
    return json.dumps(
        {
            "resource": "formation",
            "action": "update",
            "actor": {"email": actor, "id": "u"},
            "data": {"type": "web", "quantity": quantity, "size": "basic"},
            "previous_data": {"quantity": previous} if previous is not None else {},
            "webhook_metadata": {"delivery": {"id": "3c1e8f6a-9d1b-4c3e-8f7a-2b5d6e7f8a9b"}},
        }
    ).encode()


# --- snapshots ---------------------------------------------------------------------------


def test_the_snapshot_keeps_counts_and_budget_vars_but_never_urls() -> None:
    config = {"WEB_CONCURRENCY": "3", "DATABASE_URL": "postgres://u:secret@h/db", "PGBOUNCER_URLS": "x"}
    snap = snapshot(3, config)
    assert (snap.verdict, snap.total, snap.limit) == ("fits", 16, 20)
    assert snap.quantities == {"web": 3, "worker": 1}
    assert snap.config == {"WEB_CONCURRENCY": "3"}
    assert BudgetSnapshot.from_json(json.loads(json.dumps(snap.to_json()))) == snap


@pytest.mark.parametrize(
    "stored",
    [
        None,
        7,
        "x",
        {},
        {"verdict": "bad", "total": 1, "limit": 2, "quantities": {}, "config": {}},
        {"verdict": "fits", "total": "1", "limit": 2, "quantities": {}, "config": {}},
    ],
)
def test_a_damaged_snapshot_reads_as_none(stored: object) -> None:
    assert BudgetSnapshot.from_json(stored) is None


def test_a_warning_round_trips_and_a_damaged_one_reads_as_none() -> None:
    w = warning(25)
    assert OpenWarning.from_json(json.loads(json.dumps(w.to_json()))) == w
    assert OpenWarning.from_json({"channel": "C", "ts": "1"}) is None
    assert OpenWarning.from_json({**w.to_json(), "verdict": "awful"}) is None


# --- decisions ---------------------------------------------------------------------------


def test_a_change_from_fits_to_over_warns_and_keeps_the_new_snapshot() -> None:
    d = decide(WatchState(snapshot(3)), snapshot(6))
    assert d.step == "warn" and d.state.snapshot == snapshot(6)


def test_fits_to_tight_warns_too() -> None:
    assert snapshot(4).verdict == "tight"
    assert decide(WatchState(snapshot(3)), snapshot(4)).step == "warn"


def test_a_change_that_still_fits_says_nothing() -> None:
    d = decide(WatchState(snapshot(3)), snapshot(2))
    assert d.step == "none" and d.state == WatchState(snapshot(2))


def test_without_a_baseline_a_bad_budget_warns() -> None:
    assert decide(WatchState(), snapshot(6)).step == "warn"
    assert decide(WatchState(), snapshot(3)).step == "none"


def test_an_app_already_over_warns_only_when_a_change_makes_it_worse() -> None:
    assert decide(WatchState(snapshot(6)), snapshot(8)).step == "warn"
    assert decide(WatchState(snapshot(8)), snapshot(6)).step == "none"


def test_an_open_warning_follows_moves_and_resolves_when_it_fits() -> None:
    open_ = WatchState(snapshot(6), warning(25))
    worse = decide(open_, snapshot(8))
    assert worse.step == "follow_up"
    assert worse.state.warning is not None and worse.state.warning.total == 31
    assert worse.state.warning.ts == "1.1"  # the same thread
    assert decide(open_, snapshot(6)).step == "none"  # a release that changed nothing in the budget
    still = decide(open_, snapshot(4))
    assert still.step == "follow_up" and still.state.warning is not None
    assert still.state.warning.verdict == "tight"
    resolved = decide(open_, snapshot(3))
    assert resolved.step == "resolve" and resolved.state == WatchState(snapshot(3), None)


# --- who changed what ---------------------------------------------------------------------


def test_a_formation_event_names_the_actor_and_the_quantities() -> None:
    event = parse_event(formation_event(6, 3))
    assert event is not None
    assert describe_change(event, snapshot(3), snapshot(6)) == "alice@example.com scaled web 3 → 6"
    # Without previous_data, the stored snapshot has the old count.
    bare = parse_event(formation_event(6, None))
    assert describe_change(bare, snapshot(3), snapshot(6)) == "alice@example.com scaled web 3 → 6"
    assert describe_change(bare, None, snapshot(6)) == "alice@example.com scaled web to 6"


def test_a_release_names_its_version_and_the_budget_vars_it_changed() -> None:
    body = json.dumps(
        {
            "resource": "release",
            "action": "create",
            "data": {
                "version": 12,
                "description": "Set WEB_CONCURRENCY config vars",
                "user": {"email": "bob@x.io"},
            },
        }
    ).encode()
    event = parse_event(body)
    assert event is not None and event.actor == "bob@x.io"
    before = snapshot(3, {"WEB_CONCURRENCY": "2"})
    after = snapshot(3, {"WEB_CONCURRENCY": "6", "RAILS_MAX_THREADS": "5"})
    assert describe_change(event, before, after) == (
        "bob@x.io released v12 (Set WEB_CONCURRENCY config vars): WEB_CONCURRENCY 2 → 6; "
        "RAILS_MAX_THREADS (unset) → 5"
    )


def test_the_delivery_id_and_actor_are_read_with_care() -> None:
    event = parse_event(formation_event(6, 3, actor="x" * 500))
    assert event is not None and event.delivery_id == "3c1e8f6a-9d1b-4c3e-8f7a-2b5d6e7f8a9b"
    assert event.actor is not None and len(event.actor) == 120
    odd = json.loads(formation_event(6, 3))
    odd["webhook_metadata"]["delivery"]["id"] = "../../etc\npasswd"
    odd["data"]["quantity"] = True
    odd["data"]["type"] = "Web\nforged"
    parsed = parse_event(json.dumps(odd).encode())
    assert parsed is not None and parsed.delivery_id is None and parsed.formation is None


# --- fixes ---------------------------------------------------------------------------------


def test_the_fixes_for_the_issue_example_have_the_numbers() -> None:
    form = formation(6)
    budget = connection_budget(form, {}, LIMIT)
    assert (budget.total, budget.verdict) == (25, "over")
    found = fixes("demo", budget, form, {}, changed_type="web")
    texts = [f.text for f in found.items]
    assert texts == [
        "Scale web back to 4 dynos (19 of 20 — still tight)",
        "Add PgBouncer with a pool of 1 server connection per dyno (+1 reserve): 17 of 20, however many "
        "threads the app runs",
    ]
    assert found.items[0].command == "heroku ps:scale web=4 -a demo"
    assert found.pgbouncer_pool == 1


def test_web_concurrency_is_offered_only_when_it_drives_the_budget() -> None:
    form = formation(6, web_command="gunicorn app.wsgi")
    config = {"WEB_CONCURRENCY": "3"}
    budget = connection_budget(form, config, LIMIT)
    found = fixes("demo", budget, form, config, changed_type="web")
    (concurrency,) = [f for f in found.items if f.kind == "concurrency"]
    assert concurrency.text == "Set WEB_CONCURRENCY to 2 (now 3): 19 of 20 — still tight"
    assert concurrency.command == "heroku config:set WEB_CONCURRENCY=2 -a demo"
    # Every fix it offers really is under the limit, by the same maths.
    for fix in found.items:
        assert fix.total_after is not None and fix.total_after <= LIMIT


def test_when_even_zero_dynos_of_a_type_do_not_fit_it_says_so() -> None:
    form = (
        ProcessType("web", 2, GUNICORN, "basic"),
        ProcessType("worker", 1, "celery -A app worker -c 30", "basic"),
    )
    budget = connection_budget(form, {}, LIMIT)
    found = fixes("demo", budget, form, {}, changed_type="worker")
    assert (budget.total, budget.max_dynos["worker"]) == (39, 0)
    assert found.items[0].text == (
        "Even 1 worker dyno needs 30 connections, more than the 11 the rest leaves: lower its concurrency, "
        "or stop it (9 of 20)"
    )


# --- rendering -----------------------------------------------------------------------------


def test_outside_text_is_escaped_in_every_message() -> None:
    change = "<!channel> *bold* scaled web 3 → 6"
    form = formation(6)
    budget = connection_budget(form, {}, LIMIT)
    blocks = json.dumps(warning_blocks("demo", change, budget, fixes("demo", budget, form, {}), at=0))
    assert "<!channel>" not in blocks and "&lt;!channel&gt;" in blocks
    assert "<!channel>" not in follow_up_reply(change, budget)
    assert "<!channel>" not in resolved_reply(change, budget)
