"""Incidents people own: Acknowledge, Snooze and Resolve on an alert thread, and when to escalate. Pure.

Each button is one record (`INCIDENT_BUTTONS`): its public action id, label and who may press it;
rendering (bot/render/ownership.py), authorisation (bot/authz.py RULES), the click protocol
(bot/alerts/clicks.py) and listener registration read it. Each verb is a function from the stored
Incident to the next one, or to the sentence that says why nothing changes ("already acknowledged
by …"): the click protocol writes the result with the incident's compare-and-set, so two clicks
at once (two processes, a double click) make one change and the other is told who won.

- **Acknowledge**: the clicker owns the incident from now; the parent says who and since when.
  It stops the escalation to PagerDuty (and acknowledges there when it was already escalated).
- **Snooze** (30 min, 1 h, 4 h): pgconn's own replies in the thread stop until then; a severity
  worse than the one snoozed still breaks through (and the snooze then holds at that level).
  The parent keeps its live numbers; people's actions still reply.
- **Resolve**: the incident ends now, by hand, with who; a later FATAL opens a new incident.
- **Escalation**: an open incident nobody acknowledged within the app's `escalate_after`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from bot.detect import Severity
from bot.state.incidents import Incident

Who = Literal["member", "admin"]
Verb = Literal["acknowledge", "snooze", "resolve"]

_RANK = {Severity.OK: 0, Severity.WARN: 1, Severity.CRITICAL: 2}


@dataclass(frozen=True)
class IncidentButton:
    id: str  # the public action_id
    verb: Verb
    label: str
    who: Who


ACKNOWLEDGE = IncidentButton("pgconn.incident_ack", "acknowledge", "Acknowledge", "admin")
SNOOZE = IncidentButton("pgconn.incident_snooze", "snooze", "Snooze", "admin")
RESOLVE = IncidentButton("pgconn.incident_resolve", "resolve", "Resolve", "admin")
INCIDENT_BUTTONS: tuple[IncidentButton, ...] = (ACKNOWLEDGE, SNOOZE, RESOLVE)
BY_ID = {b.id: b for b in INCIDENT_BUTTONS}

# The durations Snooze offers (seconds → label). A click's duration must be one of them: the value
# a click carries is re-validated, never trusted.
SNOOZE_CHOICES: dict[int, str] = {30 * 60: "30 minutes", 3600: "1 hour", 4 * 3600: "4 hours"}


def button_value(incident: Incident, seconds: int | None = None) -> str:
    """What a button carries: the incident's id, and for a snooze `|seconds`."""
    return incident.id if seconds is None else f"{incident.id}|{seconds}"


@dataclass(frozen=True)
class Target:
    """What a click names, parsed from its value (the incident id: `app:database:ms:token`)."""

    app: str
    database: str
    incident_id: str
    seconds: int | None = None


def parse_value(value: str) -> Target | None:
    incident_id, _, seconds = value.partition("|")
    parts = incident_id.split(":")
    if len(parts) != 4 or not all(parts) or len(value) > 200:
        return None
    if seconds and not seconds.isdigit():
        return None
    return Target(parts[0].lower(), parts[1], incident_id, int(seconds) if seconds else None)


@dataclass(frozen=True)
class Refusal:
    """Why a click changes nothing: said to the clicker alone."""

    text: str


def _over(incident: Incident) -> Refusal | None:
    if incident.status == "resolved":
        by = f" by <@{incident.resolved_by}>" if incident.resolved_by else ""
        return Refusal(f"this incident is already resolved{by}")
    return None


def acknowledge(incident: Incident, user: str, now: float) -> Incident | Refusal:
    over = _over(incident)
    if over is not None:
        return over
    if incident.owner:
        return Refusal(f"already acknowledged by <@{incident.owner}>")
    return replace(incident, owner=user, owned_at=now)


def snooze(incident: Incident, user: str, now: float, seconds: int) -> Incident | Refusal:
    over = _over(incident)
    if over is not None:
        return over
    if seconds not in SNOOZE_CHOICES:
        return Refusal("that snooze duration is not one pgconn offers")
    return replace(
        incident,
        snoozed_by=user,
        snoozed_until=now + seconds,
        snooze_level=incident.severity,
        # What the thread heard last is what it was snoozed at: a change back later is no news.
        told=incident.severity,
    )


def resolve(incident: Incident, user: str, now: float) -> Incident | Refusal:
    over = _over(incident)
    if over is not None:
        return over
    # The engine tells the thread and ends it (AlertEngine.resolve_by_hand): the path every end takes.
    return replace(incident, status="resolved", resolved_at=now, resolved_by=user)


def muted(incident: Incident, now: float) -> bool:
    """Whether a severity reply would break a snooze: it is muted unless worse than the snooze's."""
    return incident.snoozed_until > now and _RANK[incident.severity] <= _RANK[incident.snooze_level]


def snoozed(incident: Incident, now: float) -> bool:
    return incident.status == "open" and incident.snoozed_until > now


def escalation_due(incident: Incident, now: float, escalate_after_s: float | None) -> bool:
    """Open, posted, nobody acknowledged it within `escalate_after_s`, and not escalated yet."""
    return (
        escalate_after_s is not None
        and incident.status == "open"
        and incident.posted
        and not incident.owner
        and not incident.escalated_at
        and now - incident.opened_at >= escalate_after_s
    )


def escalated(incident: Incident, now: float) -> Incident:
    return replace(incident, escalated_at=now)
