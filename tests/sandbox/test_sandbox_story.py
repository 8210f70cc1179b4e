"""The seed story, end to end, in a real browser against `python -m bot --sandbox`.

Ask for a report → scale web from 3 to 6 dynos (pgconn warns, from Heroku's formation
webhook, before any connection fails) → exhaust the role's connections (Postgres refuses
for real, the refusals reach pgconn through its log drain) → the alert thread opens → Kill all, as an admin,
through the confirm dialog → the connections are gone → scale back to 3 (the warning
resolves in its thread) → Add PgBouncer → the release starts
a real PgBouncer per dyno, 40 app threads share a few server connections, the role stays
under its limit; pgconn verifies Kill all, and Add PgBouncer once the deploy that carries it is
released. Every number asserted is read from Postgres or PgBouncer themselves.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import psycopg
import pytest

from tests.sandbox.conftest import ARTIFACTS, RunningSandbox

T = TypeVar("T")

WAIT_S = 20.0


def wait_until(what: str, probe: Callable[[], T | None], timeout: float = WAIT_S) -> T:
    """Poll until `probe` returns something truthy; fail saying what did not happen."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what} (last: {last!r})")
        time.sleep(0.1)


def role_backends(sandbox: RunningSandbox) -> dict[str, int]:
    """application_name → backends of the app's role, from the real pg_stat_activity."""
    pg = sandbox.state()["postgres"]
    with psycopg.connect(pg["admin_dsn"], autocommit=True) as conn:
        rows = conn.execute(
            "SELECT coalesce(application_name, ''), count(*) FROM pg_stat_activity "
            "WHERE usename = %s GROUP BY 1",
            (pg["role"],),
        ).fetchall()
    return {str(name): int(n) for name, n in rows}


