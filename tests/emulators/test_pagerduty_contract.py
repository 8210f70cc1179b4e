"""The PagerDuty emulator against the Events API v2 contract (PagerDuty/developer-docs,
docs/events-API-v2/01-Overview.md and 02-Trigger-Events.md): answers, validation, de-duplication."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from emulators.pagerduty import PagerDutyEmulator

KEY = "R" + "0" * 31  # 32 characters
OTHER_KEY = "Q" + "1" * 31


@pytest.fixture
def pd(pagerduty: PagerDutyEmulator) -> PagerDutyEmulator:
    pagerduty.reset()
    return pagerduty


def trigger(dedup_key: str | None = "inc-1", **overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "routing_key": KEY,
        "event_action": "trigger",
        "payload": {"summary": "my-app is out of connections", "source": "my-app", "severity": "critical"},
    }
    if dedup_key is not None:
        event["dedup_key"] = dedup_key
    event.update(overrides)
    return event


def post(pd: PagerDutyEmulator, body: Any) -> httpx.Response:
    return httpx.post(f"{pd.url}/v2/enqueue", json=body, timeout=5)


def follow(action: str, dedup_key: str, key: str = KEY) -> dict[str, Any]:
    return {"routing_key": key, "event_action": action, "dedup_key": dedup_key}


def test_accepted_events_answer_202_with_the_dedup_key(pd: PagerDutyEmulator) -> None:
    response = post(pd, trigger())
    assert response.status_code == 202
    assert response.json() == {"status": "success", "message": "Event processed", "dedup_key": "inc-1"}
    # Without a dedup_key PagerDuty makes one and returns it.
    made = post(pd, trigger(None)).json()["dedup_key"]
    assert made and made != "inc-1" and pd.incident(made) is not None


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (trigger(routing_key="short"), "Length of 'routing_key' is incorrect (should be 32 characters)"),
        (trigger(event_action="page"), "'event_action' is invalid"),
        (trigger(payload={"source": "s", "severity": "critical"}), "'payload.summary' is missing"),
        (trigger(payload={"summary": "s", "severity": "critical"}), "'payload.source' is missing"),
        (trigger(payload={"summary": "s", "source": "s", "severity": "x"}), "'payload.severity' is"),
        (trigger(dedup_key="k" * 256), "'dedup_key' must be a string of at most 255 characters"),
        ({"routing_key": KEY, "event_action": "resolve"}, "'dedup_key' is required"),
        ("not an object", "not valid JSON"),
    ],
)
def test_invalid_events_answer_400_with_errors_and_change_nothing(
    pd: PagerDutyEmulator, body: Any, error: str
) -> None:
    response = post(pd, body)
    assert response.status_code == 400
    answer = response.json()
    assert (answer["status"], answer["message"]) == ("invalid event", "Event object is invalid")
    assert any(error in e for e in answer["errors"]), answer
    assert pd.all_incidents() == []


def test_one_dedup_key_is_one_incident_through_trigger_acknowledge_resolve(pd: PagerDutyEmulator) -> None:
    for _ in range(3):  # retries and several senders
        assert post(pd, trigger()).status_code == 202
    (incident,) = pd.all_incidents()
    assert (incident.status, incident.triggers) == ("triggered", 3)
    assert post(pd, follow("acknowledge", "inc-1")).status_code == 202
    assert pd.incident("inc-1").status == "acknowledged"  # type: ignore[union-attr]
    # Another integration's key cannot touch it (the event is dropped, still 202).
    assert post(pd, follow("resolve", "inc-1", OTHER_KEY)).status_code == 202
    assert pd.incident("inc-1").status == "acknowledged"  # type: ignore[union-attr]
    assert post(pd, follow("resolve", "inc-1")).status_code == 202
    assert pd.incident("inc-1").status == "resolved"  # type: ignore[union-attr]
    # After resolution the same key opens a NEW incident; a resolve of nothing is dropped.
    assert post(pd, trigger()).status_code == 202
    assert [i.status for i in pd.all_incidents()] == ["resolved", "triggered"]
    assert post(pd, follow("resolve", "nothing")).status_code == 202
    assert pd.received()[-1].outcome == "dropped"


def test_injected_failures_and_the_rate_limit(pd: PagerDutyEmulator) -> None:
    pd.fail(503, times=2)
    assert [post(pd, trigger()).status_code for _ in range(3)] == [503, 503, 202]
    assert len(pd.all_incidents()) == 1  # the failed ones were not ingested
    pd.rate_limit_per_minute = 2
    assert [post(pd, trigger(f"k{i}")).status_code for i in range(3)] == [202, 429, 429]
    assert post(pd, trigger("k9")).json()["message"] == "Request Limit Exceeded"
