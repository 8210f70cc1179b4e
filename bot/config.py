"""Settings from the environment (12-factor). Names are public: see DESIGN.md.

`SETTINGS` below is the one declarative list of every variable pgconn reads: how each is parsed,
its default, and what it means. `Settings.from_env` parses through it, and the README's
configuration table and app.json's `env` are rendered from it (`scripts/settings` writes them;
tests/bot/test_settings_registry.py fails when they disagree). A new variable is one `Setting`
entry plus, when it fills a field of its own, that `Settings` field.

`Settings.from_env` validates everything at start-up and raises `ConfigError` naming the first
bad variable, so the process never starts half-configured.

Over 500 lines on purpose: `SETTINGS` is a table of about 300 lines of data, and it stays in
one place with the parsers it names and the `Settings` fields it fills, so that adding a
variable is one visit here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from bot.apps import AppDirectory, AppEntry, parse_entries
from bot.diagnosis import DEFAULT_THRESHOLDS, Band, DiagnosisThresholds
from bot.drain_auth import MIN_MASTER_CHARS
from bot.errors import ConfigError

_APP_NAME = re.compile(r"^[a-z][a-z0-9-]{1,29}$")
_SLACK_ID = re.compile(r"^[USW][A-Z0-9]{2,}$")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")


@dataclass(frozen=True)
class Settings:
    # Secrets are left out of repr(): a Settings in a traceback, a log line or a debugger
    # must not print them.
    slack_bot_token: str = field(repr=False)
    slack_signing_secret: str = field(repr=False)
    heroku_api_key: str = field(repr=False)
    apps: tuple[str, ...]
    slack_app_token: str | None = field(default=None, repr=False)
    slack_api_url: str = "https://slack.com/api/"
    alert_channel: str | None = None
    admin_users: frozenset[str] = frozenset()
    admin_groups: frozenset[str] = frozenset()
    drain_token: str | None = field(default=None, repr=False)
    public_url: str | None = None
    heroku_api_url: str = "https://api.heroku.com"
    heroku_data_api_url: str = "https://api.data.heroku.com"
    redis_url: str | None = field(default=None, repr=False)  # may carry Redis's password
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
    # SIGTERM → at most this long to finish what is in flight (Heroku sends SIGKILL after 30 s).
    shutdown_grace_s: float = 20.0
    reserve_interval_s: float = 30.0
    # Verification of fixes (bot.verification) and forecasts of a rising trend (bot.forecast).
    verify_after_s: float = 60.0
    verify_poll_s: float = 60.0
    verify_release_wait_s: float = 86400.0
    forecast_interval_s: float = 15.0
    forecast_window_s: float = 300.0
    forecast_horizon_s: float = 1800.0
    log_level: str = "INFO"
    # The most Redis connections this process opens (its pool's size): see PGCONN_REDIS_MAX_CONNECTIONS.
    redis_max_connections: int = 8
    # Who else may talk to pgconn (bot.authz): other bots whose alerts it answers, other
    # workspaces / organisations, externally shared channels.
    alert_bots: frozenset[str] = frozenset()
    allowed_teams: frozenset[str] = frozenset()
    allow_shared_channels: bool = False
    # Throttling (bot.throttle): per user and per app per minute, work in flight, and the
    # Heroku rate-limit tokens kept for remediation.
    user_rate: int = 20
    app_rate: int = 12
    max_in_flight: int = 50
    heroku_reserve: int = 500
    # When each diagnosis check turns yellow / red (PGCONN_DIAG_*; connection count from the
    # alert shares).
    diagnosis_thresholds: DiagnosisThresholds = DEFAULT_THRESHOLDS
    # PagerDuty Events API v2 (bot.pagerduty): where events go, and the first retry's delay.
    pagerduty_url: str = "https://events.pagerduty.com"
    pagerduty_retry_s: float = 30.0
    # Each app's own channel / admins / PagerDuty escalation (PGCONN_APP_ROUTES, bot.apps), as
    # written; `directory` merges them with the defaults above.
    app_routes: tuple[tuple[str, AppEntry], ...] = ()

    @cached_property
    def directory(self) -> AppDirectory:
        """Every app's channel and admins (bot.apps): what alerts, warnings and rights go by."""
        return AppDirectory(
            dict(self.app_routes),
            default_channel=self.alert_channel,
            default_admins=sorted(self.admin_users | self.admin_groups),
        )

    @property
    def http_mode(self) -> bool:
        return self.slack_app_token is None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            raw = env.get(setting.env, "").strip() or None
            if raw is None and setting.required:
                raise ConfigError(f"{setting.env} is not set ({setting.why_required})")
            values[setting.env] = setting.parse(setting.env, raw if raw is not None else setting.default)

        # Rules across variables.
        if values["SLACK_APP_TOKEN"] is None and not values["SLACK_SIGNING_SECRET"]:
            raise ConfigError("SLACK_SIGNING_SECRET is not set (required in HTTP mode)")
        warn_share = values["PGCONN_ALERT_WARN"]
        critical_share = values["PGCONN_ALERT_CRITICAL"]
        admins: tuple[str, ...] = values["PGCONN_ADMINS"]
        routes = parse_entries(values["PGCONN_APP_ROUTES"], apps=values["PGCONN_APPS"])
        fields = {s.field: values[s.env] for s in SETTINGS if s.field is not None}
        return cls(
            **fields,
            app_routes=tuple(routes.items()),
            slack_signing_secret=values["SLACK_SIGNING_SECRET"] or "",
            admin_users=frozenset(a for a in admins if a[0] in "UW"),
            admin_groups=frozenset(a for a in admins if a[0] == "S"),
            diagnosis_thresholds=DiagnosisThresholds(
                connections=Band(warn_share, max(warn_share, critical_share)),
                long_query_s=values["PGCONN_DIAG_LONG_QUERY_S"],
                long_transaction_s=values["PGCONN_DIAG_LONG_TX_S"],
                idle_in_transaction_s=values["PGCONN_DIAG_IDLE_IN_TX_S"],
                blocked_s=values["PGCONN_DIAG_BLOCKED_S"],
                leak_factor=values["PGCONN_DIAG_LEAK_FACTOR"],
            ),
        )


