"""Who owns each app: its alert channel, its admins, its PagerDuty escalation.

`PGCONN_APP_ROUTES` (bot.config) names, per app, what differs from the deployment's defaults:

    {"shop-api": {"channel": "C0SHOP", "admins": ["U0ALICE", "S0SHOPOPS"],
                  "pagerduty_routing_key": "…32 characters…", "escalate_after": "15m"},
     "billing":  {"channel": "C0BILLING", "admins": ["S0BILLING"]}}

An app that names no channel alerts in PGCONN_ALERT_CHANNEL; one that names no admins is run by
PGCONN_ADMINS. A named value replaces the default, it does not add to it: the admins of
`shop-api` are not admins of `billing` (and PGCONN_ADMINS are not admins of either), which is
what lets two teams share one pgconn.

Everything that sends something about an app somewhere, or asks who may act on it, asks
`AppDirectory.for_app(app)` (reached as `Services.apps`); nothing else reads
PGCONN_ALERT_CHANNEL / PGCONN_ADMINS. Pure: parsing and lookup, no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from bot.errors import ConfigError

SETTING = "PGCONN_APP_ROUTES"
_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,}$")
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_GROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")
# "The 32 character Integration Key for an integration on a service or on a global ruleset"
# (PagerDuty Events API v2, `routing_key`: developer.pagerduty.com/docs/events-api-v2/trigger-events).
_ROUTING_KEY = re.compile(r"^[A-Za-z0-9]{32}$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h)?$")
_UNITS = {"s": 1, "m": 60, "h": 3600, None: 1}
# A routing key named without an escalate_after escalates after this long unacknowledged.
DEFAULT_ESCALATE_AFTER_S = 15 * 60
MAX_ESCALATE_AFTER_S = 7 * 24 * 3600
KEYS = ("channel", "admins", "pagerduty_routing_key", "escalate_after")


@dataclass(frozen=True)
class AppRoute:
    """Where an app's alerts go and who may act on it: the app's entry merged with the defaults."""

    app: str
    # None: neither the app nor PGCONN_ALERT_CHANNEL names one (no alerts for the app).
    channel: str | None
    admins: frozenset[str]  # Slack user ids (U…/W…)
    admin_groups: frozenset[str]  # Slack user-group ids (S…), members read with usergroups.users.list
    # A secret: anyone holding it can open incidents on the team's PagerDuty service.
    pagerduty_routing_key: str | None = field(default=None, repr=False)
    # Seconds an incident may stay unacknowledged before it is escalated; None without a key.
    escalate_after_s: float | None = None
    # Whether channel / admins come from the app's own entry (False: the deployment's defaults).
    own_channel: bool = False
    own_admins: bool = False


@dataclass(frozen=True)
class AppEntry:
    """One app's entry in PGCONN_APP_ROUTES as written: None where it names nothing."""

    channel: str | None = None
    admins: tuple[str, ...] | None = None
    pagerduty_routing_key: str | None = field(default=None, repr=False)
    escalate_after_s: float | None = None


class AppDirectory:
    """Every app's route, with the defaults (PGCONN_ALERT_CHANNEL, PGCONN_ADMINS) for what an app
    does not name."""

    def __init__(
        self,
        entries: Mapping[str, AppEntry],
        *,
        default_channel: str | None,
        default_admins: Iterable[str] = (),
    ) -> None:
        self._entries = dict(entries)
        self._default_channel = default_channel
        self._default_admins = tuple(default_admins)
        self._routes: dict[str, AppRoute] = {}

    def for_app(self, app: str) -> AppRoute:
        """The app's route; an app with no entry (or not configured at all) gets the defaults."""
        route = self._routes.get(app)
        if route is None:
            route = self._routes[app] = self._resolve(app)
        return route

    def _resolve(self, app: str) -> AppRoute:
        entry = self._entries.get(app, AppEntry())
        admins = entry.admins if entry.admins is not None else self._default_admins
        key = entry.pagerduty_routing_key
        return AppRoute(
            app=app,
            channel=entry.channel or self._default_channel,
            admins=frozenset(a for a in admins if a[0] in "UW"),
            admin_groups=frozenset(a for a in admins if a[0] == "S"),
            pagerduty_routing_key=key,
            escalate_after_s=(entry.escalate_after_s or DEFAULT_ESCALATE_AFTER_S) if key else None,
            own_channel=entry.channel is not None,
            own_admins=entry.admins is not None,
        )

    def apps_in(self, channel: str, apps: Iterable[str]) -> tuple[str, ...]:
        """Those of `apps` whose alerts go to `channel`."""
        return tuple(a for a in apps if self.for_app(a).channel == channel)

    @property
    def secrets(self) -> tuple[str, ...]:
        """The routing keys, for the log scrubber (bot.logs)."""
        return tuple(e.pagerduty_routing_key for e in self._entries.values() if e.pagerduty_routing_key)

    def __repr__(self) -> str:
        return f"AppDirectory(apps={sorted(self._entries)!r}, default_channel={self._default_channel!r})"


