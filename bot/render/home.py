"""The Home tab (views.publish): every app the viewer may see, from what pgconn stored. Pure.

Slack's limits for a Home tab view (https://docs.slack.dev/reference/views/home-tab-views):
at most 100 blocks; each section's text at most 3000 characters, a button's label 75 and its
value 2000 (the Block Kit limits of messages hold in views too). pgconn draws one section per
app (its Refresh button, when the numbers are stale, is that section's accessory), so 50 apps
take 52 blocks; dividers go between apps only while they fit, and past MAX_APP_BLOCKS apps the
rest are named in one last section. Each app's text is cut to a share of TEXT_BUDGET, so the
whole view stays far under the 250 KB pgconn's emulator holds views to (bench: a 50-app Home).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.render.alert import downsample
from bot.render.ownership import INCIDENT_LABELS
from bot.render.remediation import ACTION_LABELS
from bot.render.text import (
    MAX_TEXT,
    bar,
    code,
    duration,
    escape,
    fit_lines,
    inert,
    plural,
    sparkline,
    truncate,
)
from bot.state.home import Reading
from bot.state.metrics import WINDOW_S
from bot.state.remediation import AuditRecord

MAX_VIEW_BLOCKS = 100  # Slack's cap for a Home tab
# Characters of app text in one view, shared out between the apps shown.
TEXT_BUDGET = 60_000
REFRESH_ACTION = "pgconn.home_refresh"
TREND_POINTS = 24
ACTIONS_SHOWN = 3

Block = dict[str, Any]


@dataclass(frozen=True)
class HomeIncident:
    severity: str  # "warn" / "critical"
    opened_at: float
    current: int | None
    limit: int | None
    link: str | None  # the thread's permalink; None when Slack would not give one
    channel: str
    owner: str = ""  # who acknowledged it (user id)
    owned_at: float = 0.0
    snoozed_until: float | None = None
    escalated: bool = False  # sent to PagerDuty


@dataclass(frozen=True)
class HomeApp:
    """What pgconn has stored about one app, for the Home tab."""

    app: str
    reading: Reading | None = None
    samples: tuple[int, ...] = ()  # active connections from the drain's metric samples, oldest first
    last_sample_at: float | None = None
    incidents: tuple[HomeIncident, ...] = ()
    watched: bool | None = None  # None: could not be read
    actions: tuple[AuditRecord, ...] = ()
    unreadable: tuple[str, ...] = ()  # what could not be read, one phrase each
    refreshing_by: str = ""  # someone's Refresh of this app is running


@dataclass(frozen=True)
class HomeView:
    apps: Sequence[HomeApp]
    now: float
    stale_after_s: float
    hidden: int = 0  # apps pgconn has that this viewer may not see
    problems: tuple[str, ...] = field(default_factory=tuple)  # what could not be read at all


def _when(at: float, now: float) -> str:
    return "just now" if now - at < 60 else f"{duration(now - at)} ago"


def stale(app: HomeApp, now: float, stale_after_s: float) -> bool:
    """No reading, or none within `stale_after_s` (a newer drain sample counts as fresh numbers)."""
    latest = max(
        (t for t in (app.reading.at if app.reading else None, app.last_sample_at) if t is not None),
        default=None,
    )
    return latest is None or now - latest > stale_after_s


def _limit(app: HomeApp) -> int | None:
    """The last report's limit, else the one an open incident knows (an app seen by its drain only)."""
    from_report = app.reading.limit if app.reading else None
    return from_report or next((i.limit for i in app.incidents if i.limit), None)


def _connections(app: HomeApp, now: float) -> str:
    r = app.reading
    limit = _limit(app)
    if app.samples and app.last_sample_at is not None and (r is None or app.last_sample_at >= r.at):
        used: int | None = app.samples[-1]
        at, source = app.last_sample_at, "log drain"
    elif r is not None:
        used, at, source = r.used, r.at, "report"
    else:
        return "*Connections:* not read yet"
    if used is None:
        return f"*Connections:* could not be read ({source}, {_when(at, now)})"
    age = f"_{source}, {_when(at, now)}_"
    if not limit:
        return f"*Connections:* *{used}* (limit unknown) · {age}"
    share = used / limit
    flag = " — *at the limit*" if used >= limit else (" — close to the limit" if share >= 0.8 else "")
    shown = f"*{used}/{limit}* `{bar(used, limit, width=16)}` {round(share * 100)}%"
    return f"*Connections:* {shown}{flag} · {age}"


def _trend(app: HomeApp) -> str:
    if len(app.samples) < 2:
        return f"*Trend:* no samples in the last {WINDOW_S // 60} min (the log drain's metrics bring them)"
    limit = _limit(app)
    points = downsample(list(app.samples), TREND_POINTS)
    spark = sparkline(points, lo=0, hi=limit) if limit else sparkline(points, lo=0)
    return f"*Last {WINDOW_S // 60} min:* `{spark}` low {min(app.samples)} · high {max(app.samples)}"


def _budget(app: HomeApp) -> str:
    if app.reading is None:
        return "*Budget:* not computed yet"
    return app.reading.budget_line or "*Budget:* could not be computed at the last report"