def app_backends(sandbox: RunningSandbox) -> int:
    """The dynos' backends: everything but pgconn's own reserved connection."""
    return sum(n for name, n in role_backends(sandbox).items() if not name.startswith("pgconn"))


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def test_exhaust_alert_kill_all_then_pgbouncer(sandbox: RunningSandbox, page: Any) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_S * 1000)
    page.goto(sandbox.url)
    page.wait_for_selector("body[data-ready=true]")
    ops = page.locator("#channel-C0OPS")
    alerts = page.locator("#channel-C0ALERTS")

    # 1. /pgconn demo-app in #ops: the report pgconn posted, rendered from its Block Kit.
    composer = ops.locator("input[name=text]")
    composer.fill("/pgconn demo-app")
    composer.press("Enter")
    report = ops.locator(".messages > .message", has=page.locator(".bk-header", has_text="demo-app"))
    expect(report).to_be_visible()
    expect(report.locator("button.bk-button", has_text="Kill all")).to_be_visible()
    shot(page, "01-report")

    # 2. Scale web 3 → 6, as `heroku ps:scale` would: Heroku's webhook reaches pgconn, which
    #    warns with the change and the numbers while nothing has failed yet.
    page.click("#scale-up")
    budget_header = page.locator(".bk-header", has_text="connection budget")
    warning = alerts.locator(".messages > .message", has=budget_header)
    expect(warning).to_contain_text("scaled web 3 → 6")
    expect(warning).to_contain_text("It can open 23 connections against the plan's 20")
    expect(warning).to_contain_text("Set WEB_CONCURRENCY to 2 (now 3): 17 of 20")
    expect(warning.locator("button.bk-button", has_text="Add PgBouncer")).to_be_visible()
    assert sandbox.state()["load"].get("refused", 0) == 0, "warned before any connection failed"
    assert app_backends(sandbox) == 0
    shot(page, "02-budget-warning")

    # 3. Exhaust: the six web dynos and the worker ask for 20 connections, the role allows 20
    #    and pgconn holds one.
    page.click("#exhaust")
    wait_until("the role to be full in pg_stat_activity", lambda: sum(role_backends(sandbox).values()) == 20)
    refusals = sandbox.state()["load"].get("refused", 0)
    assert refusals >= 1, "Postgres should have refused the connections over the limit"
    alert = alerts.locator(".messages > .message", has=page.locator("button.bk-button", has_text="Kill all"))
    expect(alert).to_contain_text("demo-app")
    thread = alerts.locator(f".messages > .message[data-ts='{alert.get_attribute('data-ts')}']")
    drain = sandbox.state()["drain"]
    assert drain and drain[0]["status"] in (200, 202, 204), drain
    assert any("too many connections for role" in line for line in drain[0]["lines"])
    shot(page, "03-alert")

    # 4. Kill all, as U0SANDBOX (an admin), after the confirm dialog.
    backends = role_backends(sandbox)
    assert sum(backends.values()) == 20, backends
    held = sum(n for name, n in backends.items() if not name.startswith("pgconn"))
    alert.locator("button.bk-button", has_text="Kill all").click()
    modal = page.locator("#modal")
    expect(modal).to_be_visible()
    expect(modal).to_contain_text("Kill all connections?")
    shot(page, "04-confirm")
    page.click("#modal-confirm")
    expect(modal).to_be_hidden()
    result = alert.locator(".replies .message", has_text="ran Kill all")
    expect(result).to_be_visible()
    said = result.inner_text()
    match = re.search(r"@you ran Kill all on demo-app: terminated (\d+) of (\d+) connections", said)
    assert match, said
    assert int(match.group(1)) == held
    wait_until("the dynos' connections to be gone", lambda: app_backends(sandbox) == 0)
    shot(page, "05-killed")

    # 5. Scale back to 3: the warning thread says the budget fits again.
    page.click("#scale-down")
    expect(warning.locator(".bk-header")).to_contain_text("fits again")
    warning.locator("button[aria-expanded=false]", has_text="1 reply").click()
    expect(warning.locator(".replies .message", has_text="back under the limit")).to_contain_text(
        "scaled web 6 → 3"
    )
    shot(page, "06-budget-resolved")

    # 5b. A few seconds after Kill all (a minute in production), pgconn checked its effect.
    checked = alert.locator(".replies .message", has_text="checked by pgconn")
    verified_kill = checked.filter(has_text="after Kill all")
    expect(verified_kill).to_contain_text(re.compile(r"verified: 20/20 → \d+/20"))

    # 6. Add PgBouncer: the release starts one real PgBouncer per dyno with pgconn's pool size,
    #    and 40 app threads run through them.
    alert.locator("button.bk-button", has_text="Add PgBouncer").click()
    expect(modal).to_contain_text("Add PgBouncer?")
    page.click("#modal-confirm")
    expect(alert.locator(".replies .message", has_text="ran Add PgBouncer")).to_contain_text(
        "PgBouncer buildpack"
    )

    def pooled() -> dict[str, Any] | None:
        state = sandbox.state()
        pgb, load = state["pgbouncer"], state["load"]
        ready = pgb["status"] == "running" and pgb["clients"] == 40 and load.get("queries", 0) > 200
        return state if ready else None

    state = wait_until("40 clients running through PgBouncer", pooled)
    pool_size = int(state["heroku"]["config"]["PGBOUNCER_DEFAULT_POOL_SIZE"])
    bouncers = state["pgbouncer"]["dynos"]
    assert [b["dyno"] for b in bouncers] == ["web.1", "web.2", "web.3", "worker.1"]
    assert all(b["pool_size"] == pool_size for b in bouncers)
    assert state["load"]["errors"] == 0, state["load"]
    expect(page.locator("#pgbouncer-headline")).to_contain_text("40 clients")

    # The real server side: a few connections per dyno, never more than the pools allow,
    # and the role under its limit while 40 clients work.
    per_dyno_cap = max(b["pool_size"] + b["reserve_pool_size"] for b in bouncers)
    for _ in range(10):
        backends = role_backends(sandbox)
        dynos = {name: n for name, n in backends.items() if not name.startswith("pgconn")}
        assert all(n <= per_dyno_cap for n in dynos.values()), dynos
        assert sum(backends.values()) < 20, backends
        time.sleep(0.1)
    assert state["pgbouncer"]["servers"] <= len(bouncers) * per_dyno_cap
    assert sandbox.state()["load"].get("refused", 0) == refusals, "no new refusals behind PgBouncer"
    shot(page, "07-pgbouncer")

    # 7. pgconn followed the deploy that carried the buildpack (its api:release webhook) and, a
    #    few seconds later, compared the connections per dyno with the pools it sized.
    releases = sandbox.state()["heroku"]["releases"]
    assert releases[0]["description"] == "Deploy pgbouncer", releases
    verified_pgbouncer = checked.filter(has_text="after release v")
    expect(verified_pgbouncer).to_contain_text(f"after release v{releases[0]['version']}")
    expect(verified_pgbouncer).to_contain_text("verified:")
    expect(verified_pgbouncer).to_contain_text(f"within the pool of {per_dyno_cap}")
    shot(page, "08-pgbouncer-verified")

    # 8. The incident ends by itself (20 s below the threshold in the sandbox, 5 minutes by
    #    default): its post-mortem in the thread, and the chart of connections by holder
    #    uploaded through Slack's file flow, displayed as an image.
    # (Resolved, the parent drops its buttons: found by its ts from here on.)
    postmortem = thread.locator(".replies .message", has=page.locator(".bk-header", has_text="Post-mortem"))
    expect(postmortem).to_contain_text("Post-mortem: demo-app", timeout=40_000)
    expect(postmortem).to_contain_text("ran Kill all")
    expect(postmortem).to_contain_text("What would keep it from coming back")
    chart = thread.locator(".replies .message img.file-image")
    expect(chart).to_be_visible()
    size = chart.evaluate("img => img.complete ? [img.naturalWidth, img.naturalHeight] : null")
    assert size == [900, 420], size
    expect(thread.locator(".replies .message .file-name", has_text="postmortem-demo-app.md")).to_be_visible()
    chart.scroll_into_view_if_needed()
    shot(page, "09-postmortem")
    # Kept as pgconn wrote them (the README's example post-mortem comes from such a run).
    for link in thread.locator(".replies .message .file a.file-name").all():
        href = link.get_attribute("href")
        name = link.inner_text().split(" · ")[1]
        (ARTIFACTS / name).write_bytes(page.request.get(f"{sandbox.url}{href}").body())