# --- parsing PGCONN_APP_ROUTES -------------------------------------------------------------------


def parse_entries(raw: str | None, *, apps: Iterable[str], name: str = SETTING) -> dict[str, AppEntry]:
    """The JSON object of PGCONN_APP_ROUTES, validated. Raises ConfigError with one line naming the
    entry and what is wrong; never with a routing key's value in it."""
    if raw is None or not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        # The decoder's message names a position, never the text around it.
        raise ConfigError(f"{name} is not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f'{name} must be a JSON object of app name → settings, e.g. {{"my-app": {{"channel": "C…"}}}}'
        )
    known = set(apps)
    entries: dict[str, AppEntry] = {}
    for app, value in data.items():
        where = f"{name}: {app[:40]!r}"
        if app not in known:
            raise ConfigError(f"{where} is not in PGCONN_APPS")
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be an object with {', '.join(KEYS)}")
        entries[app] = _entry(where, value)
    return entries


def _entry(where: str, value: Mapping[str, object]) -> AppEntry:
    unknown = sorted(set(value) - set(KEYS))
    if unknown:
        raise ConfigError(f"{where} has an unknown key {unknown[0][:40]!r} (expected {', '.join(KEYS)})")
    channel = value.get("channel")
    if channel is not None and not (isinstance(channel, str) and _CHANNEL_ID.match(channel)):
        raise ConfigError(f"{where}: channel must be a channel id (C…), got {str(channel)[:40]!r}")
    admins = value.get("admins")
    if admins is not None:
        if isinstance(admins, str):
            admins = [a.strip() for a in admins.split(",") if a.strip()]
        if not isinstance(admins, list):
            raise ConfigError(
                f"{where}: admins must be a list of Slack user ids (U…/W…) and user-group ids (S…)"
            )
        for admin in admins:
            if not (isinstance(admin, str) and (_USER_ID.match(admin) or _GROUP_ID.match(admin))):
                raise ConfigError(
                    f"{where}: admins contains {str(admin)[:40]!r}: expected Slack user ids (U…/W…) or "
                    "user-group ids (S…)"
                )
    key = value.get("pagerduty_routing_key")
    if key is not None and not (isinstance(key, str) and _ROUTING_KEY.match(key)):
        # Never the value: it is a secret, and this line goes to the logs.
        length = len(key) if isinstance(key, str) else 0
        raise ConfigError(
            f"{where}: pagerduty_routing_key must be the 32-character integration key of a PagerDuty "
            f"Events API v2 integration (got {length} characters)"
        )
    escalate = value.get("escalate_after")
    escalate_s = None if escalate is None else _duration(where, escalate)
    if escalate_s is not None and key is None:
        raise ConfigError(f"{where}: escalate_after needs a pagerduty_routing_key to escalate to")
    return AppEntry(
        channel=channel,
        admins=tuple(admins) if admins is not None else None,
        pagerduty_routing_key=key,
        escalate_after_s=escalate_s,
    )


def _duration(where: str, value: object) -> float:
    """Seconds from 900, "900", "90s", "15m" or "1h"."""
    match = _DURATION.match(str(value).strip()) if isinstance(value, (int, float, str)) else None
    if match is None or isinstance(value, bool):
        raise ConfigError(
            f"{where}: escalate_after must be seconds or a duration like 15m, got {str(value)[:20]!r}"
        )
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not 0 < seconds <= MAX_ESCALATE_AFTER_S:
        raise ConfigError(
            f"{where}: escalate_after must be more than 0 and at most 7 days, got {str(value)[:20]!r}"
        )
    return seconds
