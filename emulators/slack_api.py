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


# -- files: Slack's upload flow since files.upload was retired ------------------------------
#
# 1. files.getUploadURLExternal(filename, length[, alt_txt, snippet_type]) → upload_url, file_id
# 2. POST the bytes (raw, or multipart) to upload_url: HTTP 200 (served in emulators/slack.py)
# 3. files.completeUploadExternal(files=[{id, title}], channel_id, thread_ts, initial_comment)
#    shares the files, as one message, in the channel or thread.
# Sources: docs.slack.dev/reference/methods/files.getUploadURLExternal ("Call
# files.getUploadURLExternal … Upload a file by making a POST request to the upload URL …
# Files can be sent as raw bytes or can be multipart form encoded"; missing_argument "typically
# only occurs when the length provided is 0") and …/files.completeUploadExternal (files required;
# channel_id, thread_ts "never use a reply's ts", initial_comment; blocks ignored when
# initial_comment is given); slack_sdk's AsyncWebClient.files_upload_v2 (web/async_client.py,
# slack-sdk 3.48), which runs exactly these three steps and fails when step 2 is not HTTP 200.
# What Slack leaves unsaid, the emulator decides and says so: a complete naming a file whose
# bytes never arrived (or arrived with another length than announced, or after the URL expired)
# is file_not_found, with the reason in response_metadata.messages as Slack words its warnings.


def _scope(state: SlackState, needed: str) -> None:
    if needed not in state.scopes:
        raise ApiError("missing_scope", needed=needed, provided=",".join(sorted(state.scopes)))


def files_get_upload_url_external(state: SlackState, params: Params) -> dict[str, Any]:
    _scope(state, "files:write")
    filename = text_param(params, "filename")
    raw_length = text_param(params, "length")
    if not filename or raw_length is None:
        raise ApiError("invalid_arguments", response_metadata={"messages": ["[ERROR] missing required field: "
                       + ("filename" if not filename else "length")]})
    try:
        length = int(raw_length)
    except ValueError as exc:
        raise ApiError("invalid_arguments") from exc
    if length <= 0:
        raise ApiError("missing_argument")
    alt = text_param(params, "alt_txt")
    if alt is not None and len(alt) > 1000:
        raise ApiError("alt_txt_too_large")
    stored = state.new_file(filename, length, alt)
    return {
        "ok": True,
        "upload_url": f"{state.url.rstrip('/')}/upload/v1/{stored.upload_token}",
        "file_id": stored.id,
    }


def files_complete_upload_external(state: SlackState, params: Params) -> dict[str, Any]:
    _scope(state, "files:write")
    entries = json_array(params, "files", bad="invalid_arguments")
    if not entries:
        raise ApiError(
            "invalid_arguments", response_metadata={"messages": ["[ERROR] missing required field: files"]}
        )
    chosen = []
    for entry in entries:
        if not isinstance(entry, dict) or not entry.get("id"):
            raise ApiError("invalid_arguments")
        stored = state.files.get(str(entry["id"]))
        if stored is None or stored.completed:
            raise ApiError("file_not_found")
        problem = None
        if stored.data is None:
            problem = (
                "the upload URL expired before any bytes were uploaded"
                if state.upload_expired(stored)
                else "no bytes were uploaded to the file's upload URL"
            )
        elif len(stored.data) != stored.length:
            problem = (
                f"{len(stored.data)} bytes were uploaded, files.getUploadURLExternal was told {stored.length}"
            )
        if problem:
            messages = [f"[ERROR] {stored.id}: {problem}"]
            raise ApiError("file_not_found", response_metadata={"messages": messages})
        chosen.append((stored, str(entry.get("title") or "")))
    channel_id = text_param(params, "channel_id") or (text_param(params, "channels") or "").split(",")[0]
    message = None
    if channel_id:
        channel = state.resolve_channel(channel_id)
        if channel is None:
            raise ApiError("channel_not_found")
        if not channel.member:
            raise ApiError("not_in_channel")
        thread_ts = text_param(params, "thread_ts") or None
        if thread_ts:
            parent = state.find(channel.id, thread_ts)
            if parent is not None and parent.is_reply:
                thread_ts = parent.thread_ts
        comment = text_param(params, "initial_comment")
        blocks = None if comment else blocks_param(params)
        message = state.post(
            channel.id, text=comment or "", blocks=blocks, thread_ts=thread_ts,
            user=state.bot_user_id, bot_id=state.bot_id,
        )
    for stored, title in chosen:
        stored.completed = True
        stored.title = title or stored.filename
        if message is not None:
            message.files.append(stored.id)
            stored.channel, stored.thread_ts = message.channel, message.thread_ts
            stored.message_ts = message.ts
    return {"ok": True, "files": [state.file_json(stored) for stored, _ in chosen]}


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
    "files.getUploadURLExternal": files_get_upload_url_external,
    "files.completeUploadExternal": files_complete_upload_external,
}