def _incident(i: HomeIncident, now: float) -> str:
    icon = ":red_circle:" if i.severity == "critical" else ":large_orange_circle:"
    numbers = f" {i.current}/{i.limit}" if i.current is not None and i.limit else ""
    where = f"<{i.link}|thread>" if i.link else f"in <#{i.channel}> (no link: Slack gave none)"
    text = f"{icon} *{i.severity}* incident{numbers}, open {duration(now - i.opened_at)} · {where}"
    if i.owner:
        since = f" for {duration(now - i.owned_at)}" if i.owned_at else ""
        text += f" · owned by <@{i.owner}>{since}"
    else:
        text += " · not acknowledged"
    if i.escalated:
        text += " · escalated to PagerDuty"
    if i.snoozed_until and i.snoozed_until > now:
        text += f" · snoozed {duration(i.snoozed_until - now)} more"
    return text


def _watch(app: HomeApp, now: float) -> str:
    if app.watched is None:
        return "*Watch:* could not be read"
    if not app.watched:
        return f"*Watch:* off — `/pgconn {app.app} watch` sends its logs and changes to pgconn"
    drain = (
        f", last metric sample {_when(app.last_sample_at, now)}"
        if app.last_sample_at is not None
        else ", no metric sample in the last 30 min"
    )
    return f"*Watch:* on (log drain and webhooks){drain}"


def _action(rec: AuditRecord, now: float) -> str:
    mark = ":white_check_mark:" if rec.ok else ":x:"
    who = f"<@{rec.user}>" if rec.user and rec.user[0] in "UW" else inert(rec.user or "pgconn")
    label = ACTION_LABELS.get(rec.action) or INCIDENT_LABELS.get(rec.action) or inert(rec.action)
    return f"{mark} {label} by {who}, {_when(rec.at, now)}"


def app_text(app: HomeApp, now: float, stale_after_s: float, limit: int = MAX_TEXT) -> str:
    """One app's section: name, connections and bar, trend, budget, incidents, watch, actions."""
    head = f"*{escape(truncate(app.app, 60))}*"
    if app.incidents:
        head += "  :rotating_light: " + plural(len(app.incidents), "open incident")
    # What must not be cut comes first: the numbers, and whether they can be trusted.
    lines = [head, _connections(app, now)]
    if app.refreshing_by:
        lines.append(f":hourglass: Being refreshed by <@{app.refreshing_by}>.")
    elif stale(app, now, stale_after_s):
        lines.append(f":warning: *Stale:* no reading in the last {duration(stale_after_s)} — press Refresh.")
    if app.unreadable:
        lines.append(":warning: Could not read " + inert("; ".join(app.unreadable)) + ".")
    lines += [_trend(app), _budget(app)]
    lines += [_incident(i, now) for i in app.incidents]
    lines.append(_watch(app, now))
    if app.actions:
        lines.append("*Last actions:* " + " · ".join(_action(a, now) for a in app.actions[:ACTIONS_SHOWN]))
    else:
        lines.append("*Last actions:* none recorded")
    if app.reading and app.reading.notes:
        lines.append("_At the last report:_ " + truncate(inert("; ".join(app.reading.notes)), 300))
    return fit_lines(lines, limit=max(200, limit - 40))


def refresh_button(app: str) -> Block:
    return {
        "type": "button",
        "action_id": REFRESH_ACTION,
        "text": {"type": "plain_text", "text": "Refresh", "emoji": True},
        "value": truncate(app, 2000),
    }


def home_view(view: HomeView) -> dict[str, Any]:
    """The Home tab view: header, an "as of" line, one section per app (at most 100 blocks)."""
    now = view.now
    apps = list(view.apps)
    # The header, the "as of" line, and what could not be read at all.
    fixed = 2 + (1 if view.problems else 0)
    room = MAX_VIEW_BLOCKS - fixed
    # Past `room` apps, one block goes to naming the rest.
    shown = apps if len(apps) <= room else apps[: room - 1]
    rest = apps[len(shown):]
    dividers = 2 * len(shown) - 1 <= room - (1 if rest else 0)
    per_app = min(MAX_TEXT, TEXT_BUDGET // max(1, len(shown)))
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": "pgconn — your Heroku Postgres apps"}},
    ]
    intro = [
        f"{plural(len(apps), 'app')} you may see"
        + (f" ({plural(view.hidden, 'app')} of other teams not shown)" if view.hidden else ""),
        "drawn from what pgconn stored (its last reports, the log drain's samples, incidents, the audit log)"
        " — opening this tab asks Heroku nothing",
    ]
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(" · ".join(intro), MAX_TEXT)}]}
    )
    if view.problems:
        # pgconn's own sentences (outside text in them was made inert by whoever wrote them).
        text = ":warning: " + " ".join(view.problems)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, MAX_TEXT)}})
    if not apps and not view.problems:
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "No app to show you: you are not an admin of any app pgconn watches, nor in "
                    "the channel its alerts go to. Ask a pgconn admin to add you.",
                },
            }
        )
    for i, app in enumerate(shown):
        if dividers and i:
            blocks.append({"type": "divider"})
        section: Block = {
            "type": "section",
            "block_id": f"app:{truncate(app.app, 200)}",
            "text": {"type": "mrkdwn", "text": app_text(app, now, view.stale_after_s, per_app)},
        }
        if not app.refreshing_by and stale(app, now, view.stale_after_s):
            section["accessory"] = refresh_button(app.app)
        blocks.append(section)
    if rest:
        names = ", ".join(code(a.app, 40) for a in rest)
        text = (
            f"{plural(len(rest), 'more app')} not shown (a Home tab holds {MAX_VIEW_BLOCKS} blocks): "
            f"{names}. Ask `/pgconn APP` for any of them."
        )
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, MAX_TEXT)}})
    return {"type": "home", "callback_id": "pgconn.home", "blocks": blocks}
