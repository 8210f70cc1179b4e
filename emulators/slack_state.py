"""What the Slack emulator remembers: the workspace (channels, users, user groups), every
message with its edits, threads and reactions, ephemeral messages, response URLs, and a
record of every call made to it.

The emulator's HTTP handlers run on the server thread while tests read this state from
their own event loop, so every mutation and every multi-step read holds one lock.
"""

from __future__ import annotations

import copy
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Message:
    """A message as Slack stores it. ``edits`` holds each previous version, oldest first."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None
    user: str | None
    bot_id: str | None
    edits: list[dict[str, Any]] = field(default_factory=list)
    subtype: str | None = None
    username: str | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)
    # emoji name -> users who reacted, in order.
    reactions: dict[str, list[str]] = field(default_factory=dict)
    deleted: bool = False
    # Files shared with this message (files.completeUploadExternal): ids into SlackState.files.
    files: list[str] = field(default_factory=list)

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts


@dataclass
class ResponsePost:
    """One accepted POST to a response URL (rejected ones are only in ``received``)."""

    token: str
    body: dict[str, Any]
    received_at: float


@dataclass
class RecordedCall:
    """One raw request to the emulator, kept byte for byte (secret scanning reads these)."""

    method: str  # Web API method name, or "response_url"
    http_method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    params: dict[str, Any]
    received_at: float
    status: int = 0
    response: Any = None

    @property
    def error(self) -> str | None:
        if isinstance(self.response, dict) and self.response.get("ok") is False:
            return str(self.response.get("error"))
        if isinstance(self.response, str) and self.status != 200:
            return self.response
        return None


@dataclass
class Delivery:
    """One request the emulator sent to the bot, with the bot's answer."""

    kind: str  # "slash_command", "block_actions", "event_callback", "url_verification", "raw"
    body: bytes
    headers: dict[str, str]
    status: int
    response_text: str
    elapsed: float
    late: bool  # answered after Slack's 3-second deadline: the user saw an error


@dataclass
class Channel:
    id: str
    name: str
    member: bool = True
    is_private: bool = False
    # A Slack Connect channel, shared with another organisation (conversations.info is_ext_shared).
    ext_shared: bool = False
    created: int = field(default_factory=lambda: int(time.time()) - 86400)
    # People in the channel (conversations.members); the bot's own membership is `member`.
    members: list[str] = field(default_factory=list)


@dataclass
class User:
    id: str
    name: str
    real_name: str
    is_bot: bool = False
    is_admin: bool = False
    deleted: bool = False


@dataclass
class ResponseUrl:
    """Where a response URL posts to. Slack ties each one to a user and a channel, and for
    interactions to the message the click came from; it works 5 times within 30 minutes."""

    token: str
    channel: str | None
    user: str | None
    message_ts: str | None
    is_ephemeral: bool
    created_at: float
    uses: int = 0
    # The last ephemeral this URL produced: a later replace_original replaces it.
    last_ephemeral_ts: str | None = None


RESPONSE_URL_MAX_USES = 5
RESPONSE_URL_TTL = 30 * 60.0
# How long an upload URL from files.getUploadURLExternal takes bytes. Slack's reference does not
# give the figure; the emulator picks ten minutes, and tests age a URL past it instead of waiting.
UPLOAD_URL_TTL = 10 * 60.0
# The bot token's scopes: the manifest's (manifest.yml). Methods that need one it lacks answer
# missing_scope with `needed` and `provided`, as Slack does (see SCOPE_NEEDED in slack_api).
DEFAULT_SCOPES = frozenset(
    {
        "commands",
        "chat:write",
        "chat:write.public",
        "usergroups:read",
        "channels:read",
        "groups:read",
        "files:write",
    }
)


