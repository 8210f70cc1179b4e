"""`/pgconn APP watch|unwatch`: pgconn's own log drain on the app, added or removed once."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from bot.errors import ConfigError
from bot.heroku import HerokuClient

DRAIN_PATH = "/drains/heroku/{app}"


def drain_url(public_url: str, app: str, token: str) -> str:
    """https://x:TOKEN@host/drains/heroku/APP — logplex sends the password as Basic auth."""
    parts = urlsplit(public_url)
    netloc = f"x:{token}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/") + DRAIN_PATH.format(app=app), "", ""))


def _ours(url: str, public_url: str, app: str) -> bool:
    target = urlsplit(public_url)
    parts = urlsplit(url)
    return parts.hostname == target.hostname and parts.path.rstrip("/").endswith(DRAIN_PATH.format(app=app))


def _require(public_url: str | None, token: str | None) -> tuple[str, str]:
    if not public_url:
        raise ConfigError("PGCONN_PUBLIC_URL is not set, so pgconn cannot tell Heroku where to send logs")
    if not token:
        raise ConfigError("PGCONN_DRAIN_TOKEN is not set, so the drain route would accept nothing")
    return public_url, token


async def watch(heroku: HerokuClient, app: str, public_url: str | None, token: str | None) -> str:
    public_url, token = _require(public_url, token)
    for drain in await heroku.log_drains(app):
        if _ours(str(drain.get("url", "")), public_url, app):
            return f"pgconn already receives `{app}`'s logs; nothing changed."
    await heroku.add_log_drain(app, drain_url(public_url, app, token))
    return (
        f"pgconn now receives `{app}`'s logs and will open an alert thread when its database runs out "
        "of connections."
    )


async def unwatch(heroku: HerokuClient, app: str, public_url: str | None) -> str:
    if not public_url:
        raise ConfigError("PGCONN_PUBLIC_URL is not set, so pgconn cannot tell which drain is its own")
    removed = 0
    for drain in await heroku.log_drains(app):
        if _ours(str(drain.get("url", "")), public_url, app):
            await heroku.remove_log_drain(app, str(drain.get("id")))
            removed += 1
    if not removed:
        return f"pgconn had no log drain on `{app}`; nothing changed."
    return f"Removed pgconn's log drain from `{app}`: no more automatic alerts for it."
