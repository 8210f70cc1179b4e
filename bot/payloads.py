"""Is a signed body something Bolt can dispatch? Checked before Bolt reads it.

Bolt's matchers index a payload without checks (slack_bolt `request/payload_utils.py`
`to_action`: `body["actions"][0]`; `listener_matcher/builtins.py` `_block_action`:
`action["action_id"]`), so a signed but mangled payload raises inside Bolt: a traceback in
the log and a 500. Refusing those shapes first makes each such request one log line and a
400, and leaves a 500 from Bolt to mean what it says.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.request.internals import parse_body

# Payload types whose `actions[0]` Bolt reads unchecked (block buttons, legacy attachments).
_WITH_ACTIONS = ("block_actions", "interactive_message")
_SHORTCUTS = ("shortcut", "message_action")


def malformed(body: bytes, content_type: str | None) -> str | None:
    """Why Bolt could not dispatch this body (one short phrase), or None when it can."""
    try:
        text = body.decode("utf-8")
        payload: Any = parse_body(text, content_type)
    except ValueError as exc:  # UnicodeDecodeError and json.JSONDecodeError are ValueErrors
        return f"not a Slack payload ({type(exc).__name__})"
    if not isinstance(payload, dict):
        return "not a Slack payload (not an object)"
    if payload.get("type") in _WITH_ACTIONS and "actions" in payload:
        actions = payload["actions"]
        if not (isinstance(actions, list) and actions and isinstance(actions[0], dict)):
            return "an interaction without an action"
        if not isinstance(actions[0].get("action_id"), str):
            return "an action without an action_id"
    # Bolt's shortcut matchers read `body["callback_id"]` unchecked (listener_matcher/builtins.py,
    # `global_shortcut` / `message_shortcut`).
    if payload.get("type") in _SHORTCUTS and not isinstance(payload.get("callback_id"), str):
        return "a shortcut without a callback_id"
    try:
        # What Bolt's Starlette adapter builds from it: reading the context (team, enterprise,
        # user, channel) also indexes unchecked (`len(payload["authorizations"])`).
        AsyncBoltRequest(body=text, headers={"content-type": content_type or ""})
    except Exception as exc:  # noqa: BLE001 - whatever Bolt raises on it, it cannot dispatch it
        return f"a payload Bolt cannot read ({type(exc).__name__})"
    return None
