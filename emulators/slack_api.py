"""The Slack Web API methods the emulator answers, shaped like the OpenAPI contract.

Each method is a function ``(state, params) -> response dict`` that raises ``ApiError`` for
Slack's ``{"ok": false, "error": ...}`` answers. Parameters arrive already merged from the
query string, a form body or a JSON body (slack_sdk uses all three), so values may be
strings ("true", "[...]") or JSON values; the helpers below accept both, as Slack does.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any

from emulators.slack_blocks import validate_blocks
from emulators.slack_state import Channel, Message, SlackState

Params = dict[str, Any]
Method = Callable[[SlackState, Params], dict[str, Any]]

MAX_TEXT = 40_000


class ApiError(Exception):
    """A Slack error answer; ``extra`` goes into the response next to ``error``."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"ok": False, "error": self.error, **self.extra}


# -- parameter helpers ----------------------------------------------------------------


def text_param(params: Params, key: str) -> str | None:
    value = params.get(key)
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def flag(params: Params, key: str) -> bool:
    value = params.get(key)
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def json_array(params: Params, key: str, *, bad: str) -> list[Any] | None:
    """A JSON array parameter (sent as a list in JSON bodies, a JSON string in forms)."""
    value = params.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ApiError(bad) from exc
    if not isinstance(value, list):
        raise ApiError(bad)
    return value


def blocks_param(params: Params) -> list[dict[str, Any]] | None:
    blocks = json_array(params, "blocks", bad="invalid_blocks_format")
    if blocks is None:
        return None
    check_blocks(blocks)
    return blocks


def check_blocks(blocks: object) -> None:
    errors = validate_blocks(blocks)
    if errors:
        raise invalid_blocks(errors)


def invalid_blocks(errors: list[str]) -> ApiError:
    # Slack lists the problems twice: bare in ``errors``, prefixed in response_metadata.
    return ApiError(
        "invalid_blocks",
        errors=errors,
        response_metadata={"messages": [f"[ERROR] {e}" for e in errors]},
    )


def channel_param(state: SlackState, params: Params, key: str = "channel") -> Channel:
    value = text_param(params, key)
    channel = state.resolve_channel(value) if value else None
    if channel is None:
        raise ApiError("channel_not_found")
    return channel


def message_param(state: SlackState, channel: Channel, params: Params, key: str) -> Message:
    ts = text_param(params, key)
    message = state.find(channel.id, ts) if ts else None
    if message is None:
        raise ApiError("message_not_found")
    return message


def content(
    params: Params,
) -> tuple[str | None, list[dict[str, Any]] | None, list[dict[str, Any]] | None]:
    """text, blocks, attachments of a chat.* call, validated the way Slack does."""
    text = text_param(params, "text")
    blocks = blocks_param(params)
    attachments = json_array(params, "attachments", bad="invalid_attachments")
    if text is not None and len(text) > MAX_TEXT:
        raise ApiError("msg_too_long")
    return text, blocks, attachments


def require_content(text: str | None, blocks: list[Any] | None, attach: list[Any] | None) -> None:
    if not text and not blocks and not attach:
        raise ApiError("no_text")


def page(items: list[Any], params: Params, *, default_limit: int) -> tuple[list[Any], str | None]:
    """Cursor pagination: the cursor is an opaque encoded offset, as Slack's are opaque."""
    try:
        limit = int(params.get("limit") or default_limit)
    except (TypeError, ValueError) as exc:
        raise ApiError("invalid_limit") from exc
    limit = max(1, min(limit, 999))
    cursor = text_param(params, "cursor")
    offset = 0
    if cursor:
        try:
            offset = int(base64.b64decode(cursor).decode().removeprefix("offset:"))
        except ValueError as exc:
            raise ApiError("invalid_cursor") from exc
    chunk = items[offset : offset + limit]
    more = offset + limit < len(items)
    next_cursor = base64.b64encode(f"offset:{offset + limit}".encode()).decode() if more else None
    return chunk, next_cursor


