"""What pgconn reads about an app and its database: Heroku's records (attachments, pg:info,
process types, dynos) and what pg_stat_activity says (holders, backends, activity). Shared by the
Heroku client, the inspector, the budget and the renderers.

Plain frozen dataclasses: no I/O, no behaviour beyond small derived properties.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Database:
    """A heroku-postgresql add-on attached to an app."""

    addon_id: str
    addon_name: str
    plan: str  # e.g. "heroku-postgresql:essential-0"
    attachment_name: str  # e.g. "DATABASE"
    config_var: str  # e.g. "DATABASE_URL"


@dataclass(frozen=True)
class PgInfo:
    """What `heroku pg:info` shows, as returned by GET /client/v11/databases/{id}."""

    fields: tuple[tuple[str, str], ...]  # ordered (name, values joined by ", ")
    connections_used: int | None
    connections_limit: int | None
    plan: str | None

    def get(self, name: str) -> str | None:
        for key, value in self.fields:
            if key == name:
                return value
        return None


@dataclass(frozen=True)
class ProcessType:
    """One line of the app's formation (GET /apps/{app}/formation)."""

    type: str  # "web", "worker", ...
    quantity: int
    command: str
    size: str = "standard-1x"


@dataclass(frozen=True)
class Dyno:
    name: str  # "web.1"
    type: str
    state: str  # "up", "starting", "crashed", "down", "idle"


@dataclass(frozen=True)
class Release:
    """One release of an app: a deploy (a new slug) or a config change (the same slug)."""

    version: int
    slug_id: str | None
    description: str
    created_at: str  # Heroku's ISO timestamp


@dataclass(frozen=True)
class Build:
    """One build: the slug it made and the buildpacks it ran, in order."""

    id: str
    slug_id: str | None
    buildpacks: tuple[str, ...]
    status: str


@dataclass(frozen=True)
class HolderGroup:
    """Backends of one (application_name, user, client address) group."""

    application_name: str
    usename: str
    client_addr: str
    total: int
    active: int
    idle: int
    idle_in_transaction: int
    other: int
    oldest_idle_s: float | None  # seconds in state 'idle', the oldest of the group
    longest_idle_in_tx_s: float | None


@dataclass(frozen=True)
class Holders:
    """Who holds the connections, read from pg_stat_activity over the app's own role."""

    role: str
    role_limit: int | None  # rolconnlimit; None when -1 (unlimited)
    max_connections: int
    role_connections: int  # backends of the role, including pgconn's own
    server_connections: int  # all client backends on the server (what pg:info counts)
    groups: tuple[HolderGroup, ...]  # sorted by total, largest first
    state_counts: dict[str, int] = field(default_factory=dict)
    oldest_idle_s: float | None = None
    longest_idle_in_tx_s: float | None = None


@dataclass(frozen=True)
class HoldersUnavailable:
    """Why holders could not be read (shown instead of the table)."""

    reason: str
    role_full: bool


@dataclass(frozen=True)
class AppContext:
    """Everything the Platform API says about one app, fetched together."""

    app: str
    database: Database
    config_vars: dict[str, str]
    formation: tuple[ProcessType, ...]

    @property
    def database_url(self) -> str | None:
        return self.config_vars.get(self.database.config_var)


@dataclass(frozen=True)
class Backend:
    """One client backend the diagnosis looks at (pg_stat_activity, with pg_locks for waits).

    Ages are seconds before the moment the row was read; None when the server left the
    timestamp empty (no transaction open, or another role's backend it will not describe).
    """

    pid: int
    application_name: str
    usename: str
    client_addr: str
    state: str  # "active", "idle in transaction", … ("" when hidden from this role)
    query_age_s: float | None  # since query_start: how long the current/last query has run
    xact_age_s: float | None  # since xact_start
    state_age_s: float | None  # since state_change: e.g. how long it has sat idle in transaction
    blocked_by: tuple[int, ...]  # pg_blocking_pids, for backends waiting on a lock
    waiting_for: str | None  # the lock it waits for, e.g. "RowExclusiveLock on orders"
    query: str  # the start of the query text only: it may contain data

    @property
    def idle_in_transaction(self) -> bool:
        return self.state.startswith("idle in transaction")


@dataclass(frozen=True)
class Activity:
    """Holders and the backends worth a closer look, read in one round trip."""

    holders: Holders
    backends: tuple[Backend, ...]
