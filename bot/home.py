"""The Home tab: gather what pgconn stored about the apps a person may see, publish it, and
refresh an app whose numbers are stale.

Opening the tab reads Redis only (readings, drain samples, incidents, the webhook
subscription, the audit log) and asks Slack for a permalink per open incident (cached):
no Heroku call. Only Refresh reads Heroku, for one app, through the same report as
`/pgconn APP`, claimed (one refresh of an app at a time, across processes) and throttled
like a command. Everything that could not be read is said in the view.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from slack_sdk.errors import SlackApiError

from bot.errors import PgconnError, StateUnavailable
from bot.render.home import HomeApp, HomeIncident, HomeView, home_view
from bot.render.text import inert
from bot.report import report_for
from bot.state.home import Reading
from bot.state.incidents import Incident
from bot.state.remediation import AuditRecord

if TYPE_CHECKING:
    from bot.dependencies import Services

log = logging.getLogger(__name__)

# Numbers older than this are called stale and get a Refresh button.
STALE_AFTER_S = 15 * 60
PERMALINK_CACHE = 1000
UNKNOWN_APP = "That button named an app pgconn does not know. Nothing was read."


async def visible_apps(services: Services, user: str) -> list[str]:
    apps = list(services.settings.apps)
    allowed = await asyncio.gather(
        *(services.authoriser.may_see(user, a) for a in apps)
    )
    return [a for a, ok in zip(apps, allowed, strict=True) if ok]


async def _permalink(services: Services, channel: str, ts: str) -> str | None:
    cache = services.home_links
    key = f"{channel}:{ts}"
    if key in cache:
        return cache[key]
    try:
        result = await services.slack.chat_getPermalink(channel=channel, message_ts=ts)
        link = str(result.get("permalink") or "") or None
    except SlackApiError as exc:
        log.warning("chat.getPermalink %s failed: %s", channel[:20], exc.response.get("error"))
        return None
    except Exception as exc:  # noqa: BLE001 - network errors of the Slack client: shown without a link
        log.warning("chat.getPermalink %s failed: %s", channel[:20], type(exc).__name__)
        return None
    if len(cache) >= PERMALINK_CACHE:
        cache.clear()
    cache[key] = link
    return link


async def _incident(services: Services, incident: Incident) -> HomeIncident:
    link = await _permalink(services, incident.channel, incident.ts) if incident.ts else None
    return HomeIncident(
        severity=incident.severity.value,
        opened_at=incident.opened_at,
        current=incident.current,
        limit=incident.limit,
        link=link,
        channel=incident.channel,
        # Who owns it, its snooze, its escalation (bot.alerts.ownership).
        owner=incident.owner,
        owned_at=incident.owned_at,
        snoozed_until=incident.snoozed_until or None,
        escalated=bool(incident.escalated_at),
    )


async def _one_app(
    services: Services,
    app: str,
    reading: Reading | None,
    databases: set[str],
    watched: bool | None,
    now: float,
) -> HomeApp:
    unreadable: list[str] = []
    alerts = services.alerts
    if reading is not None and reading.database:
        databases = databases | {reading.database}
    samples: list[tuple[float, int]] = []
    incidents: list[HomeIncident] = []
    for database in sorted(databases):
        if alerts.metrics is not None:
            try:
                samples += [(s.at, s.active) for s in await alerts.metrics.recent(app, database, now)]
            except StateUnavailable:
                unreadable.append("the log drain's samples")
        if alerts.incidents is not None:
            try:
                incident = await alerts.incidents.load(app, database)
            except StateUnavailable:
                unreadable.append("its incidents")
                incident = None
            if incident is not None and incident.status == "open":
                incidents.append(await _incident(services, incident))
    actions: tuple[AuditRecord, ...] = ()
    try:
        actions = tuple(await services.audit.recent(app, count=3))
    except StateUnavailable:
        unreadable.append("the audit log")
    samples.sort()
    return HomeApp(
        app=app,
        reading=reading,
        samples=tuple(n for _, n in samples),
        last_sample_at=samples[-1][0] if samples else None,
        incidents=tuple(incidents),
        watched=watched,
        actions=actions,
        unreadable=tuple(dict.fromkeys(unreadable)),
    )


async def gather(services: Services, user: str, *, now: float | None = None) -> HomeView:
    """Everything the Home tab shows `user`, from Redis alone."""
    now = time.time() if now is None else now
    apps = await visible_apps(services, user)
    problems: list[str] = []
    readings: dict[str, Reading | None] = dict.fromkeys(apps)
    watched: dict[str, bool | None] = dict.fromkeys(apps)
    databases: dict[str, set[str]] = {a: set() for a in apps}
    try:
        readings = await services.home.load_many(apps)
        watched = dict(await services.webhook_secrets.subscribed_many(apps))
        if services.alerts.incidents is not None:
            for app, database in await services.alerts.incidents.active():
                if app in databases:
                    databases[app].add(database)
    except StateUnavailable:
        problems.append(
            "pgconn's state store (Redis) is unreachable: the last readings, incidents, watch status "
            "and actions cannot be read, so apps are listed without them"
        )
        return HomeView(
            apps=[HomeApp(app=a) for a in apps],
            now=now,
            stale_after_s=STALE_AFTER_S,
            hidden=len(services.settings.apps) - len(apps),
            problems=tuple(problems),
        )
    shown = await asyncio.gather(
        *(_one_app(services, a, readings.get(a), databases[a], watched.get(a), now) for a in apps)
    )
    return HomeView(
        apps=shown,
        now=now,
        stale_after_s=STALE_AFTER_S,
        hidden=len(services.settings.apps) - len(apps),
        problems=tuple(problems),
    )


async def publish(services: Services, user: str, *, notice: str = "", refreshing: str = "") -> bool:
    """Draw and publish `user`'s Home tab; False (and a log line) when Slack refused it."""
    try:
        view = await gather(services, user)
    except Exception as exc:  # noqa: BLE001 - a bug must still show the person something, and be logged
        log.exception("drawing the Home tab of %s failed unexpectedly", user)
        view = HomeView(
            apps=[], now=time.time(), stale_after_s=STALE_AFTER_S,
            problems=(f"pgconn failed unexpectedly ({type(exc).__name__}) drawing this tab; "
                      "the details are in pgconn's log.",),
        )
    if notice:
        view = HomeView(
            apps=view.apps, now=view.now, stale_after_s=view.stale_after_s, hidden=view.hidden,
            problems=(notice, *view.problems),
        )
    if refreshing:
        view = HomeView(
            apps=[_refreshing(a, user) if a.app == refreshing else a for a in view.apps],
            now=view.now, stale_after_s=view.stale_after_s, hidden=view.hidden, problems=view.problems,
        )
    try:
        await services.slack.views_publish(user_id=user, view=home_view(view))
    except SlackApiError as exc:
        messages = (exc.response.get("response_metadata") or {}).get("messages") or []
        log.error("views.publish for %s failed: %s %s", user, exc.response.get("error"), messages[:3])
        return False
    return True