def in_window(message: Message, params: Params) -> bool:
    """conversations.history's oldest/latest/inclusive filter."""
    inclusive = flag(params, "inclusive")
    ts = float(message.ts)
    oldest = text_param(params, "oldest")
    latest = text_param(params, "latest")
    try:
        if oldest and (ts < float(oldest) or (ts == float(oldest) and not inclusive)):
            return False
        if latest and (ts > float(latest) or (ts == float(latest) and not inclusive)):
            return False
    except ValueError as exc:
        raise ApiError("invalid_ts_oldest" if oldest else "invalid_ts_latest") from exc
    return True


# -- methods --------------------------------------------------------------------------


def auth_test(state: SlackState, params: Params) -> dict[str, Any]:
    return {
        "ok": True,
        "url": f"https://{state.team_domain}.slack.com/",
        "team": state.team_domain,
        "user": state.bot_name,
        "team_id": state.team_id,
        "user_id": state.bot_user_id,
        "bot_id": state.bot_id,
        "is_enterprise_install": False,
    }


def chat_post_message(state: SlackState, params: Params) -> dict[str, Any]:
    channel = channel_param(state, params)
    if not channel.member:
        raise ApiError("not_in_channel")
    text, blocks, attachments = content(params)
    require_content(text, blocks, attachments)
    thread_ts = text_param(params, "thread_ts") or None
    if thread_ts:
        parent = state.find(channel.id, thread_ts)
        # Replying to a reply lands in the parent's thread. A thread_ts that matches no
        # message is accepted, like Slack does (the reply is then invisible in the channel).
        if parent is not None and parent.is_reply:
            thread_ts = parent.thread_ts
    broadcast = bool(thread_ts) and flag(params, "reply_broadcast")
    message = state.post(
        channel.id,
        text=text or "",
        blocks=blocks,
        thread_ts=thread_ts,
        user=state.bot_user_id,
        bot_id=state.bot_id,
        username=text_param(params, "username"),
        subtype="thread_broadcast" if broadcast else None,
        attachments=attachments,
    )
    return {
        "ok": True,
        "channel": channel.id,
        "ts": message.ts,
        "message": state.message_json(message),
    }


def chat_update(state: SlackState, params: Params) -> dict[str, Any]:
    channel = channel_param(state, params)
    message = message_param(state, channel, params, "ts")
    if message.bot_id != state.bot_id:
        raise ApiError("cant_update_message")
    text, blocks, attachments = content(params)
    if text is None and blocks is None and attachments is None:
        raise ApiError("no_text")
    # Omitted blocks/attachments are kept (documented); omitted text is kept too. What
    # must not happen is an update that leaves the message empty.
    require_content(
        message.text if text is None else text,
        message.blocks if blocks is None else blocks,
        message.attachments if attachments is None else attachments,
    )
    state.edit(message, text=text, blocks=blocks, attachments=attachments)
    return {
        "ok": True,
        "channel": channel.id,
        "ts": message.ts,
        "text": message.text,
        "message": state.message_json(message),
    }


def chat_delete(state: SlackState, params: Params) -> dict[str, Any]:
    channel = channel_param(state, params)
    message = message_param(state, channel, params, "ts")
    if message.bot_id != state.bot_id:
        raise ApiError("cant_delete_message")
    state.delete(message)
    return {"ok": True, "channel": channel.id, "ts": message.ts}


def chat_post_ephemeral(state: SlackState, params: Params) -> dict[str, Any]:
    channel = channel_param(state, params)
    user = text_param(params, "user")
    if not user or user not in state.users:
        raise ApiError("user_not_in_channel")
    text, blocks, attachments = content(params)
    require_content(text, blocks, attachments)
    record = state.add_ephemeral(
        channel=channel.id,
        user=user,
        text=text or "",
        blocks=blocks,
        thread_ts=text_param(params, "thread_ts") or None,
        via="chat.postEphemeral",
    )
    return {"ok": True, "message_ts": record["message_ts"]}


