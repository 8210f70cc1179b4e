"""The signing secret of pgconn's Heroku webhook subscription, one per app.

`pgconn:webhook-secret:{app}` holds it, so whichever bot process receives a delivery
can verify it, whichever process subscribed. Without Redis there is nowhere to share
it, so pgconn does not subscribe at all (a webhook nobody can verify is worse than none).
"""

from __future__ import annotations

import logging
import secrets

from redis.exceptions import RedisError

from bot.errors import StateUnavailable
from bot.state import Redis

log = logging.getLogger(__name__)


def secret_key(app: str) -> str:
    return f"pgconn:webhook-secret:{app}"


def new_secret() -> str:
    return secrets.token_hex(32)


def _unreachable(exc: BaseException) -> StateUnavailable:
    log.warning("redis unavailable: %s", type(exc).__name__)
    return StateUnavailable(
        "pgconn's state store (Redis) is unreachable, so the webhook secret every pgconn process "
        "checks cannot be read or kept"
    )


class WebhookSecrets:
    def __init__(self, redis: Redis | None) -> None:
        self._redis = redis

    def _r(self) -> Redis:
        if self._redis is None:
            raise StateUnavailable(
                "REDIS_URL is not set, so pgconn has no Redis to keep a webhook secret every pgconn "
                "process can check"
            )
        return self._redis

    async def get(self, app: str) -> str | None:
        """The app's secret, or None when pgconn never subscribed (or unsubscribed)."""
        redis = self._r()
        try:
            value = await redis.get(secret_key(app))
        except (RedisError, OSError) as exc:
            raise _unreachable(exc) from None
        return str(value) if value else None

    async def ensure(self, app: str) -> tuple[str, bool]:
        """The app's secret, made now if there is none: (secret, made_now).

        SET NX: two processes subscribing at once end up with the same secret, so
        whichever subscription Heroku keeps, every process verifies its deliveries.
        """
        redis = self._r()
        try:
            for _ in range(3):
                secret = new_secret()
                if await redis.set(secret_key(app), secret, nx=True):
                    return secret, True
                existing = await redis.get(secret_key(app))
                if existing:
                    return str(existing), False
        except (RedisError, OSError) as exc:
            raise _unreachable(exc) from None
        raise StateUnavailable("pgconn's state store (Redis) kept losing the webhook secret; try again")

    async def delete(self, app: str) -> None:
        redis = self._r()
        try:
            await redis.delete(secret_key(app))
        except (RedisError, OSError) as exc:
            raise _unreachable(exc) from None

    async def subscribed_many(self, apps: list[str]) -> dict[str, bool]:
        """Whether pgconn holds a webhook secret for each app (it subscribed with `watch`), in
        one round trip; the secrets themselves are not read."""
        if not apps:
            return {}
        redis = self._r()
        pipe = redis.pipeline(transaction=False)
        for app in apps:
            pipe.exists(secret_key(app))
        try:
            found = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise _unreachable(exc) from None
        return {app: bool(n) for app, n in zip(apps, found, strict=True)}
