"""A slow leak in the sandbox, forecast before the first refusal, in a real browser.

Runs after the story (modules run in name order) on the session's sandbox: "Leak slowly" makes
worker.1 open one more direct connection every 2 s; pgconn counts the role every half second over
its reserved connection (demo-app is on Essential-0: no metrics) and warns in #pgconn-alerts with
the rate and the time to 20/20 before Postgres refuses anything.
"""

from __future__ import annotations

from typing import Any

from tests.sandbox.conftest import RunningSandbox
from tests.sandbox.test_sandbox_story import WAIT_S, page, shot  # noqa: F401 - `page` is a fixture


def test_a_slow_leak_is_forecast_before_the_first_refusal(sandbox: RunningSandbox, page: Any) -> None:  # noqa: F811
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_S * 2 * 1000)
    page.goto(sandbox.url)
    page.wait_for_selector("body[data-ready=true]")
    refused = sandbox.state()["load"].get("refused", 0)
    alerts = page.locator("#channel-C0ALERTS")
    page.click("#ramp")
    warning = alerts.locator(".messages > .message", has_text="connections are rising")
    expect(warning).to_be_visible()
    assert sandbox.state()["load"].get("refused", 0) == refused, "warned before any refusal"
    expect(warning).to_contain_text("a minute: 20/20 in about")
    shot(page, "09-forecast")
    page.click("#stop-load")
