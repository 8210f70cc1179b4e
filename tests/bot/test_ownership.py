"""Acknowledge, Snooze, Resolve and escalation as pure steps on an Incident (bot.alerts.ownership)."""

from __future__ import annotations

from dataclasses import replace

from bot.alerts.ownership import (
    ACKNOWLEDGE,
    RESOLVE,
    SNOOZE,
    Refusal,
    acknowledge,
    button_value,
    escalated,
    escalation_due,
    muted,
    parse_value,
    resolve,
    snooze,
)
from bot.authz import RULES
from bot.detect import Severity
from bot.pagerduty import classify
from bot.render.alert import alert_blocks
from bot.render.ownership import ownership_blocks, ownership_line
from bot.state.incidents import Incident, from_hash, to_hash
from emulators.slack_blocks import validate_blocks
from tests.bot.test_alerts import T0, fatal, opened, readings, step

ALICE, BOB = "UALICE", "UBOB"


def test_acknowledge_makes_the_clicker_the_owner_once() -> None:
    incident = opened()
    owned = acknowledge(incident, ALICE, T0 + 10)
    assert isinstance(owned, Incident) and owned.owner == ALICE and owned.owned_at == T0 + 10
    again = acknowledge(owned, BOB, T0 + 11)
    assert again == Refusal(f"already acknowledged by <@{ALICE}>")


def test_resolve_by_hand_ends_it_and_a_later_fatal_opens_a_new_incident() -> None:
    incident = opened()
    done = resolve(incident, BOB, T0 + 60)
    assert isinstance(done, Incident)
    assert (done.status, done.resolved_by, done.resolved_at) == ("resolved", BOB, T0 + 60)
    assert isinstance(acknowledge(done, ALICE, T0 + 61), Refusal)
    assert isinstance(resolve(done, ALICE, T0 + 61), Refusal)
    d = step(done, fatal(), T0 + 90)
    assert d.post and d.state is not None and d.state.id != incident.id and not d.state.owner


def test_a_snooze_mutes_replies_that_are_not_worse_and_a_worse_one_breaks_through() -> None:
    # Opened at warn by a metric, snoozed at warn for 30 minutes.
    incident = opened(readings(17))
    assert incident.severity is Severity.WARN
    snoozed = snooze(incident, ALICE, T0 + 10, 1800)
    assert isinstance(snoozed, Incident) and snoozed.snooze_level is Severity.WARN
    # Critical is worse: it replies, and the snooze holds at critical from then on.
    d = step(snoozed, readings(20), T0 + 100)
    assert d.reply == "severity" and d.state is not None and d.state.snooze_level is Severity.CRITICAL
    # Back to warn: muted (without the snooze this is a reply: see the last step).
    d2 = step(d.state, readings(17), T0 + 200)
    assert d2.reply is None and d2.state is not None and d2.state.told is Severity.WARN
    # Critical again: no worse than the snooze's level now: muted too.
    d3 = step(d2.state, readings(20), T0 + 300)
    assert d3.reply is None and d3.state is not None
    # The snooze is over: severity changes reply again.
    d4 = step(d3.state, readings(17), T0 + 10 + 1800 + 1)
    assert d4.reply == "severity"


def test_without_a_snooze_the_same_changes_reply() -> None:
    incident = opened(readings(20))
    d = step(incident, readings(17), T0 + 100)
    assert d.reply == "severity"
    assert not muted(incident, T0 + 100)


def test_snooze_offers_only_its_own_durations() -> None:
    incident = opened()
    assert snooze(incident, ALICE, T0, 1) == Refusal("that snooze duration is not one pgconn offers")


def test_escalation_is_due_once_for_an_open_unacknowledged_posted_incident() -> None:
    incident = opened()
    assert not escalation_due(incident, T0 + 59, 60)
    assert escalation_due(incident, T0 + 60, 60)
    assert not escalation_due(incident, T0 + 60, None)  # the app names no PagerDuty service
    owned = acknowledge(incident, ALICE, T0 + 30)
    assert isinstance(owned, Incident) and not escalation_due(owned, T0 + 600, 60)
    assert not escalation_due(escalated(incident, T0 + 60), T0 + 600, 60)
    done = resolve(incident, ALICE, T0 + 30)
    assert isinstance(done, Incident) and not escalation_due(done, T0 + 600, 60)


def test_button_values_name_the_incident_and_are_checked_on_click() -> None:
    incident = opened()
    target = parse_value(button_value(incident, 3600))
    assert target is not None
    assert (target.app, target.database, target.incident_id, target.seconds) == (
        incident.app, incident.database, incident.id, 3600,
    )
    assert parse_value("my-app") is None
    assert parse_value("a:b:c") is None
    assert parse_value(button_value(incident) + "|lots") is None


def test_the_parent_shows_owner_snooze_and_escalation_and_valid_controls() -> None:
    incident = opened()
    blocks = ownership_blocks(incident, T0 + 5)
    ids = [e.get("action_id") for b in blocks for e in b.get("elements", []) + [b.get("accessory") or {}]]
    assert {ACKNOWLEDGE.id, RESOLVE.id, SNOOZE.id} <= set(ids)
    owned = acknowledge(incident, ALICE, T0 + 10)
    assert isinstance(owned, Incident)
    owned = replace(owned, snoozed_by=BOB, snoozed_until=T0 + 1810, snooze_level=Severity.CRITICAL)
    owned = escalated(owned, T0 + 20)
    line = ownership_line(owned, T0 + 30) or ""
    assert f"Acknowledged by <@{ALICE}>" in line and f"Snoozed by <@{BOB}>" in line and "PagerDuty" in line
    ids = [e.get("action_id") for b in ownership_blocks(owned, T0 + 30) for e in b.get("elements", [])]
    assert ACKNOWLEDGE.id not in ids  # owned: nothing to acknowledge
    parent = alert_blocks(owned, samples=[19, 20], report=[], now=T0 + 30, resolve_after_s=300)
    validate_blocks(parent)
    done = resolve(owned, ALICE, T0 + 40)
    assert isinstance(done, Incident)
    ended = alert_blocks(done, samples=[], report=[], now=T0 + 40, resolve_after_s=300)
    assert f"resolved by hand by <@{ALICE}>" in str(ended)
    assert not [b for b in ended if b.get("type") == "actions"]


def test_the_new_fields_survive_redis() -> None:
    incident = escalated(opened(), T0 + 5)
    incident = replace(incident, owner=ALICE, owned_at=T0 + 6, snooze_level=Severity.CRITICAL)
    incident = replace(incident, resolved_by=BOB, snoozed_until=T0 + 7)
    assert from_hash(to_hash(incident)) == incident


def test_only_admins_may_press_them() -> None:
    assert {RULES[b.id] for b in (ACKNOWLEDGE, SNOOZE, RESOLVE)} == {"admin"}


def test_pagerduty_answers_map_to_the_documented_retry_logic() -> None:
    accepted = b'{"status":"success","message":"Event processed","dedup_key":"k"}'
    assert classify(202, accepted).outcome == "accepted"
    invalid = b'{"status":"invalid event","message":"Event object is invalid","errors":["bad key"]}'
    refused = classify(400, invalid)
    assert refused.outcome == "refused" and refused.detail == "invalid event: bad key"
    assert classify(429, b"").outcome == "retry"
    assert classify(503, b"<html>").outcome == "retry"
    assert classify(404, b"").outcome == "refused"
