"""What a person does in Slack beyond commands and message buttons, sent to the bot as
Slack sends it: opening the app's Home tab, clicking a button on it, and running a
message shortcut from a message's "More actions" menu.

- Opening the Home tab: the ``app_home_opened`` event (``user``, ``channel`` — the app's
  DM with the user —, ``tab`` "home" or "messages", and ``view``, the Home view last
  published for that user, when there is one).
  https://docs.slack.dev/reference/events/app_home_opened
- A button in a Home view: ``block_actions`` with ``container`` {type: "view", view_id}
  and the ``view``; no ``channel``, no ``response_url`` (a view is not a message).
- A message shortcut: ``message_action`` with ``callback_id``, ``trigger_id``,
  ``message_ts``, ``message``, ``channel``, ``user``, ``team``, ``response_url``
  (https://api.slack.com/reference/interaction-payloads/shortcuts; the field list of
  bolt-js's MessageShortcut type). Slack offers only the shortcuts the app's manifest
  declares, so the emulator reads them from manifest.yml and refuses any other.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx

from emulators.slack_blocks import find_button
from emulators.slack_state import Channel, SlackState

MANIFEST = Path(__file__).resolve().parent.parent / "manifest.yml"


def manifest_shortcuts(text: str | None = None) -> dict[str, dict[str, str]]:
    """callback_id → {name, type, description} of the shortcuts manifest.yml declares.

    A small reader of that one list (no YAML library is a dependency): items of
    `features.shortcuts`, each `- name:` followed by its `key: value` lines."""
    if text is None:
        if not MANIFEST.exists():  # an installed package without the repository's manifest
            return {}
        text = MANIFEST.read_text()
    out: dict[str, dict[str, str]] = {}
    inside = False
    item: dict[str, str] = {}
    for line in text.splitlines():
        if re.match(r"^\s{2}shortcuts:\s*$", line):
            inside = True
            continue
        if inside and re.match(r"^\s{0,3}\S", line):  # the next key of `features` or the top level
            break
        if not inside:
            continue
        m = re.match(r"^\s*(-\s+)?(\w+):\s*(.*?)\s*$", line)
        if not m:
            continue
        if m.group(1) and item:
            out[item.get("callback_id", "")] = item
            item = {}
        item[m.group(2)] = m.group(3).strip("\"'")
    if item:
        out[item.get("callback_id", "")] = item
    return {k: v for k, v in out.items() if k}


class SurfaceRequests(SlackState):
    """SlackEmulator's base: the Home tab and message shortcuts, signed and delivered."""

    if TYPE_CHECKING:  # SlackEmulator's own, which these requests use
        verification_token: str

        async def send_event(self, event: dict[str, Any]) -> httpx.Response: ...
        async def deliver(self, body: bytes, *, kind: str = "raw") -> httpx.Response: ...
        def new_response_url(self, *, channel: str | None = None, user: str | None = None) -> str: ...
        def _channel_for_request(self, channel_id: str) -> Channel: ...
        @staticmethod
        def _trigger_id() -> str: ...

    def home_view(self, user_id: str) -> dict[str, Any] | None:
        """The Home view last published for `user_id`, as Slack stores it."""
        with self.lock:
            view = self.home_views.get(user_id)
            return json.loads(json.dumps(view)) if view else None

    async def open_home(self, user_id: str, *, tab: str = "home") -> httpx.Response:
        """The user opens the app's Home tab (or its Messages tab)."""
        self.ensure_user(user_id)
        event: dict[str, Any] = {
            "type": "app_home_opened",
            "user": user_id,
            "channel": "D" + user_id[1:],
            "tab": tab,
            "event_ts": f"{time.time():.6f}",
        }
        view = self.home_view(user_id)
        if view is not None:
            view.pop("published_at", None)
            event["view"] = view
        return await self.send_event(event)

    async def click_home(
        self, user_id: str, action_id: str, *, value: str | None = None
    ) -> httpx.Response:
        """Click a button of the Home view `user_id` sees; `value` (default: the button's own)
        may be given to tamper with it."""
        view = self.home_view(user_id)
        if view is None:
            raise ValueError(f"no Home view published for {user_id}")
        found = find_button(view["blocks"], action_id)
        if found is None:
            raise ValueError(f"the Home view of {user_id} has no element with action_id {action_id}")
        block_id, element = found
        view.pop("published_at", None)
        user = self.ensure_user(user_id)
        payload = {
            "type": "block_actions",
            "user": {"id": user.id, "username": user.name, "name": user.name, "team_id": self.team_id},
            "api_app_id": self.app_id,
            "token": self.verification_token,
            "container": {"type": "view", "view_id": view["id"]},
            "trigger_id": self._trigger_id(),
            "team": {"id": self.team_id, "domain": self.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "view": view,
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": block_id,
                    "text": element.get("text"),
                    "value": element.get("value", "") if value is None else value,
                    "type": element.get("type", "button"),
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return await self.deliver(body, kind="block_actions")

    async def message_shortcut(
        self,
        callback_id: str,
        *,
        user_id: str,
        channel_id: str,
        message_ts: str,
        team_id: str | None = None,
    ) -> httpx.Response:
        """Run a message shortcut on a stored message, as `user_id` (from `team_id`, default
        this workspace)."""
        declared = manifest_shortcuts()
        if declared and callback_id not in declared:
            raise ValueError(f"manifest.yml declares no shortcut {callback_id!r}: Slack would not offer it")
        user = self.ensure_user(user_id)
        channel = self._channel_for_request(channel_id)
        message = self.find(channel_id, message_ts)
        if message is None:
            raise ValueError(f"no message {message_ts} in {channel_id}")
        team = team_id or self.team_id
        payload = {
            "type": "message_action",
            "token": self.verification_token,
            "action_ts": f"{time.time():.6f}",
            "team": {"id": team, "domain": self.team_domain},
            "user": {"id": user.id, "username": user.name, "name": user.name, "team_id": team},
            "channel": {"id": channel.id, "name": channel.name},
            "is_enterprise_install": False,
            "enterprise": None,
            "callback_id": callback_id,
            "trigger_id": self._trigger_id(),
            "response_url": self.new_response_url(channel=channel_id, user=user_id),
            "message_ts": message.ts,
            "message": self.message_json(message),
        }
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return await self.deliver(body, kind="message_action")