def chat_get_permalink(state: SlackState, params: Params) -> dict[str, Any]:
    channel = channel_param(state, params)
    message = message_param(state, channel, params, "message_ts")
    return {"ok": True, "channel": channel.id, "permalink": state.permalink(message)}


def conversations_replies(state: SlackState, params: Params) -> dict[str, Any]:
    channel = channel_param(state, params)
    ts = text_param(params, "ts")
    message = state.find(channel.id, ts) if ts else None
    if message is None:
        raise ApiError("thread_not_found")
    if message.is_reply and message.thread_ts is not None:
        parent = state.find(channel.id, message.thread_ts)
        if parent is None:
            raise ApiError("thread_not_found")
        message = parent
    thread = [message, *state.thread(channel.id, message.ts)]
    chunk, next_cursor = page(thread, params, default_limit=1000)
    out: dict[str, Any] = {
        "ok": True,
        "messages": [state.message_json(m) for m in chunk],
        "has_more": next_cursor is not None,
    }
    if next_cursor:
        out["response_metadata"] = {"next_cursor": next_cursor}
    return out


def conversations_history(state: SlackState, params: Params) -> dict[str, Any]:
    channel = channel_param(state, params)
    newest_first = [m for m in reversed(state.top_level(channel.id)) if in_window(m, params)]
    chunk, next_cursor = page(newest_first, params, default_limit=100)
    out: dict[str, Any] = {
        "ok": True,
        "messages": [state.message_json(m) for m in chunk],
        "has_more": next_cursor is not None,
        "pin_count": 0,
        "channel_actions_ts": None,
        "channel_actions_count": 0,
    }
    if next_cursor:
        out["response_metadata"] = {"next_cursor": next_cursor}
    return out


def conversations_info(state: SlackState, params: Params) -> dict[str, Any]:
    channel = channel_param(state, params)
    return {"ok": True, "channel": state.conversation_json(channel)}


def users_info(state: SlackState, params: Params) -> dict[str, Any]:
    user_id = text_param(params, "user")
    user = state.users.get(user_id) if user_id else None
    if user is None:
        raise ApiError("user_not_found")
    return {"ok": True, "user": state.user_json(user)}


def usergroups_users_list(state: SlackState, params: Params) -> dict[str, Any]:
    group = text_param(params, "usergroup")
    if not group or group not in state.usergroups:
        raise ApiError("no_such_subteam")
    return {"ok": True, "users": list(state.usergroups[group])}


_EMOJI_NAME = re.compile(r"^[a-z0-9_+\-']+(::skin-tone-[2-6])?$")


def reactions_add(state: SlackState, params: Params) -> dict[str, Any]:
    name = (text_param(params, "name") or "").strip(":")
    if not name:
        raise ApiError("no_item_specified")
    if not _EMOJI_NAME.match(name):
        raise ApiError("invalid_name")
    channel = channel_param(state, params)
    ts = text_param(params, "timestamp")
    if not ts:
        raise ApiError("no_item_specified")
    message = message_param(state, channel, params, "timestamp")
    users = message.reactions.setdefault(name, [])
    if state.bot_user_id in users:
        raise ApiError("already_reacted")
    users.append(state.bot_user_id)
    return {"ok": True}


METHODS: dict[str, Method] = {
    "auth.test": auth_test,
    "chat.postMessage": chat_post_message,
    "chat.update": chat_update,
    "chat.delete": chat_delete,
    "chat.postEphemeral": chat_post_ephemeral,
    "chat.getPermalink": chat_get_permalink,
    "conversations.replies": conversations_replies,
    "conversations.history": conversations_history,
    "conversations.info": conversations_info,
    "users.info": users_info,
    "usergroups.users.list": usergroups_users_list,
    "reactions.add": reactions_add,
}