# --- parsers: (variable name, raw value or the setting's default, None when neither) -> value ---

Parse = Callable[[str, str | None], Any]


def _text(name: str, raw: str | None) -> str | None:
    return raw


def _token(prefix: str, kind: str) -> Parse:
    def parse(name: str, raw: str | None) -> str | None:
        if raw is not None and not raw.startswith(prefix):
            raise ConfigError(f"{name} must be {kind} starting with {prefix}")
        return raw

    return parse


def _url(strip_slash: bool) -> Parse:
    def parse(name: str, raw: str | None) -> str | None:
        if raw is None:
            return None
        if not re.match(r"^https?://[^\s/]+", raw):
            raise ConfigError(f"{name} must be an http(s) URL, got {raw[:40]!r}")
        return raw.rstrip("/") if strip_slash else raw

    return parse


def _number(lo: float, hi: float) -> Parse:
    def parse(name: str, raw: str | None) -> float | None:
        if raw is None:
            return None
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw[:20]!r}") from None
        if not lo <= value <= hi:
            raise ConfigError(f"{name} must be between {lo:g} and {hi:g}, got {raw}")
        return value

    return parse


def _integer(lo: float, hi: float) -> Parse:
    number = _number(lo, hi)

    def parse(name: str, raw: str | None) -> int | None:
        value = number(name, raw)
        return None if value is None else int(value)

    return parse


def _band(hi: float) -> Parse:
    """`YELLOW,RED` seconds, or one number for both (no yellow stage)."""

    def parse(name: str, raw: str | None) -> Band:
        assert raw is not None  # every band has a default
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

    return parse


def _apps(name: str, raw: str | None) -> tuple[str, ...]:
    apps = tuple(a.strip() for a in (raw or "").split(",") if a.strip())
    for app in apps:
        if not _APP_NAME.match(app):
            raise ConfigError(f"{name} contains {app[:40]!r}, which is not a Heroku app name")
    if not apps:
        raise ConfigError(f"{name} is empty")
    return apps


def _admins(name: str, raw: str | None) -> tuple[str, ...]:
    admins = tuple(a.strip() for a in (raw or "").split(",") if a.strip())
    for admin in admins:
        if not _SLACK_ID.match(admin):
            raise ConfigError(
                f"{name} contains {admin[:40]!r}: expected Slack user ids (U…/W…) or user-group ids (S…)"
            )
    return admins


def _ids(pattern: str, kind: str) -> Parse:
    """A comma-separated list of Slack ids matching `pattern`, as a frozenset."""
    regex = re.compile(pattern)

    def parse(name: str, raw: str | None) -> frozenset[str]:
        ids = frozenset(a.strip() for a in (raw or "").split(",") if a.strip())
        for one in ids:
            if not regex.match(one):
                raise ConfigError(f"{name} contains {one[:40]!r}: expected {kind}")
        return ids

    return parse


