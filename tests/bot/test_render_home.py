"""The Home tab's rendering (bot.render.home), pure: plain values in, a view Slack would take out.

Every view here is checked by the Slack emulator's own validator (emulators.slack_views),
which holds Slack's documented limits for a Home tab (100 blocks, 3000-character texts…).
"""

from __future__ import annotations

import json
from typing import Any

from bot.render.home import (
    MAX_VIEW_BLOCKS,
    REFRESH_ACTION,
    HomeApp,
    HomeIncident,
    HomeView,
    home_view,
    stale,
)
from bot.state.home import Reading
from bot.state.metrics import WINDOW_S
from bot.state.remediation import AuditRecord
from emulators.slack_views import VIEW_MAX_BYTES, view_errors

NOW = 1_800_000_000.0
FRESH = NOW - 120
STALE_S = 900


def reading(app: str, at: float = FRESH, used: int | None = 14, limit: int | None = 20) -> Reading:
    return Reading(
        app=app,
        at=at,
        database=f"postgresql-{app}",
        used=used,
        limit=limit,
        verdict="fits",
        budget_line="Budget: *14* of 20 connections — fits, 70% of the limit (web 9, worker 2, headroom 3)",
    )


def busy_app(i: int) -> HomeApp:
    """An app with everything the tab can show, at its longest: a 30-character name (Heroku's
    maximum), samples, two open incidents, three actions, notes and something unreadable."""
    name = f"team-{i:02d}-" + "x" * 22
    return HomeApp(
        app=name,
        reading=Reading(
            app=name, at=NOW - 7200, database="postgresql-a", used=19, limit=20, verdict="over",
            budget_line="Budget: *29* of 20 connections — over the limit by 9 (web 18, worker 8, headroom 3)",
            notes=("pg:info unavailable: Heroku answered 503 " + "y" * 200,),
        ),
        samples=tuple(range(3, 20)) * 6,
        last_sample_at=NOW - 3000,
        incidents=tuple(
            HomeIncident(
                severity="critical", opened_at=NOW - 600, current=20, limit=20,
                link=f"https://pgconn.slack.com/archives/C0ALERTS/p17000000000000{k}", channel="C0ALERTS",
                owner="U0ALICE", owned_at=NOW - 300, snoozed_until=NOW + 600, escalated=True,
            )
            for k in range(2)
        ),
        watched=True,
        actions=tuple(
            AuditRecord(at=NOW - 60 * k, user="U0ALICE", action="pgconn.killall", app=name, ok=k != 1,
                        result="terminated 18 connections")
            for k in range(3)
        ),
        unreadable=("the audit log",),
    )


def texts(view: dict[str, Any]) -> str:
    return "\n".join(
        str(b["text"]["text"]) if isinstance(b.get("text"), dict) else json.dumps(b) for b in view["blocks"]
    )


def test_fifty_busy_apps_fit_slacks_limits() -> None:
    view = home_view(HomeView(apps=[busy_app(i) for i in range(50)], now=NOW, stale_after_s=STALE_S))
    size = len(json.dumps(view).encode())  # ASCII-escaped: the larger of the two encodings
    assert view_errors(view) == []
    assert len(view["blocks"]) <= MAX_VIEW_BLOCKS
    assert size < VIEW_MAX_BYTES / 2
    # Every app is there, each with its Refresh (its numbers are two hours old).
    shown = texts(view)
    assert all(f"team-{i:02d}-" in shown for i in range(50))
    refresh = [b for b in view["blocks"] if b.get("accessory", {}).get("action_id") == REFRESH_ACTION]
    assert len(refresh) == 50
    # Cut to fit, each app still says the two things that must not be lost.
    assert shown.count("*Stale:*") == 50 and shown.count("Could not read the audit log") == 50


def test_past_what_one_view_holds_the_rest_are_named() -> None:
    apps = [HomeApp(app=f"app-{i:03d}", reading=reading(f"app-{i:03d}")) for i in range(150)]
    view = home_view(HomeView(apps=apps, now=NOW, stale_after_s=STALE_S, problems=("something",)))
    assert view_errors(view) == [] and len(view["blocks"]) == MAX_VIEW_BLOCKS
    last = view["blocks"][-1]["text"]["text"]
    assert "54 more apps not shown" in last and "`app-149`" in last and "`app-096`" in last
    assert "*app-095*" in texts({"blocks": view["blocks"][:-1]})


def test_an_app_shows_its_numbers_trend_budget_incident_watch_and_actions() -> None:
    app = busy_app(1)
    text = texts(home_view(HomeView(apps=[app], now=NOW, stale_after_s=STALE_S)))
    # The drain's sample (50 min old) is newer than the report (2 h old): its count is shown.
    assert "*Connections:* *19/20*" in text and "log drain" in text
    assert f"*Last {WINDOW_S // 60} min:* `" in text and "low 3 · high 19" in text
    assert "over the limit by 9" in text
    assert "<https://pgconn.slack.com/archives/C0ALERTS/p170000000000000|thread>" in text
    assert "owned by <@U0ALICE> for 5m 00s" in text and "snoozed 10m 00s more" in text
    assert "escalated to PagerDuty" in text
    assert "*Watch:* on" in text
    assert ":white_check_mark: Kill all by <@U0ALICE>" in text and ":x: Kill all" in text
    assert "Could not read the audit log." in text
    assert "pg:info unavailable" in text
    assert "*Stale:*" in text


def test_fresh_numbers_have_no_refresh_and_missing_ones_say_so() -> None:
    fresh = HomeApp(app="fresh-app", reading=reading("fresh-app"), watched=False)
    never = HomeApp(app="never-read", watched=None)
    view = home_view(HomeView(apps=[fresh, never], now=NOW, stale_after_s=STALE_S))
    sections = [b for b in view["blocks"] if b["type"] == "section"]
    assert "accessory" not in sections[0]
    assert sections[1]["accessory"]["value"] == "never-read"
    assert not stale(fresh, NOW, STALE_S) and stale(never, NOW, STALE_S)
    text = texts(view)
    assert "*Connections:* *14/20*" in text and "report, 2m 00s ago" in text
    assert "`/pgconn fresh-app watch`" in text
    assert "*Connections:* not read yet" in text and "*Watch:* could not be read" in text
    assert "*Trend:* no samples" in text


def test_outside_text_stays_inert() -> None:
    app = HomeApp(
        app="my-app",
        reading=reading("my-app"),
        actions=(AuditRecord(at=NOW, user="<!channel>", action="<https://evil|x>", app="my-app", ok=True,
                             result=""),),
    )
    text = texts(home_view(HomeView(apps=[app], now=NOW, stale_after_s=STALE_S)))
    assert "<!channel>" not in text and "<https://evil" not in text


def test_nobody_to_show() -> None:
    view = home_view(HomeView(apps=[], now=NOW, stale_after_s=STALE_S, hidden=3))
    assert view_errors(view) == []
    assert "No app to show you" in texts(view) and "3 apps of other teams not shown" in texts(view)
