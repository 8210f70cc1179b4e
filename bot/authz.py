"""Who may press destructive buttons: PGCONN_ADMINS users, or members of its user groups."""

from __future__ import annotations

import logging
import time

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

GROUP_CACHE_S = 60.0


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
