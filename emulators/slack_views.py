"""Views in the Slack emulator: the Home tab (``views.publish``) and channel membership
(``conversations.members``, which decides who may see an app on pgconn's Home tab).

Slack's limits for a Home tab view, as documented (https://docs.slack.dev/reference/views/home-tab-views):
``type`` "home"; ``blocks`` at most 100; ``private_metadata`` at most 3000 characters;
``callback_id`` at most 255; ``external_id`` optional. Every block inside is held to the
same Block Kit limits as in a message (``slack_blocks``), with the pointer under ``/view``.

How Slack refuses a bad view: ``views.*`` answer ``invalid_arguments`` (not the
``invalid_blocks`` of ``chat.*``), with one ``[ERROR] … [json-pointer:/view/…]`` line per
problem in ``response_metadata.messages`` — as a real answer shows, quoted in
incidentbot/incidentbot#307 ("failed to match all allowed schemas [json-pointer:/view]",
"no more than 5 items allowed [json-pointer:/view/blocks/20/accessory/options]"), and the
golden file failed_view_publish.json of the Haskell slack-web package. A bad ``user_id``
is ``invalid_arguments`` with "invalid `user_id`" (the method's documented error example).

The total size: no public source found states a byte limit for a view. The emulator
refuses a view whose JSON is over 250 KB (VIEW_MAX_BYTES) with the same invalid_arguments,
an assumption taken from the brief of #17, so that a Home tab growing without bound fails
here rather than silently in production; pgconn keeps its Home under a fifth of it.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from emulators.slack_api import ApiError, Params, text_param
from emulators.slack_blocks import validate_blocks
from emulators.slack_state import SlackState

MAX_BLOCKS_VIEW = 100
MAX_PRIVATE_METADATA = 3000
MAX_CALLBACK_ID = 255
VIEW_MAX_BYTES = 250_000
_VIEW_KEYS = frozenset({"type", "blocks", "private_metadata", "callback_id", "external_id"})


def _invalid(messages: list[str]) -> ApiError:
    return ApiError("invalid_arguments", response_metadata={"messages": [f"[ERROR] {m}" for m in messages]})


def view_errors(view: object) -> list[str]:
    """Slack's messages for a Home tab view (empty when Slack would take it)."""
    if not isinstance(view, dict):
        return [
            "failed to match all allowed schemas [json-pointer:/view]",
            "must provide an object [json-pointer:/view]",
        ]
    errors: list[str] = []
    for key in view:
        if key not in _VIEW_KEYS:
            errors.append(f"invalid additional property: {key} [json-pointer:/view/{key}]")
    if view.get("type") != "home":
        errors.append("must be home [json-pointer:/view/type]")
    blocks = view.get("blocks")
    if blocks is None:
        errors.append("missing required field: blocks [json-pointer:/view]")
    else:
        # The block checks of messages, re-rooted under /view and with the view's own cap.
        errors += [e.replace("[json-pointer:/blocks", "[json-pointer:/view/blocks")
                   for e in validate_blocks(blocks, max_blocks=MAX_BLOCKS_VIEW)]
    for key, limit in (("private_metadata", MAX_PRIVATE_METADATA), ("callback_id", MAX_CALLBACK_ID)):
        value = view.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            errors.append(f"must be less than {limit + 1} characters [json-pointer:/view/{key}]")
    if errors:
        errors.insert(0, "failed to match all allowed schemas [json-pointer:/view]")
    return errors


def views_publish(state: SlackState, params: Params) -> dict[str, Any]:
    user_id = text_param(params, "user_id") or ""
    if user_id not in state.users:
        raise _invalid(["invalid `user_id`"])
    raw = params.get("view")
    if isinstance(raw, str):
        size = len(raw.encode())
        try:
            view: Any = json.loads(raw)
        except ValueError:
            raise _invalid(["failed to match all allowed schemas [json-pointer:/view]"]) from None
    else:
        view = raw
        size = len(json.dumps(view).encode())
    errors = view_errors(view)
    if not errors and size > VIEW_MAX_BYTES:
        errors = [f"view is {size} bytes, more than {VIEW_MAX_BYTES} [json-pointer:/view]"]
    if errors:
        raise _invalid(errors)
    previous = state.home_views.get(user_id)
    given_hash = text_param(params, "hash")
    if given_hash and previous is not None and given_hash != previous["hash"]:
        raise ApiError("hash_conflict")
    view_id = previous["id"] if previous else "V" + secrets.token_hex(5).upper()
    published = {
        "id": view_id,
        "team_id": state.team_id,
        "type": "home",
        "blocks": view["blocks"],
        "private_metadata": view.get("private_metadata", ""),
        "callback_id": view.get("callback_id", ""),
        "external_id": view.get("external_id", ""),
        "state": {"values": {}},
        "hash": f"{time.time():.6f}.{secrets.token_hex(4)}",
        "clear_on_close": False,
        "notify_on_close": False,
        "root_view_id": view_id,
        "previous_view_id": None,
        "app_id": state.app_id,
        "bot_id": state.bot_id,
        "close": None,
        "submit": None,
        "published_at": time.time(),
    }
    state.home_views[user_id] = published
    return {"ok": True, "view": {k: v for k, v in published.items() if k != "published_at"}}


def conversations_members(state: SlackState, params: Params) -> dict[str, Any]:
    """Members of a channel (only the first page is modelled: pgconn's tests use small ones)."""
    channel_id = text_param(params, "channel") or ""
    channel = state.channels.get(channel_id)
    if channel is None:
        raise ApiError("channel_not_found")
    return {"ok": True, "members": list(channel.members), "response_metadata": {"next_cursor": ""}}


VIEW_METHODS = {"views.publish": views_publish, "conversations.members": conversations_members}
