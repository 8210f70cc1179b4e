"""The Home tab end to end: a signed `app_home_opened` → the real bot → views.publish in the
Slack emulator (which holds it to Slack's limits), drawn from what pgconn stored; its
Refresh button re-reads Heroku once, for people who may see the app."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

from bot.alerts.ownership import ACKNOWLEDGE
from bot.render.home import REFRESH_ACTION
from bot.state.metrics import WINDOW_S
from emulators.slack import Message
from tests.bot.samples import frame, metric_line
from tests.conftest import System
from tests.end_to_end.conftest import WAIT_S, Alerts, addon
from tests.end_to_end.test_incident_ownership import value_of
from tests.harness import ADMIN, CHANNEL_MEMBER, OPS_CHANNEL, STRANGER, bot_env, new_port, settled, start_bot
from tests.support import blocks_text


def app_section(view: dict[str, Any], app: str) -> dict[str, Any]:
    return next(b for b in view["blocks"] if b.get("block_id") == f"app:{app}")


def published(system: System | Alerts, user: str, after: float = 0.0) -> dict[str, Any] | None:
    view = system.slack.home_view(user)
    return view if view is not None and view["published_at"] > after else None


async def report_in(system: System, app: str) -> Message:
    await system.slack.send_slash_command(app, user_id=ADMIN, channel_id=OPS_CHANNEL)
    return await system.slack.wait_for(
        lambda: next((m for m in system.slack.messages(OPS_CHANNEL) if m.blocks), None), timeout=10
    )


def data_calls(system: System) -> list[str]:
    """Calls of the Heroku Postgres API (pg:info): one per report pgconn builds."""
    return [r.path for r in system.heroku.requests if r.path.startswith("/client/v11/databases/")]


async def test_opening_the_home_tab_draws_stored_numbers_and_asks_heroku_nothing(system: System) -> None:
    system.load.open(4, "web.1")
    await report_in(system, "my-app")  # the report keeps my-app's numbers for the Home tab
    await settled(system.bot)
    heroku_before = len(system.heroku.requests)
    started = time.monotonic()
    await system.slack.open_home(ADMIN)
    view = await system.slack.wait_for(lambda: published(system, ADMIN), timeout=WAIT_S)
    elapsed = time.monotonic() - started
    await settled(system.bot)
    assert len(system.heroku.requests) == heroku_before, "opening the Home tab called Heroku"
    mine = blocks_text([app_section(view, "my-app")])
    assert "*Connections:* *5/20*" in mine and "report, just now" in mine
    assert "Budget: *" in mine and "*Watch:* off" in mine and "*Last actions:* none recorded" in mine
    assert "accessory" not in app_section(view, "my-app")  # fresh: no Refresh
    other = app_section(view, "std-app")
    assert "not read yet" in blocks_text([other]) and other["accessory"]["action_id"] == REFRESH_ACTION
    assert [c.error for c in system.slack.received if c.method == "views.publish"] == [None]
    print(f"Home tab published {elapsed * 1000:.0f} ms after app_home_opened")  # noqa: T201


async def test_the_messages_tab_publishes_nothing(system: System) -> None:
    await system.slack.open_home(ADMIN, tab="messages")
    await settled(system.bot)
    assert system.slack.calls("views.publish") == []


async def test_who_sees_which_apps(system: System) -> None:
    for user in (STRANGER, CHANNEL_MEMBER):
        await system.slack.open_home(user)
    stranger = await system.slack.wait_for(lambda: published(system, STRANGER), timeout=WAIT_S)
    member = await system.slack.wait_for(lambda: published(system, CHANNEL_MEMBER), timeout=WAIT_S)
    assert "No app to show you" in blocks_text(stranger["blocks"])
    assert "my-app" not in blocks_text(stranger["blocks"])
    # In the channel the apps' alerts go to: sees them all, though admin of none.
    assert all(app_section(member, a) for a in ("my-app", "std-app", "bare-app"))


async def test_refresh_reads_heroku_once_and_redraws(system: System) -> None:
    await system.slack.open_home(CHANNEL_MEMBER)
    first = await system.slack.wait_for(lambda: published(system, CHANNEL_MEMBER), timeout=WAIT_S)
    assert "accessory" in app_section(first, "std-app")
    before = len(data_calls(system))
    # A double click: both delivered at once, one refresh runs.
    clicks = await asyncio.gather(
        *(system.slack.click_home(CHANNEL_MEMBER, REFRESH_ACTION) for _ in range(2))
    )
    assert {c.status_code for c in clicks} == {200}

    def refreshed() -> dict[str, Any] | None:
        view = system.slack.home_view(CHANNEL_MEMBER)
        text = blocks_text([app_section(view, "my-app")]) if view else ""
        return view if "report, just now" in text else None

    view = await system.slack.wait_for(refreshed, timeout=WAIT_S)
    await settled(system.bot)
    assert len(data_calls(system)) - before == 1, data_calls(system)
    assert "accessory" not in app_section(view, "my-app")
    assert "*Connections:* *" in blocks_text([app_section(view, "my-app")])
    errors = [c.error for c in system.slack.received if c.method == "views.publish" and c.error]
    assert errors == []


async def test_refresh_of_an_app_one_may_not_see_or_that_does_not_exist_reads_nothing(system: System) -> None:
    await system.slack.open_home(CHANNEL_MEMBER)
    view = await system.slack.wait_for(lambda: published(system, CHANNEL_MEMBER), timeout=WAIT_S)
    # A forged click: the stranger's payload carries a view with a Refresh button of my-app.
    with system.slack.lock:
        system.slack.home_views[STRANGER] = dict(view)
    started = time.time()
    await system.slack.click_home(STRANGER, REFRESH_ACTION)
    refused = await system.slack.wait_for(lambda: published(system, STRANGER, started), timeout=WAIT_S)
    assert "You may not see `my-app`. Nothing was read." in blocks_text(refused["blocks"])
    started = time.time()
    await system.slack.click_home(CHANNEL_MEMBER, REFRESH_ACTION, value="no-such-app")
    unknown = await system.slack.wait_for(lambda: published(system, CHANNEL_MEMBER, started), timeout=WAIT_S)
    assert "does not know" in blocks_text(unknown["blocks"])
    await settled(system.bot)
    assert data_calls(system) == []


async def test_an_open_incident_links_its_thread_and_the_drain_draws_the_trend(alerts: Alerts) -> None:
    app, db = "std-app", addon("std-app")  # standard-0: the drain brings metric samples
    for active in (40, 70, 100, 118):
        body = frame([metric_line(active, addon=db)])
        assert (await alerts.drain(body, app=app)).status_code == 204
    parent = await alerts.one_parent()
    await alerts.until(lambda: "*Critical*" in blocks_text(parent.blocks))
    # Acknowledged on its thread (a signed click): the Home tab names the owner.
    await alerts.until(lambda: ACKNOWLEDGE.id in str(parent.blocks))
    await alerts.slack.click(
        action_id=ACKNOWLEDGE.id,
        value=value_of(parent, ACKNOWLEDGE.id),
        user_id=ADMIN,
        channel_id=alerts.channel,
        message_ts=parent.ts,
    )
    await alerts.until(lambda: "acknowledged" in blocks_text(parent.blocks).lower())
    await alerts.slack.open_home(ADMIN)
    view = await alerts.until(lambda: published(alerts, ADMIN))
    text = blocks_text([app_section(view, app)])
    assert f"<{alerts.slack.permalink(parent)}|thread>" in text
    assert ":red_circle: *critical* incident 118/120" in text and f"owned by <@{ADMIN}> for " in text
    # The newest of the drain's sample and the alert's own report (kept for the Home tab too, with
    # its budget verdict, though nobody asked for a report).
    assert re.search(r"\*Connections:\* \*\d+/120\* .* _(log drain|report), just now_", text), text
    assert "Budget: *" in text and "not computed yet" not in text
    assert f":white_check_mark: Acknowledge by <@{ADMIN}>" in text
    assert f"*Last {WINDOW_S // 60} min:* `" in text and "low 40 · high 118" in text
    assert "*Watch:* off" in text  # the drain here was never set up by `watch`


async def test_two_teams_each_see_their_own_apps(system: System) -> None:
    """std-app belongs to another team (its own channel and admins, PGCONN_APP_ROUTES): the
    deployment's admins no longer see it, and that team's admin sees only it."""
    team_b, team_b_channel = "UTEAMB001", "C0TEAMB01"
    system.slack.add_channel(team_b_channel, "team-b-db")
    system.slack.add_user(team_b, "bea")
    routes = {"std-app": {"channel": team_b_channel, "admins": [team_b]}}
    bot = start_bot(
        bot_env(
            slack_url=system.slack.url,
            heroku_url=system.heroku.url,
            redis_url=system.redis_url,
            port=new_port(),
            PGCONN_APP_ROUTES=json.dumps(routes),
        )
    )
    try:
        system.slack.request_url = bot.events_url
        for user in (ADMIN, team_b):
            await system.slack.open_home(user)
        mine = await system.slack.wait_for(lambda: published(system, ADMIN), timeout=WAIT_S)
        theirs = await system.slack.wait_for(lambda: published(system, team_b), timeout=WAIT_S)
        assert [b["block_id"] for b in mine["blocks"] if b.get("block_id", "").startswith("app:")] == [
            "app:my-app",
            "app:bare-app",
        ]
        assert "(1 app of other teams not shown)" in blocks_text(mine["blocks"])
        assert [b["block_id"] for b in theirs["blocks"] if b.get("block_id", "").startswith("app:")] == [
            "app:std-app"
        ]
        # And the other team's Refresh, forged into ADMIN's click, reads nothing.
        with system.slack.lock:
            system.slack.home_views[ADMIN] = dict(theirs)
        started = time.time()
        await system.slack.click_home(ADMIN, REFRESH_ACTION)
        refused = await system.slack.wait_for(lambda: published(system, ADMIN, started), timeout=WAIT_S)
        assert "You may not see `std-app`" in blocks_text(refused["blocks"])
        await settled(bot)
        assert data_calls(system) == []
    finally:
        bot.stop()
