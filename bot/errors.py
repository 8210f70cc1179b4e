"""Every error pgconn raises on purpose, in one place.

Low-level failures (httpx, psycopg, redis) are mapped to these at a single
boundary each; handlers turn each class into one sentence for Slack. Messages
never contain secrets: no API keys, no database URLs.
"""

from __future__ import annotations


class PgconnError(Exception):
    """Base class: something a person on call needs to be told about."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(PgconnError):
    """A required environment variable is missing or malformed at start-up."""


class HerokuError(PgconnError):
    """Base for Heroku Platform / Postgres API failures."""


class HerokuAuthError(HerokuError):
    """401: the Heroku API key is missing, wrong or revoked."""


class HerokuForbidden(HerokuError):
    """403: the key works but may not touch this app or add-on."""


class HerokuNotFound(HerokuError):
    """404: the app, add-on or resource does not exist (or is invisible to this key)."""


class HerokuRateLimited(HerokuError):
    """429 that persisted after honouring Retry-After."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class HerokuUnavailable(HerokuError):
    """5xx after retries, a timeout, a connection failure or a malformed response."""


class HerokuRejected(HerokuError):
    """Another 4xx: Heroku refused the request as made (the message says why)."""


class NoDatabase(PgconnError):
    """The app has no heroku-postgresql add-on attached."""


class DatabaseError(PgconnError):
    """Base for failures talking to the app's Postgres."""


class DatabaseFull(DatabaseError):
    """The role (or the server) has no connection slot left for pgconn."""


class DatabaseUnreachable(DatabaseError):
    """The database could not be reached or answered in time."""


class StateUnavailable(PgconnError):
    """Redis is unreachable: exactly-once and incident state cannot be guaranteed."""


class AlreadyDone(PgconnError):
    """This click was already executed (by this or another bot process)."""


class ActionBusy(PgconnError):
    """Another destructive action is running on the same app."""


class MalformedFrame(PgconnError):
    """A log-drain body does not follow logplex octet-counted framing."""
