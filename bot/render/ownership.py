"""Incidents people own, in Block Kit: the parent's owner line and buttons, the thread's replies. Pure."""

from __future__ import annotations

from typing import Any

from bot.alerts.ownership import (
    ACKNOWLEDGE,
    INCIDENT_BUTTONS,
    RESOLVE,
    SNOOZE,
    SNOOZE_CHOICES,
    button_value,
    snoozed,
)
from bot.pagerduty import Result
from bot.render.text import duration, truncate, when
from bot.state.incidents import Incident
from bot.state.pagerduty import QueuedEvent

OWNERSHIP_BLOCK_ID = "pgconn.incident"
SNOOZE_BLOCK_ID = "pgconn.incident_snooze"
INCIDENT_LABELS = {b.id: b.label for b in INCIDENT_BUTTONS}
ESCALATE_LABEL = "Escalate to PagerDuty"


def ownership_line(incident: Incident, now: float) -> str | None:
    """Who owns the incident, since when; its snooze; its escalation. None when none of them."""
    parts = []
    if incident.owner:
        parts.append(f":raising_hand: Acknowledged by <@{incident.owner}> since {when(incident.owned_at)}")
    elif incident.status == "open":
        parts.append(":bell: Not acknowledged yet")
    if snoozed(incident, now):
        parts.append(
            f":zzz: Snoozed by <@{incident.snoozed_by}> until {when(incident.snoozed_until)} "
            f"(only worse than *{incident.snooze_level.value}* replies here)"
        )
    if incident.escalated_at:
        parts.append(f":pager: Escalated to PagerDuty {when(incident.escalated_at)}")
    return " · ".join(parts) or None


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": truncate(text, limit), "emoji": False}


def ownership_blocks(incident: Incident, now: float) -> list[dict[str, Any]]:
    """The parent's owner line and, while the incident is open, its three controls."""
    blocks: list[dict[str, Any]] = []
    line = ownership_line(incident, now)
    if line:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(line, 3000)}]})
    if incident.status != "open" or not incident.id:
        return blocks
    elements: list[dict[str, Any]] = []
    if not incident.owner:
        elements.append(
            {
                "type": "button",
                "action_id": ACKNOWLEDGE.id,
                "text": _plain(ACKNOWLEDGE.label, 75),
                "value": button_value(incident),
                "style": "primary",
            }
        )
    elements.append(
        {
            "type": "button",
            "action_id": RESOLVE.id,
            "text": _plain(RESOLVE.label, 75),
            "value": button_value(incident),
            "confirm": {
                "title": _plain("Resolve this incident?", 100),
                "text": {
                    "type": "plain_text",
                    "text": truncate(
                        f"End the incident of {incident.app} ({incident.database}) now, in your name. "
                        "pgconn stops following it; a new refusal later opens a new incident.",
                        300,
                    ),
                },
                "confirm": _plain("Resolve", 30),
                "deny": _plain("Cancel", 30),
            },
        }
    )
    blocks.append({"type": "actions", "block_id": OWNERSHIP_BLOCK_ID, "elements": elements})
    blocks.append(
        {
            "type": "section",
            "block_id": SNOOZE_BLOCK_ID,
            "text": {
                "type": "mrkdwn",
                "text": "*Snooze:* no replies from pgconn in this thread for a while; a worse severity still "
                "breaks through.",
            },
            "accessory": {
                "type": "overflow",
                "action_id": SNOOZE.id,
                "options": [
                    {"text": _plain(f"Snooze {label}", 75), "value": button_value(incident, seconds)}
                    for seconds, label in SNOOZE_CHOICES.items()
                ],
            },
        }
    )
    return blocks


def step_reply(verb: str, incident: Incident, user: str) -> str:
    """The thread's record of a person's step."""
    if verb == "acknowledge":
        return (
            f":raising_hand: <@{user}> acknowledged this incident and owns it since "
            f"{when(incident.owned_at)}."
            + (" PagerDuty is told too." if incident.escalated_at else "")
        )
    if verb == "snooze":
        return (
            f":zzz: <@{user}> snoozed this thread until {when(incident.snoozed_until)}: pgconn posts no "
            f"replies here until then, unless it gets worse than *{incident.snooze_level.value}*."
        )
    raise ValueError(f"no thread reply of pgconn.alerts.clicks for {verb!r} (Resolve's is the engine's)")


def delivery_reply(event: QueuedEvent, result: Result, attempt: int, retry_in_s: float) -> str:
    """What the thread hears about one PagerDuty event: taken, refused, or being retried."""
    action = event.action
    if result.outcome == "accepted":
        after = f" (after {attempt} attempts)" if attempt > 1 else ""
        if action == "trigger":
            return (
                f":pager: Escalated to PagerDuty{after}: nobody acknowledged this incident in time. "
                f"PagerDuty said: {truncate(result.detail, 100)}."
            )
        return f":pager: PagerDuty {'acknowledged' if action == 'acknowledge' else 'resolved'} too{after}."
    status = f"HTTP {result.status}" if result.status is not None else "no answer"
    if result.outcome == "refused":
        return (
            f":x: PagerDuty refused the *{action}* ({status}, {truncate(result.detail, 300)}). pgconn does "
            "not send it again as it is: check the app's `pagerduty_routing_key`."
        )
    return (
        f":warning: PagerDuty did not take the *{action}* ({status}, {truncate(result.detail, 200)}). pgconn "
        f"keeps it and tries again in {duration(retry_in_s)}, then less and less often, until PagerDuty "
        "takes it."
    )
