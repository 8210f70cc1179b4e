"""bot.payloads.malformed: the shapes Bolt cannot dispatch, refused before it reads them."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from bot.payloads import malformed

FORM = "application/x-www-form-urlencoded"


def interaction(payload: object) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


BUTTON = {"type": "block_actions", "actions": [{"action_id": "pgconn.killall", "value": "my-app"}]}


@pytest.mark.parametrize(
    "body",
    [
        interaction(BUTTON),
        urlencode({"command": "/pgconn", "text": "my-app"}).encode(),
        b'{"type": "event_callback", "event": {"type": "message"}}',
        interaction({"type": "view_submission"}),  # not one of pgconn's: Bolt answers 404 itself
        b"",
    ],
)
def test_what_slack_sends_is_left_to_bolt(body: bytes) -> None:
    assert malformed(body, FORM) is None


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"\xff\xfe", "not a Slack payload (UnicodeDecodeError)"),
        (b"payload=%7Bnot+json", "not a Slack payload (JSONDecodeError)"),
        (interaction([1, 2]), "not a Slack payload (not an object)"),
        (interaction({**BUTTON, "actions": []}), "an interaction without an action"),
        (interaction({**BUTTON, "actions": [["pgconn.killall"]]}), "an interaction without an action"),
        (interaction({**BUTTON, "actions": "x"}), "an interaction without an action"),
        (interaction({**BUTTON, "actions": [{"value": "my-app"}]}), "an action without an action_id"),
        (interaction({**BUTTON, "actions": [{"action_id": 7}]}), "an action without an action_id"),
        (interaction({"type": "interactive_message", "callback_id": "x", "actions": [None]}),
         "an interaction without an action"),
        (interaction({**BUTTON, "authorizations": 5}), "a payload Bolt cannot read (TypeError)"),
    ],
)
def test_shapes_bolt_would_index_into_are_refused(body: bytes, why: str) -> None:
    assert malformed(body, FORM) == why
