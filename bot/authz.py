"""Who may make pgconn do what: the one place that decides.

`RULES` names every slash verb and every button, and who may run it:

- "member": anyone in pgconn's own workspace who can use the command in the channel (guests
  included: Slack lets a guest use slash commands in the channels they are in). Reads only.
- "admin": the users in PGCONN_ADMINS, or members of its user groups (read with
  usergroups.users.list, cached for a minute, fail closed).

Anything not in the table is refused. `diagnose` shows query text, which may carry data: its
answer goes only to the person who asked unless an admin asks (`private_for`). Requests from
another workspace or an externally shared channel never reach this table: `foreign()` refuses
them first (handlers check it on every request).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Literal

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.render import actions as ids

log = logging.getLogger(__name__)

GROUP_CACHE_S = 60.0

Who = Literal["member", "admin"]

RULES: Mapping[str, Who] = {
    "help": "member",
    "report": "member",
    "budget": "member",
    "audit": "member",
    "diagnose": "member",
    # Removing the drain silences the alerts; adding it sends the app's logs to pgconn.
    "watch": "admin",
    "unwatch": "admin",
    ids.KILL_IDLE: "admin",
    ids.KILLALL: "admin",
    ids.RESTART: "admin",
    ids.ADD_PGBOUNCER: "admin",
}
# Answered only to the person who asked, unless an admin asks.
PRIVATE_UNLESS_ADMIN = frozenset({"diagnose"})


class Authoriser:
    def __init__(
        self,
        slack: AsyncWebClient,
        *,
        users: frozenset[str],
        groups: frozenset[str],
        cache_s: float = GROUP_CACHE_S,
    ) -> None:
        self._slack = slack
        self._users = users
        self._groups = groups
        self._cache_s = cache_s
        self._members: dict[str, tuple[float, frozenset[str]]] = {}

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

    async def is_admin(self, user_id: str) -> bool:
        if not user_id:
            return False
        if user_id in self._users:
            return True
        for group in sorted(self._groups):
            if user_id in await self._group_members(group):
                return True
        return False

    async def may(self, user_id: str, what: str) -> bool:
        """Whether `user_id` may run `what` (a slash verb or a button's action id)."""
        rule = RULES.get(what)
        if rule is None or not user_id:
            return False
        return rule == "member" or await self.is_admin(user_id)

    async def private_for(self, user_id: str, what: str) -> bool:
        """Whether the answer to `what` must be shown to `user_id` alone."""
        return what in PRIVATE_UNLESS_ADMIN and not await self.is_admin(user_id)


def who_may(what: str) -> str:
    """"pgconn admins" or "anyone", for refusals and the README."""
    return "pgconn admins" if RULES.get(what) == "admin" else "anyone"

