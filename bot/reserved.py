"""The reserved connection: pgconn keeps one connection open on every watched database.

Opened while the role has room and re-opened when lost (database restart, kill all by
someone else), so holders stay readable and terminations work at the limit.
"""

from __future__ import annotations

import asyncio
import logging

from bot.dependencies import Services
from bot.errors import PgconnError

log = logging.getLogger(__name__)


async def keep_reserved_once(services: Services) -> dict[str, bool]:
    """One pass over every app; returns app → holds a reserved connection now."""
    held: dict[str, bool] = {}
    for app in services.settings.apps:
        # A live reserved connection proves the URL still works: no Heroku call needed. Only a
        # lost one is re-resolved, so an idle bot costs Heroku's rate limit next to nothing.
        known = services.last_database_url(app)
        if known and await _still_reserved(services, known):
            held[app] = True
            continue
        try:
            dsn = await services.database_url(app)
            held[app] = await services.inspector.ensure_reserved(dsn) if dsn else False
        except PgconnError as exc:
            log.info("reserved connection for %s not open: %s", app, exc.message)
            held[app] = False
    return held


async def _still_reserved(services: Services, dsn: str) -> bool:
    try:
        return services.inspector.has_reserved(dsn) and await services.inspector.ensure_reserved(dsn)
    except PgconnError:
        return False


async def keep_reserved(services: Services) -> None:
    interval = services.settings.reserve_interval_s
    while True:
        await keep_reserved_once(services)
        await asyncio.sleep(interval)
