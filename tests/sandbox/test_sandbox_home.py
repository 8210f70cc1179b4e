"""pgconn's Home tab and the "Diagnose with pgconn" message shortcut, walked in a real browser
against `python -m bot --sandbox` (the session's sandbox, tests/sandbox/conftest.py).

Open the Home tab (Slack sends `app_home_opened`; pgconn publishes the view) → demo-app has no
reading yet, so it says so and offers Refresh → Refresh (a signed click from the Home view)
→ the numbers from the report pgconn just built, as Postgres has them → "Diagnose with pgconn"
on a colleague's question in #ops → the report in that message's thread; on a message naming no
app → an answer only the person sees. Nothing here posts at the top of a channel.
"""

from __future__ import annotations

import re
from typing import Any

from tests.sandbox.conftest import RunningSandbox
from tests.sandbox.test_sandbox_story import WAIT_S, app_backends, page, role_backends, shot

__all__ = ["page"]  # the story's page fixture (a fresh browser context, failing on JS errors)


def test_home_tab_refresh_and_the_message_shortcut(sandbox: RunningSandbox, page: Any) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_S * 1000)
    page.goto(sandbox.url)
    page.wait_for_selector("body[data-ready=true]")
    home = page.locator("#home-view")

    # 1. Open the Home tab: drawn from what pgconn stored, and it has read nothing yet.
    page.click("#open-home")
    demo = home.locator(".bk-section", has_text="demo-app")
    expect(demo).to_contain_text("Connections: not read yet")
    expect(demo).to_contain_text("Watch: on")  # the sandbox ran `watch` at start
    refresh = demo.locator("button.bk-button", has_text="Refresh")
    expect(refresh).to_be_visible()
    shot(page, "home-01-not-read-yet")

    # 2. Refresh: pgconn reads demo-app as `/pgconn demo-app` would, then redraws the tab.
    refresh.click()
    expect(demo).to_contain_text("report, just now")
    expect(refresh).to_have_count(0)
    shown = re.search(r"Connections: (\d+)/(\d+)", demo.inner_text())
    assert shown, demo.inner_text()
    # The role's own count as Postgres has it (no load runs yet: pgconn's reserved connection).
    assert int(shown.group(2)) == 20 and app_backends(sandbox) == 0
    assert int(shown.group(1)) == sum(role_backends(sandbox).values())
    expect(demo).to_contain_text("Budget:")
    shot(page, "home-02-refreshed")

    # 3. A colleague asks about demo-app in #ops; "Diagnose with pgconn" on that message.
    ops = page.locator("#channel-C0OPS")
    composer = ops.locator("input[name=text]")
    composer.fill("is demo-app ok? checkout feels slow")
    composer.press("Enter")
    question = ops.locator(".messages > .message", has_text="checkout feels slow")
    expect(question).to_be_visible()
    question.locator("button.shortcut").first.click()
    answer = question.locator(".replies .message", has_text="asked pgconn about demo-app")
    expect(answer).to_be_visible()
    expect(answer.locator("button.bk-button", has_text="Kill all")).to_be_visible()
    expect(answer).to_contain_text("Connections:")
    shot(page, "home-03-shortcut-answer")

    # 4. On a message that names no app pgconn knows: an answer for this person alone.
    composer.fill("lunch at noon?")
    composer.press("Enter")
    lunch = ops.locator(".messages > .message", has_text="lunch at noon?")
    expect(lunch).to_be_visible()
    lunch.locator("button.shortcut").first.click()
    said = ops.locator(".message.ephemeral", has_text="found no app pgconn knows")
    expect(said).to_contain_text("Only visible to you")
    expect(said).to_contain_text("demo-app")
    shot(page, "home-04-no-app")
