"""Alert decisions, pure: what the next Incident is and which Slack effects follow.

`decide(incident, observation, now, policy, ...)` says what the next Incident is and which
Slack effects follow (post the parent, update it, reply in the thread). `after_post` /
`post_failed` / `update_failed` / `reply_failed` fold the outcome of those effects back in.
No I/O, no clock: unit-tested with plain values (tests/bot/test_alerts.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from bot.alerts.ownership import muted
from bot.config import Settings
from bot.detect import Severity, classify
from bot.state.incidents import Incident, worse

Reply = Literal["severity", "resolved"]


@dataclass(frozen=True)
class AlertPolicy:
    """When an incident warns, turns critical and resolves, and how often it may touch Slack."""

    warn_share: float = 0.80
    critical_share: float = 0.95
    resolve_after_s: float = 300.0
    # chat.update of the parent at most this often, unless the severity changes.
    update_interval_s: float = 5.0
    # Thread replies at most this often: a flapping database must not flood the thread.
    reply_interval_s: float = 60.0
    # A post claimed but not finished after this long is retried by anyone (the
    # poster died or hangs); longer than a report plus Slack's Retry-After waits.
    post_timeout_s: float = 120.0
    # Back-off after a failed post: 2, 4, 8 … seconds, at most this.
    max_post_backoff_s: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> AlertPolicy:
        return cls(
            warn_share=settings.alert_warn_share,
            critical_share=settings.alert_critical_share,
            resolve_after_s=float(settings.resolve_after_s),
            update_interval_s=settings.alert_update_s,
            reply_interval_s=settings.alert_reply_s,
        )


@dataclass(frozen=True)
class Observation:
    """Everything learnt about one database since the last decision."""

    fatal: int = 0  # refused-connection lines ("too many connections", reserved slots)
    excerpt: str = ""  # the latest of them
    source: str = ""  # who logged it: "web.3" (the app's own output), "postgres.1234" (Postgres)
    role: str | None = None
    readings: tuple[int, ...] = ()  # heroku-postgres active-connections samples, in order
    probe: int | None = None  # the role's connections, counted by pgconn itself
    probe_full: bool = False  # pgconn could not connect: the role is full
    limit: int | None = None  # the plan's (or role's) connection limit, when known now


@dataclass(frozen=True)
class Assessment:
    worst: Severity | None  # the worst non-OK severity seen, None when all was fine
    bad_signals: int  # drain signals at or above warn (probes are not signals)
    saw_ok: bool  # some reading was below the warn threshold


def assess(obs: Observation, limit: int | None, t: AlertPolicy) -> Assessment:
    worst: Severity | None = None
    bad = 0
    ok = False

    def note(sev: Severity) -> None:
        nonlocal worst
        worst = sev if worst is None else worse(worst, sev)

    if obs.fatal:
        # A refusal means the role was at its limit at that moment, whatever the metrics say.
        note(Severity.CRITICAL)
        bad += obs.fatal
    if obs.probe_full:
        note(Severity.CRITICAL)
    if limit:
        for active in obs.readings:
            sev = classify(active, limit, t.warn_share, t.critical_share)
            if sev is Severity.OK:
                ok = True
            else:
                bad += 1
                note(sev)
        if obs.probe is not None:
            sev = classify(obs.probe, limit, t.warn_share, t.critical_share)
            if sev is Severity.OK:
                ok = True
            else:
                note(sev)
    return Assessment(worst, bad, ok)


@dataclass(frozen=True)
class Decision:
    state: Incident | None = None  # what to write; None: nothing changed
    post: bool = False  # post the parent (this caller holds the post claim)
    update: bool = False  # chat.update the parent
    reply: Reply | None = None  # reply in the thread


def _current(obs: Observation, limit: int | None, previous: int | None) -> int | None:
    if obs.readings:
        return obs.readings[-1]
    if obs.probe is not None:
        return obs.probe
    if (obs.fatal or obs.probe_full) and limit:
        return limit
    return previous


def new_incident_id(app: str, database: str, now: float, token: str) -> str:
    return f"{app}:{database}:{int(now * 1000)}:{token[:6]}"


def decide(
    incident: Incident | None,
    obs: Observation,
    *,
    app: str,
    database: str,
    now: float,
    t: AlertPolicy,
    token: str,
    channel: str,
) -> Decision:
    """The next state of app+database's incident after `obs`, and the Slack effects to run.

    `token` identifies the caller: if the decision says post, the stored incident
    names this caller as the poster and nobody else will post until it reports back
    (or `post_timeout_s` passes).
    """
    limit = obs.limit or (incident.limit if incident is not None else None)
    a = assess(obs, limit, t)
    current = _current(obs, limit, incident.current if incident is not None else None)

    if incident is None or (incident.status == "resolved" and a.worst is not None):
        if a.worst is None:
            return Decision()
        opened = Incident(
            app=app,
            database=database,
            id=new_incident_id(app, database, now, token),
            version=incident.version if incident is not None else 0,
            status="open",
            severity=a.worst,
            peak=a.worst,
            opened_at=now,
            last_seen=now,
            last_bad=now,
            signals=a.bad_signals,
            fatal=obs.fatal,
            current=current,
            limit=limit,
            last_metric_at=now if obs.readings else None,
            excerpt=obs.excerpt,
            source=obs.source,
            role=obs.role,
            channel=channel,
            poster=token,
            poster_at=now,
            told=a.worst,
        )
        return Decision(opened, post=True)

    s = incident
    if s.status == "resolved":
        # A finished incident keeps its numbers; only its unfinished Slack business moves on.
        return _follow_up(s, s, now, t, token, numbers_changed=False)
    changes: dict[str, Any] = {"limit": limit, "current": current}
    if obs.fatal or obs.readings:
        changes["last_seen"] = now
    if obs.readings:
        changes["last_metric_at"] = now
    if a.bad_signals:
        changes["signals"] = s.signals + a.bad_signals
    if obs.fatal:
        changes["fatal"] = s.fatal + obs.fatal
    if obs.excerpt:
        changes["excerpt"] = obs.excerpt
        changes["source"] = obs.source
    if obs.role:
        changes["role"] = obs.role
    if a.worst is not None:
        changes.update(last_bad=now, ok_since=None, severity=a.worst, peak=worse(s.peak, a.worst))
    elif a.saw_ok and s.ok_since is None:
        changes["ok_since"] = now
    n = replace(s, **changes)
    numbers_changed = (n.signals, n.current, n.limit, n.last_seen, n.ok_since) != (
        s.signals,
        s.current,
        s.limit,
        s.last_seen,
        s.ok_since,
    )

    if a.worst is None and n.ok_since is not None and now - n.ok_since >= t.resolve_after_s:
        n = replace(n, status="resolved", resolved_at=now)
        if n.posted:
            n = replace(n, told_resolved=True, last_update_at=now, dirty=False)
            return Decision(n, update=True, reply="resolved")
    return _follow_up(s, n, now, t, token, numbers_changed=numbers_changed)


def _follow_up(
    s: Incident, n: Incident, now: float, t: AlertPolicy, token: str, *, numbers_changed: bool
) -> Decision:
    """Slack business of `n` (whose previous state was `s`): post, redraw, reply, or nothing."""
    post = update = False
    reply: Reply | None = None
    if not n.posted:
        # Not in Slack yet: another poster is at work, or the last post failed.
        claim_free = not n.poster or now - n.poster_at >= t.post_timeout_s
        if claim_free and now >= n.next_post_at:
            n = replace(n, poster=token, poster_at=now, told=n.severity, told_resolved=n.status == "resolved")
            post = True
    elif n.status == "open":
        if n.severity != n.told and muted(n, now):
            n = replace(n, told=n.severity)  # snoozed: the thread hears nothing not worse than then
        elif n.severity != n.told and now - n.last_reply_at >= t.reply_interval_s:
            reply = "severity"
            n = replace(n, told=n.severity, last_reply_at=now)
            if n.snoozed_until > now:
                # Worse than when snoozed: it breaks through, and the snooze holds at this level.
                n = replace(n, snooze_level=n.severity)
        redraw_due = now - n.last_update_at >= t.update_interval_s
        if n.severity != s.severity or reply is not None or ((numbers_changed or n.dirty) and redraw_due):
            update = True
        elif numbers_changed:
            n = replace(n, dirty=True)
    elif n.dirty and now - n.last_update_at >= t.update_interval_s:
        update = True  # resolved, but the last redraw failed
    elif not n.told_resolved and now - n.last_reply_at >= t.reply_interval_s:
        reply = "resolved"  # resolved, but the resolution reply failed
        n = replace(n, told_resolved=True, last_reply_at=now)

    if update:
        n = replace(n, last_update_at=now, dirty=False)
    if n == s:
        return Decision()
    return Decision(n, post=post, update=update, reply=reply)


def after_post(
    incident: Incident, drawn: Incident, *, ts: str, channel: str, now: float, used: int | None
) -> Decision:
    """Fold a successful parent post in. `drawn` is what the message shows; `incident` the latest.

    `used` comes from the report built for the post: the real count when the drain gave
    none (refusals only); heroku-postgres samples, when there are any, stay the authority
    so the parent and its sparkline speak of one measure.
    """
    if incident.id != drawn.id or incident.posted:
        return Decision()
    changes: dict[str, Any] = dict(
        ts=ts,
        channel=channel,
        poster="",
        post_failures=0,
        next_post_at=0.0,
        last_error="",
        last_update_at=now,
        limit=incident.limit or drawn.limit,
    )
    if used is not None and incident.last_metric_at is None:
        changes["current"] = used
    n = replace(incident, **changes)
    reply: Reply | None = None
    if n.status == "resolved" and drawn.status != "resolved":
        # Resolved while the parent was being posted: the thread must hear it once.
        n = replace(n, told_resolved=True, last_reply_at=now)
        reply = "resolved"
    if _shown(n) != _shown(drawn):
        n = replace(n, dirty=True)
    return Decision(n, update=n.dirty, reply=reply)


def _shown(i: Incident) -> tuple[Any, ...]:
    """What the parent message displays (a difference means it needs a redraw)."""
    return (i.status, i.severity, i.signals, i.fatal, i.current, i.limit, i.ok_since)


def post_failed(incident: Incident, posted: Incident, *, error: str, now: float, t: AlertPolicy) -> Decision:
    """Give the post claim back, with back-off, so the next signal or check retries it."""
    if incident.id != posted.id or incident.posted or incident.poster != posted.poster:
        return Decision()
    failures = incident.post_failures + 1
    backoff = min(t.max_post_backoff_s, 2.0**failures)
    return Decision(
        replace(
            incident,
            poster="",
            post_failures=failures,
            next_post_at=now + backoff,
            last_error=error[:200],
        )
    )


# Slack errors that no retry will fix: the message or channel is gone, or pgconn was
# removed from it. Retrying these forever would keep the incident "needing work" forever.
PERMANENT_SLACK_ERRORS = frozenset(
    {
        "Slack: message_not_found",
        "Slack: cant_update_message",
        "Slack: channel_not_found",
        "Slack: is_archived",
        "Slack: not_in_channel",
        "Slack: thread_not_found",
    }
)


def update_failed(incident: Incident, *, error: str) -> Decision:
    """A redraw failed: try again later, unless Slack said it never will work."""
    return Decision(replace(incident, dirty=error not in PERMANENT_SLACK_ERRORS, last_error=error[:200]))


def reply_failed(incident: Incident, kind: Reply, *, told_before: Severity, error: str) -> Decision:
    """A thread reply failed: un-tell it so it is sent again, unless Slack said it never will work."""
    if error in PERMANENT_SLACK_ERRORS:
        return Decision(replace(incident, last_error=error[:200]))
    if kind == "resolved":
        return Decision(replace(incident, told_resolved=False, last_error=error[:200]))
    return Decision(replace(incident, told=told_before, last_error=error[:200]))