def test_messages_render_as_text_not_markup(sandbox: RunningSandbox, page: Any) -> None:
    """What anyone types (or any bot posts) is shown as text: mrkdwn styles, never HTML."""
    from playwright.sync_api import expect

    page.goto(sandbox.url)
    page.wait_for_selector("body[data-ready=true]")
    alerts = page.locator("#channel-C0ALERTS")
    composer = alerts.locator("input[name=text]")
    composer.fill('<img src=x onerror="window.__pwned=1"> *bold* `code` <b>not bold</b>')
    composer.press("Enter")
    message = alerts.locator(".messages > .message", has_text="not bold")
    expect(message).to_be_visible()
    expect(message.locator("strong")).to_have_text("bold")
    expect(message.locator("code")).to_have_text("code")
    assert message.locator("img, b").count() == 0
    assert page.evaluate("window.__pwned") is None
    expect(message).to_contain_text('<img src=x onerror="window.__pwned=1">')


def test_two_teams_each_run_their_own_app(sandbox: RunningSandbox, page: Any) -> None:
    """demo-app is team one's (you, through its user group; #pgconn-alerts), billing-api team two's
    (#billing-alerts, the billing group). You are refused on billing-api's button exactly as a
    stranger would be, nothing runs, and billing-api's notices and audit stay in its channel."""
    from playwright.sync_api import expect

    page.goto(sandbox.url)
    page.wait_for_selector("body[data-ready=true]")
    expect.set_options(timeout=WAIT_S * 1000)
    ops, alerts, billing = (page.locator(f"#channel-{c}") for c in ("C0OPS", "C0ALERTS", "C0BILLING"))

    # The billing team's admin watched billing-api at start: announced in its channel only.
    notice = billing.locator(".messages > .message", has_text="ran /pgconn billing-api watch")
    expect(notice).to_contain_text("@bea")
    expect(alerts.locator(".messages > .message", has_text="billing-api")).to_have_count(0)

    # You (an admin of demo-app) ask for billing-api's report and press its Kill all.
    composer = ops.locator("input[name=text]")
    composer.fill("/pgconn billing-api")
    composer.press("Enter")
    report = ops.locator(".messages > .message", has=page.locator(".bk-header", has_text="billing-api"))
    report.locator("button.bk-button", has_text="Kill all").click()
    page.click("#modal-confirm")
    refusal = ops.locator(".message", has_text="Only pgconn admins may run Kill all on billing-api")
    expect(refusal).to_contain_text("Nothing was done.")
    expect(report.locator(".replies .message")).to_have_count(0)
    shot(page, "08-two-teams-refused")

    # billing-api's audit is its team's: refused to you in #ops, shown in #billing-alerts, and the
    # only action on it is the billing admin's watch.
    composer.fill("/pgconn billing-api audit")
    composer.press("Enter")
    expect(ops.locator(".message", has_text="may run /pgconn billing-api audit")).to_be_visible()
    billing_composer = billing.locator("input[name=text]")
    billing_composer.fill("/pgconn billing-api audit")
    billing_composer.press("Enter")
    audit = billing.locator(".message", has_text="Recent pgconn actions on billing-api")
    expect(audit).to_contain_text("watch")
    expect(audit).not_to_contain_text("Kill all")
    shot(page, "09-two-teams-audit")