def _flag(name: str, raw: str | None) -> bool:
    value = (raw or "0").strip().lower()
    if value not in ("0", "1", "true", "false", "yes", "no"):
        raise ConfigError(f"{name} must be 1 or 0, got {value[:20]!r}")
    return value in ("1", "true", "yes")


def _channel(name: str, raw: str | None) -> str | None:
    if raw is not None and not _CHANNEL_ID.match(raw):
        raise ConfigError(f"{name} must be a channel id (C…), got {raw[:40]!r}")
    return raw


def _drain_master(name: str, raw: str | None) -> str | None:
    if raw is not None and len(raw) < MIN_MASTER_CHARS:
        raise ConfigError(
            f"{name} must be at least {MIN_MASTER_CHARS} characters (it has {len(raw)}): every app's drain "
            "password is derived from it; `openssl rand -hex 32` makes one"
        )
    return raw


def _public_url(name: str, raw: str | None) -> str | None:
    if raw is None:
        return None
    if not raw.startswith(("https://", "http://")):
        raise ConfigError(f"{name} must be an http(s) URL")
    # The drain URL built on it carries a drain password: plain http would send it, and the
    # logs, in clear text. Only loopback (the sandbox, local tests) never leaves the machine.
    if raw.startswith("http://") and urlsplit(raw).hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ConfigError(f"{name} must be an https:// URL: the drain URL built on it carries a password")
    return raw.rstrip("/")


def _port(name: str, raw: str | None) -> int:
    raw = raw or ""
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ConfigError(f"{name} must be a TCP port number, got {raw[:20]!r}")
    return int(raw)


