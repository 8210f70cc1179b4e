"""An incident escalated, acknowledged, snoozed and resolved, walked in a real browser against
`python -m bot --sandbox` (the session's sandbox, tests/sandbox/conftest.py).

A one-off dyno floods the role → Postgres refuses for real, the refusals reach pgconn through its
log drain → the alert thread opens, "Not acknowledged yet" → nobody acknowledges within demo-app's
10 s: pgconn escalates to (emulated) PagerDuty, whose incident shows in the page's PagerDuty card →
Acknowledge: the parent names the owner, PagerDuty acknowledges → Snooze for an hour → Resolve,
through its confirm dialog: resolved by hand, PagerDuty resolves. Runs last (modules run in name
order), after the story and the forecast, so their timings stay as they were; the incident it walks
is the app's open one (the story's may still be open: the one-off dyno's refusals then join it, as
they would in production), and it leaves no connection held.
"""

from __future__ import annotations

from typing import Any

from tests.sandbox.conftest import RunningSandbox
from tests.sandbox.test_sandbox_story import WAIT_S, page, role_backends, shot, wait_until

__all__ = ["page"]  # the story's page fixture (a fresh browser context, failing on JS errors)


def test_an_incident_escalated_acknowledged_snoozed_and_resolved(sandbox: RunningSandbox, page: Any) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_S * 1000)
    page.goto(sandbox.url)
    page.wait_for_selector("body[data-ready=true]")
    alerts = page.locator("#channel-C0ALERTS")
    pd_incidents = page.locator("#pagerduty-incidents")
    refused_before = sandbox.state()["load"].get("refused", 0)

    # 1. A one-off dyno asks for 25 connections: Postgres refuses the ones over 20, and pgconn opens
    #    a thread nobody owns yet.
    page.click("#flood")
    opened = alerts.locator(
        ".messages > .message", has=page.locator("button.bk-button", has_text="Acknowledge")
    )
    expect(opened).to_contain_text("out of database connections")
    # The parent, by its ts from now on (it stops offering Acknowledge once someone owns it).
    alert = alerts.locator(f".messages > .message[data-ts='{opened.get_attribute('data-ts')}']")
    expect(alert).to_contain_text("Not acknowledged yet")
    expect(alert).to_contain_text("run.1")  # the refusal it shows is the one-off dyno's
    shot(page, "incident-01-open")

    # 2. Nobody acknowledged within 10 s: one PagerDuty incident, said in the thread and on the parent.
    newest = pd_incidents.locator("li").first  # the card lists PagerDuty's incidents newest first
    expect(newest).to_have_attribute("data-status", "triggered")
    expect(newest).to_contain_text("demo-app")
    expect(alert).to_contain_text("Escalated to PagerDuty")
    alert.locator("button.thread-toggle[aria-expanded=false]").click()
    expect(alert.locator(".replies .message", has_text="Escalated to PagerDuty")).to_contain_text(
        "nobody acknowledged this incident in time"
    )
    shot(page, "incident-02-escalated")

    # 3. Acknowledge: the parent names the owner; PagerDuty acknowledges too.
    alert.locator("button.bk-button", has_text="Acknowledge").click()
    expect(alert).to_contain_text("Acknowledged by @you since")
    expect(alert.locator(".replies .message", has_text="@you acknowledged this incident")).to_be_visible()
    expect(alert.locator("button.bk-button", has_text="Acknowledge")).to_have_count(0)
    expect(newest).to_have_attribute("data-status", "acknowledged")
    expect(alert.locator(".replies .message", has_text="PagerDuty acknowledged too")).to_be_visible()
    shot(page, "incident-03-acknowledged")

    # 4. Snooze for an hour, from the menu.
    alert.locator(".bk-section", has_text="Snooze:").locator("select.bk-overflow").select_option(
        label="Snooze 1 hour"
    )
    expect(alert).to_contain_text("Snoozed by @you until")
    expect(alert.locator(".replies .message", has_text="snoozed this thread until")).to_be_visible()
    shot(page, "incident-04-snoozed")

    # 5. Resolve, after its confirm dialog: resolved by hand, and PagerDuty resolves.
    alert.locator("button.bk-button", has_text="Resolve").click()
    modal = page.locator("#modal")
    expect(modal).to_contain_text("Resolve this incident?")
    page.click("#modal-confirm")
    expect(modal).to_be_hidden()
    expect(alert).to_contain_text("resolved by hand by @you")
    expect(alert.locator(".replies .message", has_text="PagerDuty resolved too")).to_be_visible()
    expect(newest).to_have_attribute("data-status", "resolved")
    expect(newest).to_contain_text("trigger → acknowledge → resolve")
    shot(page, "incident-05-resolved")

    page.click("#stop-load")
    wait_until("the one-off dyno's connections to close", lambda: "run.1" not in role_backends(sandbox))
    assert sandbox.state()["load"].get("refused", 0) == refused_before  # the flood's are its own