@dataclass
class StoredFile:
    """A file from files.getUploadURLExternal: its bytes once POSTed to its upload URL, and where
    files.completeUploadExternal shared it."""

    id: str
    filename: str
    length: int  # what getUploadURLExternal was told
    upload_token: str
    created_at: float  # monotonic, for the upload URL's expiry
    created: int  # unix time, as file objects show it
    alt_txt: str | None = None
    data: bytes | None = None  # None until uploaded
    title: str = ""
    completed: bool = False
    channel: str | None = None
    thread_ts: str | None = None
    message_ts: str | None = None

    @property
    def mimetype(self) -> str:
        ext = self.filename.rsplit(".", 1)[-1].lower() if "." in self.filename else ""
        return {
            "png": "image/png",
            "md": "text/markdown",
            "txt": "text/plain",
            "json": "application/json",
        }.get(ext, "application/octet-stream")

    @property
    def filetype(self) -> str:
        ext = self.filename.rsplit(".", 1)[-1].lower() if "." in self.filename else ""
        return {"md": "markdown", "txt": "text"}.get(ext, ext or "binary")


class SlackState:
    """The workspace and everything posted in it. Thread-safe."""

    def __init__(
        self,
        *,
        team_id: str,
        team_domain: str,
        bot_user_id: str,
        bot_id: str,
        app_id: str,
        bot_name: str,
    ) -> None:
        self.team_id = team_id
        self.team_domain = team_domain
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.bot_name = bot_name
        self.lock = threading.RLock()
        self._last_ts_us = 0
        self.channels: dict[str, Channel] = {}
        self.users: dict[str, User] = {}
        self.usergroups: dict[str, list[str]] = {}
        self._messages: dict[str, list[Message]] = {}
        self.ephemerals: list[dict[str, Any]] = []
        self.responses: list[ResponsePost] = []
        self.response_urls: dict[str, ResponseUrl] = {}
        self.received: list[RecordedCall] = []
        self.deliveries: list[Delivery] = []
        # The Home tab each user sees (views.publish), by user id (emulators/slack_views.py).
        self.home_views: dict[str, dict[str, Any]] = {}
        self.scopes: set[str] = set(DEFAULT_SCOPES)
        self.files: dict[str, StoredFile] = {}
        self.upload_url_ttl = UPLOAD_URL_TTL
        # The emulator's base URL (SlackEmulator sets it when serving): upload URLs point at it.
        self.url = ""
        self.add_user(bot_user_id, bot_name, is_bot=True)

    # -- workspace ---------------------------------------------------------------------

    def add_channel(
        self,
        channel_id: str,
        name: str,
        *,
        member: bool = True,
        is_private: bool = False,
        ext_shared: bool = False,
    ) -> None:
        """Register a channel. ``member=False``: the bot is not in it (not_in_channel);
        ``ext_shared``: a Slack Connect channel shared with another organisation."""
        if not channel_id or channel_id[0] not in "CG":
            raise ValueError(f"channel ids start with C (or G for old private ones): {channel_id!r}")
        with self.lock:
            self.channels[channel_id] = Channel(
                channel_id, name.lstrip("#"), member=member, is_private=is_private, ext_shared=ext_shared
            )
            self._messages.setdefault(channel_id, [])

    def add_user(
        self,
        user_id: str,
        name: str,
        *,
        real_name: str | None = None,
        is_bot: bool = False,
        is_admin: bool = False,
    ) -> None:
        if not user_id or user_id[0] not in "UW":
            raise ValueError(f"user ids start with U or W: {user_id!r}")
        with self.lock:
            self.users[user_id] = User(
                user_id, name, real_name or name.title(), is_bot=is_bot, is_admin=is_admin
            )

    def ensure_user(self, user_id: str) -> User:
        """The user, registered on the fly: anyone who can click in Slack exists in Slack."""
        with self.lock:
            if user_id not in self.users:
                self.add_user(user_id, f"user-{user_id.lower()}")
            return self.users[user_id]

    def add_usergroup(self, group_id: str, users: list[str]) -> None:
        if not group_id.startswith("S"):
            raise ValueError(f"user group ids start with S: {group_id!r}")
        with self.lock:
            self.usergroups[group_id] = list(users)

    def resolve_channel(self, value: str) -> Channel | None:
        """A channel by id, or by name (``#name`` or ``name``) as chat.postMessage allows."""
        with self.lock:
            if value in self.channels:
                return self.channels[value]
            name = value.lstrip("#")
            for channel in self.channels.values():
                if channel.name == name:
                    return channel
            return None

    # -- messages ----------------------------------------------------------------------

    def next_ts(self) -> str:
        """A Slack ts ("1700000000.000100"): wall-clock based, strictly increasing."""
        with self.lock:
            now_us = int(time.time() * 1_000_000)
            self._last_ts_us = max(now_us, self._last_ts_us + 1)
            return f"{self._last_ts_us // 1_000_000}.{self._last_ts_us % 1_000_000:06d}"

    def post(
        self,
        channel: str,
        *,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        user: str | None = None,
        bot_id: str | None = None,
        username: str | None = None,
        subtype: str | None = None,
        attachments: list[dict[str, Any]] | None = None,
    ) -> Message:
        with self.lock:
            message = Message(
                channel=channel,
                ts=self.next_ts(),
                text=text,
                blocks=_with_block_ids(blocks or []),
                thread_ts=thread_ts,
                user=user,
                bot_id=bot_id,
                subtype=subtype,
                username=username,
                attachments=_with_attachment_ids(attachments or []),
            )
            self._messages.setdefault(channel, []).append(message)
            return message

    def find(self, channel: str, ts: str, *, include_deleted: bool = False) -> Message | None:
        with self.lock:
            for message in self._messages.get(channel, []):
                if message.ts == ts and (include_deleted or not message.deleted):
                    return message
            return None

    def find_anywhere(self, ts: str) -> Message | None:
        with self.lock:
            for messages in self._messages.values():
                for message in messages:
                    if message.ts == ts and not message.deleted:
                        return message
            return None

    def edit(
        self,
        message: Message,
        *,
        text: str | None,
        blocks: list[dict[str, Any]] | None,
        attachments: list[dict[str, Any]] | None = None,
    ) -> None:
        """Replace a message's content, keeping the previous version in ``edits``.
        ``None`` keeps that part as it was, like chat.update does for blocks/attachments."""
        with self.lock:
            message.edits.append(
                {
                    "text": message.text,
                    "blocks": copy.deepcopy(message.blocks),
                    "attachments": copy.deepcopy(message.attachments),
                    "replaced_at": time.time(),
                }
            )
            if text is not None:
                message.text = text
            if blocks is not None:
                message.blocks = _with_block_ids(blocks)
            if attachments is not None:
                message.attachments = _with_attachment_ids(attachments)

    def delete(self, message: Message) -> None:
        with self.lock:
            message.deleted = True

    def messages(self, channel: str, *, include_deleted: bool = False) -> list[Message]:
        """Top-level messages and replies in ``channel``, in post order."""
        with self.lock:
            return [m for m in self._messages.get(channel, []) if include_deleted or not m.deleted]

    def thread(self, channel: str, ts: str) -> list[Message]:
        """The replies to the message ``ts`` (not the parent), in post order."""
        with self.lock:
            return [
                m
                for m in self._messages.get(channel, [])
                if m.thread_ts == ts and m.ts != ts and not m.deleted
            ]

    def top_level(self, channel: str) -> list[Message]:
        """What conversations.history shows: top-level messages and broadcast replies."""
        with self.lock:
            return [
                m
                for m in self._messages.get(channel, [])
                if not m.deleted and (not m.is_reply or m.subtype == "thread_broadcast")
            ]

    def add_ephemeral(
        self,
        *,
        channel: str,
        user: str,
        text: str,
        blocks: list[dict[str, Any]] | None,
        thread_ts: str | None,
        via: str,
    ) -> dict[str, Any]:
        with self.lock:
            record: dict[str, Any] = {
                "channel": channel,
                "user": user,
                "text": text,
                "blocks": _with_block_ids(blocks or []),
                "thread_ts": thread_ts,
                "message_ts": self.next_ts(),
                "via": via,
                "deleted": False,
            }
            self.ephemerals.append(record)
            return record

    def find_ephemeral(self, ts: str) -> dict[str, Any] | None:
        with self.lock:
            for record in self.ephemerals:
                if record["message_ts"] == ts and not record["deleted"]:
                    return record
            return None

    # -- response URLs -----------------------------------------------------------------

    def new_response_url_token(
        self,
        *,
        channel: str | None,
        user: str | None,
        message_ts: str | None,
        is_ephemeral: bool,
    ) -> str:
        token = secrets.token_urlsafe(18)
        with self.lock:
            self.response_urls[token] = ResponseUrl(
                token=token,
                channel=channel,
                user=user,
                message_ts=message_ts,
                is_ephemeral=is_ephemeral,
                created_at=time.monotonic(),
            )
        return token

    # -- files ---------------------------------------------------------------------------

    def new_file(self, filename: str, length: int, alt_txt: str | None) -> StoredFile:
        with self.lock:
            file_id = "F" + secrets.token_hex(5).upper()
            stored = StoredFile(
                id=file_id,
                filename=filename,
                length=length,
                upload_token=secrets.token_urlsafe(18),
                created_at=time.monotonic(),
                created=int(time.time()),
                alt_txt=alt_txt,
            )
            self.files[file_id] = stored
            return stored

    def file_by_upload_token(self, token: str) -> StoredFile | None:
        with self.lock:
            return next((f for f in self.files.values() if f.upload_token == token), None)

    def upload_expired(self, stored: StoredFile) -> bool:
        return time.monotonic() - stored.created_at > self.upload_url_ttl

    def files_in(self, channel: str, thread_ts: str | None = None) -> list[StoredFile]:
        """Files shared in a channel (in one thread when ``thread_ts`` is given), in order."""
        with self.lock:
            out = []
            for m in self.messages(channel):
                if thread_ts is not None and m.thread_ts != thread_ts:
                    continue
                out += [self.files[f] for f in m.files if f in self.files]
            return out

    def file_json(self, stored: StoredFile) -> dict[str, Any]:
        base = self.url.rstrip("/")
        private = f"{base}/files-pri/{self.team_id}-{stored.id}/{stored.filename}"
        out: dict[str, Any] = {
            "id": stored.id,
            "created": stored.created,
            "timestamp": stored.created,
            "name": stored.filename,
            "title": stored.title or stored.filename,
            "mimetype": stored.mimetype,
            "filetype": stored.filetype,
            "pretty_type": stored.filetype.upper(),
            "user": self.bot_user_id,
            "user_team": self.team_id,
            "editable": False,
            "size": len(stored.data or b""),
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": bool(stored.channel and not self.channels[stored.channel].is_private)
            if stored.channel in self.channels
            else False,
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            "url_private": private,
            "url_private_download": f"{private}?download=1",
            "permalink": f"https://{self.team_domain}.slack.com/files/{self.bot_user_id}/{stored.id}/"
            f"{stored.filename}",
            "permalink_public": f"https://slack-files.com/{self.team_id}-{stored.id}",
            "has_rich_preview": False,
            "file_access": "visible",
        }
        if stored.alt_txt:
            out["alt_txt"] = stored.alt_txt
        if stored.channel and stored.message_ts:
            where = "private" if self.channels[stored.channel].is_private else "public"
            share: dict[str, Any] = {
                "ts": stored.message_ts,
                "channel_name": self.channels[stored.channel].name,
                "share_user_id": self.bot_user_id,
                "source": "UNKNOWN",
            }
            if stored.thread_ts:
                share["thread_ts"] = stored.thread_ts
            out["shares"] = {where: {stored.channel: [share]}}
            out["channels"] = [stored.channel] if where == "public" else []
            out["groups"] = [stored.channel] if where == "private" else []
        return out

    # -- JSON views, shaped like the Web API returns them -----------------------------

    def bot_profile(self) -> dict[str, Any]:
        icon = "https://a.slack-edge.com/80588/img/plugins/app/bot_{}.png"
        return {
            "id": self.bot_id,
            "deleted": False,
            "name": self.bot_name,
            "updated": 1700000000,
            "app_id": self.app_id,
            "icons": {f"image_{n}": icon.format(n) for n in (36, 48, 72)},
            "team_id": self.team_id,
        }

    def message_json(self, message: Message) -> dict[str, Any]:
        with self.lock:
            out: dict[str, Any] = {"type": "message"}
            if message.subtype:
                out["subtype"] = message.subtype
            out["text"] = message.text
            if message.user:
                out["user"] = message.user
            if message.bot_id:
                out["bot_id"] = message.bot_id
            if message.username:
                out["username"] = message.username
            out["ts"] = message.ts
            out["team"] = self.team_id
            if message.bot_id == self.bot_id:
                out["bot_profile"] = self.bot_profile()
            if message.blocks:
                out["blocks"] = copy.deepcopy(message.blocks)
            if message.attachments:
                out["attachments"] = copy.deepcopy(message.attachments)
            if message.files:
                out["files"] = [self.file_json(self.files[f]) for f in message.files if f in self.files]
                out["upload"] = True
            if message.is_reply and message.thread_ts is not None:
                out["thread_ts"] = message.thread_ts
                parent = self.find(message.channel, message.thread_ts, include_deleted=True)
                if parent is not None and parent.user:
                    out["parent_user_id"] = parent.user
            else:
                replies = self.thread(message.channel, message.ts)
                if replies:
                    repliers = list(dict.fromkeys(r.user for r in replies if r.user))
                    out["thread_ts"] = message.ts
                    out["reply_count"] = len(replies)
                    out["reply_users_count"] = len(repliers)
                    out["latest_reply"] = replies[-1].ts
                    if repliers:
                        out["reply_users"] = repliers
                    out["subscribed"] = False
            if message.reactions:
                out["reactions"] = [
                    {"name": name, "users": list(users), "count": len(users)}
                    for name, users in message.reactions.items()
                ]
            return out

    def permalink(self, message: Message) -> str:
        base = (
            f"https://{self.team_domain}.slack.com/archives/{message.channel}/p{message.ts.replace('.', '')}"
        )
        if message.is_reply:
            return f"{base}?thread_ts={message.thread_ts}&cid={message.channel}"
        return base

    def user_json(self, user: User) -> dict[str, Any]:
        profile: dict[str, Any] = {
            "avatar_hash": "g0000000000",
            "status_text": "",
            "status_emoji": "",
            "real_name": user.real_name,
            "display_name": user.name,
            "real_name_normalized": user.real_name,
            "display_name_normalized": user.name,
            "title": "",
            "phone": "",
            "skype": "",
            "fields": None,
            "image_72": "https://secure.gravatar.com/avatar/0.jpg",
            "team": self.team_id,
        }
        if user.is_bot:
            profile["bot_id"] = self.bot_id if user.id == self.bot_user_id else None
            profile["api_app_id"] = self.app_id if user.id == self.bot_user_id else ""
            profile["always_active"] = True
        return {
            "id": user.id,
            "team_id": self.team_id,
            "name": user.name,
            "deleted": user.deleted,
            "color": "9f69e7",
            "real_name": user.real_name,
            "tz": "Europe/London",
            "tz_label": "Greenwich Mean Time",
            "tz_offset": 0,
            "profile": profile,
            "is_admin": user.is_admin,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": user.is_bot,
            "is_app_user": False,
            "updated": 1700000000,
            "has_2fa": False,
        }

    def conversation_json(self, channel: Channel) -> dict[str, Any]:
        blank = {"value": "", "creator": "", "last_set": 0}
        return {
            "id": channel.id,
            "name": channel.name,
            "is_channel": not channel.is_private,
            "is_group": False,
            "is_im": False,
            "is_mpim": False,
            "is_private": channel.is_private,
            "created": channel.created,
            "is_archived": False,
            "is_general": channel.name == "general",
            "unlinked": 0,
            "name_normalized": channel.name,
            "is_shared": channel.ext_shared,
            "is_org_shared": False,
            "is_pending_ext_shared": False,
            "pending_shared": [],
            "context_team_id": self.team_id,
            "parent_conversation": None,
            "creator": "U0CREATOR1",
            "is_ext_shared": channel.ext_shared,
            "shared_team_ids": [self.team_id],
            "pending_connected_team_ids": [],
            "is_member": channel.member,
            "topic": dict(blank),
            "purpose": dict(blank),
            "previous_names": [],
        }


def _with_block_ids(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Blocks as Slack stores them: a copy, every block given a block_id if it had none
    (Slack invents one; the click payload then carries it)."""
    # Copied one by one: deepcopy of ``[block] * 50`` would keep one shared dict, and every
    # block would end up with the same id.
    stored = [copy.deepcopy(block) for block in blocks]
    for block in stored:
        if isinstance(block, dict) and "block_id" not in block:
            block["block_id"] = secrets.token_urlsafe(4)
    return stored


def _with_attachment_ids(attachments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    stored = copy.deepcopy(attachments)
    for i, attachment in enumerate(stored, start=1):
        if isinstance(attachment, dict):
            attachment.setdefault("id", i)
    return stored