def _level(name: str, raw: str | None) -> str:
    level = (raw or "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(f"{name} must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got {level[:20]!r}")
    return level


# --- the registry ---


@dataclass(frozen=True)
class Setting:
    """One environment variable: the single description parsing, README and app.json share."""

    env: str
    # The `Settings` field it fills; None when `from_env` combines it with others.
    field: str | None
    # README "meaning" column; app.json's description is the same text without Markdown.
    meaning: str
    parse: Parse
    # The raw value used when the variable is unset (shown as the default); None: no value.
    default: str | None = None
    # What unset means when there is no default value ("unset: HTTP mode"); README column.
    unset: str = ""
    # Start-up refuses to run without it (and app.json marks it required).
    required: bool = False
    why_required: str = ""
    # app.json `required` when that differs from start-up (the signing secret: HTTP mode, which
    # is how Heroku runs pgconn, needs it).
    deploy_required: bool | None = None
    # False for what the platform sets itself (PORT; REDIS_URL comes from the add-on).
    in_app_json: bool = True
    # app.json `generator` ("secret": Heroku makes a random value at deploy).
    generator: str | None = None

    @property
    def shown_default(self) -> str:
        return f"`{self.default}`" if self.default is not None else self.unset

    @property
    def app_json_required(self) -> bool:
        return self.required if self.deploy_required is None else self.deploy_required


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "SLACK_BOT_TOKEN",
        "slack_bot_token",
        "bot token (`xoxb-…`) from the Slack app's OAuth & Permissions page",
        _token("xoxb-", "a bot token"),
        unset="required",
        required=True,
        why_required="the bot token, xoxb-…",
    ),
    Setting(
        "SLACK_SIGNING_SECRET",
        None,
        "request signing secret, from the Slack app's Basic Information page",
        _text,
        unset="required in HTTP mode",
        deploy_required=True,
    ),
    Setting(
        "SLACK_APP_TOKEN",
        "slack_app_token",
        "app-level token (`xapp-…`): Slack traffic over Socket Mode",
        _token("xapp-", "an app-level token"),
        unset="unset: HTTP mode",
    ),
    Setting(
        "SLACK_API_URL",
        "slack_api_url",
        "base URL of the Slack Web API",
        _url(False),
        default="https://slack.com/api/",
    ),
    Setting(
        "PGCONN_APPS",
        "apps",
        "comma-separated Heroku app names pgconn may inspect and act on",
        _apps,
        unset="required",
        required=True,
        why_required="comma-separated Heroku app names pgconn may act on",
    ),
    Setting(
        "PGCONN_ADMINS",
        None,
        "comma-separated Slack user ids (`U…`) and user-group ids (`S…`) allowed to run actions on the "
        "apps that name no admins of their own in `PGCONN_APP_ROUTES`",
        _admins,
        unset="empty: nobody",
    ),
    Setting(
        "PGCONN_ALERT_CHANNEL",
        "alert_channel",
        "channel id (`C…`) where alert threads open, for the apps that name no channel of their own in "
        "`PGCONN_APP_ROUTES`",
        _channel,
        unset="required for alerts",
    ),
    Setting(
        "PGCONN_APP_ROUTES",
        None,
        "per app, what differs from the two defaults above: a JSON object of app name → `channel` "
        "(`C…`), `admins` (user and user-group ids), `pagerduty_routing_key` (Events API v2, secret) and "
        "`escalate_after` (`15m`); see *Per-app channels and admins*",
        _text,
        unset="every app uses the defaults",
    ),
    Setting(
        "PGCONN_DRAIN_TOKEN",
        "drain_token",
        "master secret of the log-drain route, at least 32 characters: each app's drain password is "
        "derived from it (HMAC) and rotated by `watch`; it never appears in a drain URL itself",
        _drain_master,
        unset="required for drains",
        generator="secret",
    ),
    Setting(
        "PGCONN_PUBLIC_URL",
        "public_url",
        "the bot's public base URL (`https://APP.herokuapp.com`), used by `watch`",
        _public_url,
        unset="required for `watch`",
    ),
    Setting(
        "HEROKU_API_KEY",
        "heroku_api_key",
        "Heroku API token (`heroku authorizations:create`) with access to the apps in `PGCONN_APPS`",
        _text,
        unset="required",
        required=True,
        why_required="a Heroku API token",
    ),
    Setting(
        "HEROKU_API_URL",
        "heroku_api_url",
        "Heroku Platform API base",
        _url(True),
        default="https://api.heroku.com",
    ),
    Setting(
        "HEROKU_DATA_API_URL",
        "heroku_data_api_url",
        "Heroku Postgres API base",
        _url(True),
        default="https://api.data.heroku.com",
    ),
    Setting(
        "REDIS_URL",
        "redis_url",
        "Redis (`rediss://` with Heroku's self-signed certificate is accepted); set by app.json's add-on",
        _text,
        unset="embedded Redis",
        in_app_json=False,
    ),
    Setting(
        "PGCONN_REDIS_MAX_CONNECTIONS",
        "redis_max_connections",
        "most Redis connections one pgconn process opens; requests beyond wait for a free one. "
        "Heroku Key-Value Store `mini` allows 20 clients: keep dynos × this under it",
        _integer(2, 1000),
        default="8",
    ),
    Setting("PORT", "port", "listen port (Heroku sets it)", _port, default="3000", in_app_json=False),
    Setting("HOST", "host", "listen address", _text, default="0.0.0.0", in_app_json=False),
    Setting(
        "PGCONN_KILL_IDLE_AFTER",
        "kill_idle_after_s",
        "seconds idle before **Kill idle** terminates a backend",
        _integer(0, 86400),
        default="60",
    ),
    Setting(
        "PGCONN_BUDGET_HEADROOM",
        "budget_headroom",
        "connections the formation does not show (pgconn's reserved one, `heroku run`, Heroku tools)",
        _integer(0, 100),
        default="3",
    ),
    Setting(
        "PGCONN_ALERT_WARN",
        "alert_warn_share",
        "share of the limit that makes a metric sample warn",
        _number(0.05, 1.0),
        default="0.80",
    ),
    Setting(
        "PGCONN_ALERT_CRITICAL",
        "alert_critical_share",
        "share of the limit that makes a metric sample critical",
        _number(0.05, 1.0),
        default="0.95",
    ),
    Setting(
        "PGCONN_RESOLVE_AFTER",
        "resolve_after_s",
        "seconds below the threshold before an incident is resolved",
        _integer(1, 86400),
        default="300",
    ),
    Setting(
        "PGCONN_ALERT_UPDATE_INTERVAL",
        "alert_update_s",
        "alert threads: least seconds between redraws of the parent (a severity change redraws at once)",
        _number(0.0, 3600),
        default="5",
    ),
    Setting(
        "PGCONN_ALERT_REPLY_INTERVAL",
        "alert_reply_s",
        "alert threads: least seconds between replies",
        _number(0.0, 86400),
        default="60",
    ),
    Setting(
        "PGCONN_ALERT_TICK",
        "alert_tick_s",
        "seconds between checks of open incidents (resolution, retries, the probe of Essential databases)",
        lambda name, raw: _number(0, 3600)(name, raw) or None,
        unset="a fifth of `PGCONN_RESOLVE_AFTER`, at most `15`",
    ),
    Setting(
        "PGCONN_RESERVE_INTERVAL",
        "reserve_interval_s",
        "seconds between checks of the reserved connections",
        _number(0.1, 3600),
        default="30",
    ),
    Setting(
        "PGCONN_VERIFY_AFTER",
        "verify_after_s",
        "seconds after a fix (after the release, for Add PgBouncer) before pgconn checks its effect and "
        "says in the thread whether it worked",
        _number(0.1, 86400),
        default="60",
    ),
    Setting(
        "PGCONN_VERIFY_POLL",
        "verify_poll_s",
        "after Add PgBouncer: seconds between looks at the app's releases when no `api:release` webhook "
        "came (not watched, or a delivery lost)",
        _number(0.1, 3600),
        default="60",
    ),
    Setting(
        "PGCONN_VERIFY_RELEASE_WAIT",
        "verify_release_wait_s",
        "after Add PgBouncer: seconds pgconn waits for the deploy that carries the buildpack before "
        "saying it was not deployed",
        _number(1, 30 * 86400),
        default="86400",
    ),
    Setting(
        "PGCONN_FORECAST_INTERVAL",
        "forecast_interval_s",
        "seconds between forecasts of each app's connections (and, on Essential plans, which send no "
        "metrics, between counts through the reserved connection); `0` turns forecasts off",
        _number(0, 3600),
        default="15",
    ),
    Setting(
        "PGCONN_FORECAST_WINDOW",
        "forecast_window_s",
        "seconds of samples a forecast fits its trend to",
        _number(1, 3600),
        default="300",
    ),
    Setting(
        "PGCONN_FORECAST_HORIZON",
        "forecast_horizon_s",
        "a rising trend is warned about when it reaches the limit within this many seconds",
        _number(1, 86400),
        default="1800",
    ),
    Setting(
        "PGCONN_RESTART_TIMEOUT",
        "restart_timeout_s",
        "how long (s) to follow dynos after a restart",
        _integer(1, 3600),
        default="300",
    ),
    Setting(
        "PGCONN_RESTART_POLL",
        "restart_poll_s",
        "how often (s) to look at dynos after a restart",
        _number(0.05, 60),
        default="2",
    ),
    Setting(
        "PGCONN_SHUTDOWN_GRACE",
        "shutdown_grace_s",
        "on SIGTERM, seconds to let running actions finish before recording them for the next process "
        "(Heroku sends SIGKILL 30 s after SIGTERM)",
        _number(0, 28),
        default="20",
    ),
    Setting(
        "PGCONN_HEROKU_TIMEOUT",
        "heroku_timeout",
        "per-request timeout (s) of Heroku API calls",
        _number(0.1, 120),
        default="10",
    ),
    Setting(
        "PGCONN_HEROKU_RETRIES",
        "heroku_retries",
        "retries of idempotent Heroku calls",
        _integer(0, 10),
        default="3",
    ),
    Setting(
        "PGCONN_DB_TIMEOUT_MS",
        "db_statement_timeout_ms",
        "statement timeout (ms) of pgconn's own queries",
        _integer(100, 60000),
        default="3000",
    ),
    Setting(
        "PGCONN_DIAG_LONG_QUERY_S",
        None,
        "diagnosis: seconds a query runs before it is yellow,red (one number: red from there)",
        _band(86400),
        default="30,300",
    ),
    Setting(
        "PGCONN_DIAG_LONG_TX_S",
        None,
        "diagnosis: seconds a transaction stays open before it is yellow,red",
        _band(86400),
        default="60,600",
    ),
    Setting(
        "PGCONN_DIAG_IDLE_IN_TX_S",
        None,
        "diagnosis: seconds idle in transaction before a connection is yellow,red",
        _band(86400),
        default="60,300",
    ),
    Setting(
        "PGCONN_DIAG_BLOCKED_S",
        None,
        "diagnosis: seconds a query waits for another session's lock before it is yellow,red",
        _band(86400),
        default="5,30",
    ),
    Setting(
        "PGCONN_DIAG_LEAK_FACTOR",
        None,
        "diagnosis: a dyno holding this many times what the budget expects of its process type "
        "(and 2 more) is red",
        _number(1.0, 100),
        default="2",
    ),
    Setting(
        "PGCONN_ALERT_BOTS",
        "alert_bots",
        "bot ids (`B…`) or app ids (`A…`) of alerting tools whose messages pgconn answers with a report "
        "in their thread; other bots' messages are ignored (two bots that answer each other would loop)",
        _ids(r"^[AB][A-Z0-9]{2,}$", "bot ids (B…) or app ids (A…)"),
        unset="empty: people only",
    ),
    Setting(
        "PGCONN_ALLOWED_TEAMS",
        "allowed_teams",
        "workspace (`T…`) or organisation (`E…`) ids, besides the one pgconn is installed in, whose "
        "users may use it; requests from any other are refused",
        _ids(r"^[TE][A-Z0-9]{2,}$", "workspace ids (T…) or organisation ids (E…)"),
        unset="empty: its own workspace only",
    ),
    Setting(
        "PGCONN_ALLOW_SHARED_CHANNELS",
        "allow_shared_channels",
        "`1`: answer in Slack Connect channels shared with other organisations (reports show role "
        "names, client addresses and query text to everyone in them)",
        _flag,
        default="0",
    ),
    Setting(
        "PGCONN_USER_RATE",
        "user_rate",
        "`/pgconn` commands one person may run per minute; more are refused with a sentence",
        _integer(1, 100000),
        default="20",
    ),
    Setting(
        "PGCONN_APP_RATE",
        "app_rate",
        "reports, budgets and diagnoses of one app per minute, from everyone together (each costs "
        "about 4 Heroku API calls)",
        _integer(1, 100000),
        default="12",
    ),
    Setting(
        "PGCONN_MAX_IN_FLIGHT",
        "max_in_flight",
        "commands one process works on at once; more are refused as busy (button clicks never are)",
        _integer(1, 100000),
        default="50",
    ),
    Setting(
        "PGCONN_HEROKU_RESERVE",
        "heroku_reserve",
        "Heroku API rate-limit tokens (of 4,500 per account) kept for fixes: below it, reports are "
        "refused and the buttons still work",
        _integer(0, 4500),
        default="500",
    ),
    Setting(
        "PGCONN_PAGERDUTY_URL",
        "pagerduty_url",
        "base URL of PagerDuty's Events API v2 (events go to `/v2/enqueue`; an EU account may use "
        "`https://events.eu.pagerduty.com`)",
        _url(True),
        default="https://events.pagerduty.com",
    ),
    Setting(
        "PGCONN_PAGERDUTY_RETRY",
        "pagerduty_retry_s",
        "seconds before the first retry of an event PagerDuty did not take (429, 5xx, no answer); each "
        "retry waits twice as long, at most 10 minutes",
        _number(0.05, 600),
        default="30",
    ),
    Setting(
        "PGCONN_LOG_LEVEL",
        "log_level",
        "log level (`DEBUG`, `INFO`, `WARNING`, `ERROR`)",
        _level,
        default="INFO",
    ),
)

