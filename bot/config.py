"""Settings from the environment (12-factor). Names are public: see DESIGN.md.

`Settings.from_env` validates everything at start-up and raises `ConfigError`
naming the first bad variable, so the process never starts half-configured.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.diagnosis import DEFAULT_THRESHOLDS, Band, Thresholds
from bot.errors import ConfigError

_APP_NAME = re.compile(r"^[a-z][a-z0-9-]{1,29}$")
_SLACK_ID = re.compile(r"^[USW][A-Z0-9]{2,}$")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")


@dataclass(frozen=True)
class Settings:
    slack_bot_token: str
    slack_signing_secret: str
    heroku_api_key: str
    apps: tuple[str, ...]
    slack_app_token: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    alert_channel: str | None = None
    admin_users: frozenset[str] = frozenset()
    admin_groups: frozenset[str] = frozenset()
    drain_token: str | None = None
    public_url: str | None = None
    heroku_api_url: str = "https://api.heroku.com"
    heroku_data_api_url: str = "https://api.data.heroku.com"
    redis_url: str | None = None
    host: str = "0.0.0.0"
    port: int = 3000
    # Tunables (not in the public contract, all optional).
    heroku_timeout: float = 10.0
    heroku_retries: int = 3
    db_statement_timeout_ms: int = 3000
    kill_idle_after_s: int = 60
    # Connections the formation does not show: pgconn's reserved one, `heroku run`
    # consoles, Heroku's own tooling (pg:info, backups).
    budget_headroom: int = 3
    alert_warn_share: float = 0.80
    alert_critical_share: float = 0.95
    resolve_after_s: int = 300
    # Alert threads: redraw the parent at most every update_s (severity changes at once),
    # reply in the thread at most every reply_s, periodic check every tick_s (None:
    # derived from resolve_after_s).
    alert_update_s: float = 5.0
    alert_reply_s: float = 60.0
    alert_tick_s: float | None = None
    restart_timeout_s: int = 300
    restart_poll_s: float = 2.0
    reserve_interval_s: float = 30.0
    log_level: str = "INFO"
    extra: Mapping[str, str] = field(default_factory=dict)
    # When each diagnosis check turns yellow / red (PGCONN_DIAG_*; connection count from the
    # alert shares).
    diagnosis_thresholds: Thresholds = DEFAULT_THRESHOLDS

    @property
    def http_mode(self) -> bool:
        return self.slack_app_token is None

    def is_watched(self, app: str) -> bool:
        return app in self.apps

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        def opt(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        def req(name: str, why: str) -> str:
            value = opt(name)
            if value is None:
                raise ConfigError(f"{name} is not set ({why})")
            return value

        def url(name: str, default: str) -> str:
            value = opt(name) or default
            if not re.match(r"^https?://[^\s/]+", value):
                raise ConfigError(f"{name} must be an http(s) URL, got {value[:40]!r}")
            return value

        def number(name: str, default: float, lo: float, hi: float) -> float:
            raw = opt(name)
            if raw is None:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise ConfigError(f"{name} must be a number, got {raw[:20]!r}") from None
            if not lo <= value <= hi:
                raise ConfigError(f"{name} must be between {lo:g} and {hi:g}, got {raw}")
            return value

        app_token = opt("SLACK_APP_TOKEN")
        if app_token is not None and not app_token.startswith("xapp-"):
            raise ConfigError("SLACK_APP_TOKEN must be an app-level token starting with xapp-")
        bot_token = req("SLACK_BOT_TOKEN", "the bot token, xoxb-…")
        if not bot_token.startswith("xoxb-"):
            raise ConfigError("SLACK_BOT_TOKEN must be a bot token starting with xoxb-")
        signing_secret = opt("SLACK_SIGNING_SECRET") or ""
        if app_token is None and not signing_secret:
            raise ConfigError("SLACK_SIGNING_SECRET is not set (required in HTTP mode)")

        apps_raw = req("PGCONN_APPS", "comma-separated Heroku app names pgconn may act on")
        apps = tuple(a.strip() for a in apps_raw.split(",") if a.strip())
        for app in apps:
            if not _APP_NAME.match(app):
                raise ConfigError(f"PGCONN_APPS contains {app[:40]!r}, which is not a Heroku app name")
        if not apps:
            raise ConfigError("PGCONN_APPS is empty")

        admins = [a.strip() for a in (opt("PGCONN_ADMINS") or "").split(",") if a.strip()]
        for admin in admins:
            if not _SLACK_ID.match(admin):
                raise ConfigError(
                    f"PGCONN_ADMINS contains {admin[:40]!r}: expected Slack user ids (U…/W…) "
                    "or user-group ids (S…)"
                )
        channel = opt("PGCONN_ALERT_CHANNEL")
        if channel is not None and not _CHANNEL_ID.match(channel):
            raise ConfigError(f"PGCONN_ALERT_CHANNEL must be a channel id (C…), got {channel[:40]!r}")
        public_url = opt("PGCONN_PUBLIC_URL")
        if public_url is not None and not public_url.startswith(("https://", "http://")):
            raise ConfigError("PGCONN_PUBLIC_URL must be an http(s) URL")

        port_raw = opt("PORT") or "3000"
        if not port_raw.isdigit() or not 0 < int(port_raw) < 65536:
            raise ConfigError(f"PORT must be a TCP port number, got {port_raw[:20]!r}")

        def band(name: str, default: Band, hi: float) -> Band:
            """`YELLOW,RED` seconds, or one number for both (no yellow stage)."""
            raw = opt(name)
            if raw is None:
                return default
            parts = [x.strip() for x in raw.split(",")]
            try:
                values = [float(x) for x in parts]
            except ValueError:
                raise ConfigError(
                    f"{name} must be seconds as YELLOW,RED (e.g. 60,300), got {raw[:20]!r}"
                ) from None
            if len(values) not in (1, 2) or not all(0 <= v <= hi for v in values) or values[0] > values[-1]:
                raise ConfigError(
                    f"{name} must be YELLOW,RED seconds with 0 ≤ YELLOW ≤ RED ≤ {hi:g}, got {raw[:20]!r}"
                )
            return Band(values[0], values[-1])

        warn_share = number("PGCONN_ALERT_WARN", 0.80, 0.05, 1.0)
        critical_share = number("PGCONN_ALERT_CRITICAL", 0.95, 0.05, 1.0)
        d = DEFAULT_THRESHOLDS
        diagnosis_thresholds = Thresholds(
            connections=Band(warn_share, max(warn_share, critical_share)),
            long_query_s=band("PGCONN_DIAG_LONG_QUERY_S", d.long_query_s, 86400),
            long_transaction_s=band("PGCONN_DIAG_LONG_TX_S", d.long_transaction_s, 86400),
            idle_in_transaction_s=band("PGCONN_DIAG_IDLE_IN_TX_S", d.idle_in_transaction_s, 86400),
            blocked_s=band("PGCONN_DIAG_BLOCKED_S", d.blocked_s, 86400),
            leak_factor=number("PGCONN_DIAG_LEAK_FACTOR", d.leak_factor, 1.0, 100),
        )

        return cls(
            slack_bot_token=bot_token,
            slack_signing_secret=signing_secret,
            slack_app_token=app_token,
            slack_api_url=url("SLACK_API_URL", "https://slack.com/api/"),
            heroku_api_key=req("HEROKU_API_KEY", "a Heroku API token"),
            heroku_api_url=url("HEROKU_API_URL", "https://api.heroku.com").rstrip("/"),
            heroku_data_api_url=url("HEROKU_DATA_API_URL", "https://api.data.heroku.com").rstrip("/"),
            apps=apps,
            alert_channel=channel,
            admin_users=frozenset(a for a in admins if a[0] in "UW"),
            admin_groups=frozenset(a for a in admins if a[0] == "S"),
            drain_token=opt("PGCONN_DRAIN_TOKEN"),
            public_url=public_url.rstrip("/") if public_url else None,
            redis_url=opt("REDIS_URL"),
            host=opt("HOST") or "0.0.0.0",
            port=int(port_raw),
            heroku_timeout=number("PGCONN_HEROKU_TIMEOUT", 10.0, 0.1, 120),
            heroku_retries=int(number("PGCONN_HEROKU_RETRIES", 3, 0, 10)),
            db_statement_timeout_ms=int(number("PGCONN_DB_TIMEOUT_MS", 3000, 100, 60000)),
            kill_idle_after_s=int(number("PGCONN_KILL_IDLE_AFTER", 60, 0, 86400)),
            budget_headroom=int(number("PGCONN_BUDGET_HEADROOM", 3, 0, 100)),
            alert_warn_share=warn_share,
            alert_critical_share=critical_share,
            resolve_after_s=int(number("PGCONN_RESOLVE_AFTER", 300, 1, 86400)),
            alert_update_s=number("PGCONN_ALERT_UPDATE_INTERVAL", 5.0, 0.0, 3600),
            alert_reply_s=number("PGCONN_ALERT_REPLY_INTERVAL", 60.0, 0.0, 86400),
            alert_tick_s=number("PGCONN_ALERT_TICK", 0, 0, 3600) or None,
            restart_timeout_s=int(number("PGCONN_RESTART_TIMEOUT", 300, 1, 3600)),
            restart_poll_s=number("PGCONN_RESTART_POLL", 2.0, 0.05, 60),
            reserve_interval_s=number("PGCONN_RESERVE_INTERVAL", 30.0, 0.1, 3600),
            log_level=(opt("PGCONN_LOG_LEVEL") or "INFO").upper(),
            diagnosis_thresholds=diagnosis_thresholds,
        )


SANDBOX_TRIGGER_VARS = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "HEROKU_API_KEY")


def wants_sandbox(env: Mapping[str, str]) -> bool:
    """No Slack and no Heroku credential at all: start the local sandbox instead."""
    return not any(env.get(name, "").strip() for name in SANDBOX_TRIGGER_VARS)
