"""Who may make pgconn do what: the one place that decides.

`RULES` names every slash verb and every button, and who may run it:

- "member": anyone in pgconn's own workspace who can use the command in the channel (guests
  included: Slack lets a guest use slash commands in the channels they are in). Reads only.
- "admin": the admins *of the app concerned* (bot.apps: its own `admins` in PGCONN_APP_ROUTES,
  else PGCONN_ADMINS): those users, or members of those user groups (read with
  usergroups.users.list, cached for a minute, fail closed). Rights are per app: an admin of one
  app is a member like any other on every other app, so a click on another team's button is
  refused exactly as a stranger's is.
- "team": the app's admins, or anyone asking in the app's own alert channel (where its alerts
  and the actions on it are posted anyway): the audit of an app is its team's to read.

Anything not in the table is refused. `diagnose` shows query text, which may carry data: its
answer goes only to the person who asked unless an admin asks (`private_for`). Requests from
another workspace or an externally shared channel never reach this table: `foreign()` refuses
them first (a Bolt middleware, handlers/__init__.py, checks every request). Messages of other
bots make pgconn post only when allowlisted (`may_answer_message`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Literal

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.alerts.ownership import INCIDENT_BUTTONS
from bot.apps import AppDirectory
from bot.remediation.buttons import BUTTONS

log = logging.getLogger(__name__)

GROUP_CACHE_S = 60.0
# A channel becomes shared rarely, and then by an admin's deliberate act.
CHANNEL_CACHE_S = 300.0

Who = Literal["member", "admin", "team"]

RULES: Mapping[str, Who] = {
    "help": "member",
    "report": "member",
    "budget": "member",
    "audit": "team",
    "diagnose": "member",
    # Like the audit (it lists who did what, and the holders): what the app's thread showed its team.
    "postmortem": "team",
    # Removing the drain silences the alerts; adding it sends the app's logs to pgconn.
    "watch": "admin",
    "unwatch": "admin",
    # Every button says who may press it in its record (bot.remediation.buttons).
    **{b.id: b.who for b in BUTTONS},
    # Acknowledge / Snooze / Resolve on an alert thread (bot.alerts.ownership).
    **{b.id: b.who for b in INCIDENT_BUTTONS},
}
# Answered only to the person who asked, unless an admin asks.
PRIVATE_UNLESS_ADMIN = frozenset({"diagnose"})


class Authoriser:
    def __init__(
        self,
        slack: AsyncWebClient,
        apps: AppDirectory,
        *,
        cache_s: float = GROUP_CACHE_S,
    ) -> None:
        self._slack = slack
        self._apps = apps
        self._cache_s = cache_s
        self._members: dict[str, tuple[float, frozenset[str]]] = {}
        self._shared: dict[str, tuple[float, bool]] = {}
        self._asking: dict[str, asyncio.Future[bool]] = {}

    async def _group_members(self, group: str) -> frozenset[str]:
        cached = self._members.get(group)
        if cached and time.monotonic() - cached[0] < self._cache_s:
            return cached[1]
        try:
            result = await self._slack.usergroups_users_list(usergroup=group)
            members = frozenset(str(u) for u in result.get("users") or [])
        except SlackApiError as exc:
            # Fail closed: an unreadable group grants nothing.
            log.warning("usergroups.users.list %s failed: %s", group, exc.response.get("error"))
            return frozenset()
        self._members[group] = (time.monotonic(), members)
        return members

    async def is_admin(self, user_id: str, app: str) -> bool:
        """Whether `user_id` is an admin of `app` (bot.apps): listed, or in a listed user group."""
        if not user_id:
            return False
        route = self._apps.for_app(app)
        if user_id in route.admins:
            return True
        for group in sorted(route.admin_groups):
            if user_id in await self._group_members(group):
                return True
        return False

    async def may(self, user_id: str, what: str, app: str | None, *, channel: str | None = None) -> bool:
        """Whether `user_id` may run `what` (a slash verb or a button's action id) on `app`,
        asking in `channel` (None: not asked in a channel, e.g. a button's click)."""
        rule = RULES.get(what)
        if rule is None or not user_id:
            return False
        if rule == "member":
            return True
        if app is None:  # rights beyond a member's are an app's to give
            return False
        if rule == "team" and channel is not None and channel == self._apps.for_app(app).channel:
            return True
        return await self.is_admin(user_id, app)

    async def channel_shared(self, channel: str) -> bool:
        """Whether a channel is shared with another organisation (Slack Connect), from
        conversations.info, cached. Fails closed: a channel Slack will not describe counts as
        shared. Direct messages are pgconn's own conversation with one person: not checked."""
        if channel.startswith("D"):
            return False
        cached = self._shared.get(channel)
        if cached and time.monotonic() - cached[0] < CHANNEL_CACHE_S:
            return cached[1]
        # A burst of commands in one channel asks Slack once (this runs before the ack).
        pending = self._asking.get(channel)
        if pending is None:
            pending = self._asking[channel] = asyncio.ensure_future(self._ask_shared(channel))
            pending.add_done_callback(lambda _: self._asking.pop(channel, None))
        return await asyncio.shield(pending)

    async def _ask_shared(self, channel: str) -> bool:
        try:
            result = await self._slack.conversations_info(channel=channel)
            info = result.get("channel") or {}
            shared = bool(info.get("is_ext_shared") or info.get("is_pending_ext_shared"))
        except SlackApiError as exc:
            log.warning("conversations.info %s failed: %s", channel[:20], exc.response.get("error"))
            return True
        except Exception as exc:  # noqa: BLE001 - network errors of the Slack client: fail closed too
            log.warning("conversations.info %s failed: %s", channel[:20], type(exc).__name__)
            return True
        self._shared[channel] = (time.monotonic(), shared)
        return shared

    async def may_see(self, user_id: str, app: str) -> bool:
        """Whether `user_id` may see `app` on pgconn's Home tab: its admins (is_admin), and the
        members of the channel its alerts go to (bot.apps; they see its alerts there anyway).
        Members are read with conversations.members, cached like user groups; an unreadable
        channel shows nothing to non-admins (fail closed)."""
        if not user_id:
            return False
        if await self.is_admin(user_id, app):
            return True
        channel = self._apps.for_app(app).channel
        return bool(channel) and user_id in await self._channel_members(str(channel))

    async def _channel_members(self, channel: str) -> frozenset[str]:
        cached = self._members.get(f"channel:{channel}")
        if cached and time.monotonic() - cached[0] < self._cache_s:
            return cached[1]
        members: set[str] = set()
        cursor = ""
        try:
            for _ in range(50):  # 50 pages of 1000: larger channels are not read further
                result = await self._slack.conversations_members(
                    channel=channel, limit=1000, cursor=cursor or None
                )
                members.update(str(u) for u in result.get("members") or [])
                cursor = str((result.get("response_metadata") or {}).get("next_cursor") or "")
                if not cursor:
                    break
        except SlackApiError as exc:
            log.warning("conversations.members %s failed: %s", channel[:20], exc.response.get("error"))
            return frozenset()
        except Exception as exc:  # noqa: BLE001 - network errors of the Slack client: fail closed too
            log.warning("conversations.members %s failed: %s", channel[:20], type(exc).__name__)
            return frozenset()
        found = frozenset(members)
        self._members[f"channel:{channel}"] = (time.monotonic(), found)
        return found

    async def private_for(self, user_id: str, what: str, app: str) -> bool:
        """Whether the answer to `what` about `app` must be shown to `user_id` alone."""
        return what in PRIVATE_UNLESS_ADMIN and not await self.is_admin(user_id, app)


def who_may(what: str) -> str:
    """Who may run `what`, for refusals (the same words whoever was refused: an admin of another
    app is told exactly what a stranger is)."""
    rule = RULES.get(what)
    if rule == "team":
        return "pgconn admins, or people in the app's alert channel,"
    return "pgconn admins" if rule == "admin" else "anyone"



# --- where a request comes from ----------------------------------------------------------------


def foreign(
    *,
    home_team: str | None,
    home_enterprise: str | None,
    teams: tuple[str | None, ...],
    enterprises: tuple[str | None, ...],
    ext_shared: bool,
    allowed: frozenset[str],
    allow_shared: bool,
) -> str | None:
    """Why a request comes from outside pgconn's own workspace, or None when it does not.

    `teams` / `enterprises` are what the request names: the workspace it came through and the
    acting user's own (Bolt's team_id / actor_team_id). Each must be the workspace pgconn is
    installed in (auth.test) or listed in PGCONN_ALLOWED_TEAMS. Reports carry role names,
    client addresses and query text: in a Slack Connect channel they would reach another
    organisation, so an externally shared channel is refused unless PGCONN_ALLOW_SHARED_CHANNELS.
    """
    for team in teams:
        if team and team != home_team and team not in allowed:
            return f"team {team}"
    for enterprise in enterprises:
        if enterprise and enterprise != home_enterprise and enterprise not in allowed:
            return f"organisation {enterprise}"
    if ext_shared and not allow_shared:
        return "an externally shared channel"
    return None


def may_answer_message(
    event: Mapping[str, object], *, own_bot_id: str | None, own_user_id: str | None, bots: frozenset[str]
) -> bool:
    """Whether a message may make pgconn post a report in its thread (bot.alerts.answer_mention).

    Never its own messages; another bot's only when its bot id (B…) or app id (A…) is in
    PGCONN_ALERT_BOTS. pgconn's own reports say "Connections: 19/20", which its detector
    takes for an alert: two pgconn deployments, or any bot that echoes messages, in one
    channel would otherwise answer each other for as long as connections stay high.
    """
    bot_id, user = event.get("bot_id"), event.get("user")
    if (own_bot_id and bot_id == own_bot_id) or (own_user_id and user == own_user_id):
        return False
    profile = event.get("bot_profile")
    app_id = event.get("app_id") or (profile.get("app_id") if isinstance(profile, dict) else None)
    if bot_id or event.get("subtype") == "bot_message":
        return bool({str(bot_id or ""), str(app_id or "")} & bots)
    return True