def readme_table() -> str:
    """The README's configuration table, rendered from `SETTINGS`."""
    rows = ["| variable | meaning | default |", "|---|---|---|"]
    for s in SETTINGS:
        rows.append(f"| `{s.env}` | {s.meaning} | {s.shown_default} |")
    return "\n".join(rows) + "\n"


def _plain(markdown: str) -> str:
    return markdown.replace("`", "").replace("**", "")


def app_json_env() -> dict[str, dict[str, Any]]:
    """app.json's `env`, rendered from `SETTINGS` (no `value`s: an unset tunable keeps following
    pgconn's default instead of freezing today's in the app's config vars)."""
    env: dict[str, dict[str, Any]] = {}
    for s in SETTINGS:
        if not s.in_app_json:
            continue
        description = _plain(s.meaning)
        description = description[0].upper() + description[1:] + "."
        if s.default is not None:
            description += f" Default: {s.default}."
        elif not s.app_json_required and s.unset:
            description += f" Unset: {_plain(s.unset)}."
        entry: dict[str, Any] = {"description": description, "required": s.app_json_required}
        if s.generator is not None:
            entry["generator"] = s.generator
        env[s.env] = entry
    return env


SANDBOX_TRIGGER_VARS = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "HEROKU_API_KEY")


def wants_sandbox(env: Mapping[str, str]) -> bool:
    """No Slack and no Heroku credential at all: start the local sandbox instead."""
    return not any(env.get(name, "").strip() for name in SANDBOX_TRIGGER_VARS)
