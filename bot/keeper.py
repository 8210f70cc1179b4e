"""Keeps pgconn's reserved connection open on every watched database.

Opened while the role has room and re-opened when lost (database restart, kill all by
someone else), so holders stay readable and terminations work at the limit.
"""

from __future__ import annotations

import asyncio
import logging

from bot.errors import PgconnError
from bot.services import Services

log = logging.getLogger(__name__)


async def keep_reserved_once(services: Services) -> dict[str, bool]:
    """One pass over every app; returns app → holds a reserved connection now."""
    held: dict[str, bool] = {}
    for app in services.settings.apps:
        try:
            dsn = await services.database_url(app)
            held[app] = await services.inspector.ensure_reserved(dsn) if dsn else False
        except PgconnError as exc:
            log.info("reserved connection for %s not open: %s", app, exc.message)
            held[app] = False
    return held


async def keep_reserved(services: Services) -> None:
    interval = services.settings.reserve_interval_s
    while True:
        await keep_reserved_once(services)
        await asyncio.sleep(interval)