def _refreshing(app: HomeApp, user: str) -> HomeApp:
    return HomeApp(
        app=app.app, reading=app.reading, samples=app.samples, last_sample_at=app.last_sample_at,
        incidents=app.incidents, watched=app.watched, actions=app.actions, unreadable=app.unreadable,
        refreshing_by=user,
    )


async def refresh(services: Services, user: str, app: str) -> None:
    """The Refresh button: re-read one app through Heroku (as `/pgconn APP` does), then redraw."""
    if app not in services.settings.apps:
        log.warning("refused a Home refresh of an unknown app from %s", user)
        # The value came from a view pgconn drew, or was forged: nothing is run either way.
        await publish(services, user, notice=UNKNOWN_APP)
        return
    if not await services.authoriser.may_see(user, app):
        log.warning("refused a Home refresh of %s from %s: may not see it", app, user)
        await publish(services, user, notice=f"You may not see `{app}`. Nothing was read.")
        return
    refusal = await services.throttle.refusal(user, "report", app)
    if refusal is not None:
        await publish(services, user, notice=refusal)
        return
    try:
        holder = await services.home.claim_refresh(app, user)
    except StateUnavailable as exc:
        await publish(services, user, notice=f"{inert(exc.message)}; the refresh was not run.")
        return
    if holder is not None:
        await publish(services, user, notice=f"`{app}` is already being refreshed (by <@{holder}>).")
        return
    await publish(services, user, refreshing=app)
    try:
        await report_for(services, app)
    except PgconnError as exc:
        log.warning("Home refresh of %s failed: %s", app, type(exc).__name__)
        await publish(services, user, notice=f"`{app}` could not be refreshed: {inert(exc.message)}")
        return
    finally:
        await services.home.release_refresh(app)
    await publish(services, user)
