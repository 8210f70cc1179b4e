"""Forecasts, the I/O around bot.forecast.trend: sample, fit, warn once per rise.

Every PGCONN_FORECAST_INTERVAL seconds, for each app, one process (a lease in Redis):
- on Essential plans, which send no metrics, counts the role's connections over its reserved
  connection (never a connection of its own: it would take the slot it counts) and stores the
  count with the other samples (bot.state.metrics, the alert sparkline's store);
- on Standard and up, uses Heroku's `sample#active-connections` metrics the drain brings;
- fits the trend of the last PGCONN_FORECAST_WINDOW seconds and steps the app's forecast state
  (armed / warned, in Redis): a rise due to reach the limit within PGCONN_FORECAST_HORIZON gets
  one warning in the app's channel, with the rate and the time to the limit.

No warning while the app has an open incident whose connections have not come back below the
warning threshold: its alert thread already says more.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time

from slack_sdk.errors import SlackApiError

from bot.dependencies import Services
from bot.errors import PgconnError, StateUnavailable
from bot.forecast.trend import ForecastPolicy, Trend, fit, step
from bot.limits import fetch_limit
from bot.readings import Database
from bot.remediation.fixes import supports_server_pooling
from bot.render.forecast import warning_blocks, warning_text
from bot.state.forecast import ForecastStore
from bot.state.incidents import IncidentStore
from bot.state.metrics import MetricStore, Sample

log = logging.getLogger(__name__)

KNOW_FOR_S = 300.0  # an app's database and limit are read again after this long


class Forecaster:
    """One per process; the state is in Redis, this only caches what Heroku said."""

    def __init__(self, services: Services) -> None:
        assert services.redis is not None
        self.services = services
        s = services.settings
        self.policy = ForecastPolicy(window_s=s.forecast_window_s, horizon_s=s.forecast_horizon_s)
        self.store = ForecastStore(services.redis)
        self.metrics = MetricStore(services.redis)
        self.incidents = IncidentStore(services.redis)
        self.owner = secrets.token_hex(8)
        self._known: dict[str, tuple[float, Database, int | None]] = {}
        self._failed: dict[str, float] = {}

    async def _database(self, app: str) -> tuple[Database, int | None]:
        known = self._known.get(app)
        if known is not None and time.monotonic() - known[0] < KNOW_FOR_S:
            return known[1], known[2]
        failed = self._failed.get(app)
        if failed is not None and time.monotonic() - failed < KNOW_FOR_S:
            # Heroku could not say a moment ago: ask again later, not at every tick.
            raise PgconnError(f"{app}'s database could not be read lately")
        try:
            database = await self.services.heroku.database(app)
        except PgconnError:
            self._failed[app] = time.monotonic()
            raise
        limit = await fetch_limit(self.services.heroku, database)
        value = limit.value if limit is not None else None
        self._known[app] = (time.monotonic(), database, value)
        return database, value

    async def once(self, now: float | None = None) -> list[str]:
        """One pass over every app; the apps warned about."""
        warned = []
        for app in self.services.settings.apps:
            try:
                if await self.app(app, now if now is not None else time.time()):
                    warned.append(app)
            except PgconnError as exc:
                log.info("forecast for %s skipped: %s", app, exc.message)
        return warned

    async def app(self, app: str, now: float) -> bool:
        if not await self.store.lease(app, self.owner, self.services.settings.forecast_interval_s * 0.8):
            return False
        database, limit = await self._database(app)
        db = database.addon_name
        # Essential plans have neither Heroku's metrics nor server-side pooling (the same tiers:
        # ../shared/contracts/README.md): pgconn counts for itself.
        if not supports_server_pooling(database.plan):
            dsn = self.services.last_database_url(app)
            count = await self.services.inspector.count_reserved(dsn) if dsn else None
            if count is not None:
                await self.metrics.add({(app, db): [Sample(now, count)]}, now)
        samples = await self.metrics.recent(app, db, now)
        trend = fit([(s.at, s.active) for s in samples], limit, self.policy)
        incident = await self.incidents.load(app, db)
        if incident is not None and incident.status == "open" and incident.ok_since is None:
            return False  # the alert thread is saying it already, until the count comes back down
        state = await self.store.load(app, db)
        state, warn = step(state, trend, limit, now, self.policy)
        await self.store.save(app, db, state, trend, limit)
        if warn:
            log.info("forecast for %s: %s", app, warning_text(app, trend, limit))
            await self._warn(app, trend, limit)
        return warn

    async def _warn(self, app: str, trend: Trend, limit: int | None) -> None:
        channel = self.services.apps.for_app(app).channel
        if not channel:
            log.warning("forecast for %s: no channel to warn in", app)
            return
        try:
            await self.services.slack.chat_postMessage(
                channel=channel,
                text=warning_text(app, trend, limit),
                blocks=warning_blocks(app, trend, limit, self.policy.window_s),
            )
        except SlackApiError as exc:
            log.warning("forecast warning for %s not posted: %s", app, exc.response.get("error"))


async def keep_forecasting(services: Services) -> None:
    """Lasting task: a forecast pass every PGCONN_FORECAST_INTERVAL seconds (0: off)."""
    interval = services.settings.forecast_interval_s
    if not interval or services.redis is None:
        return
    forecaster = Forecaster(services)
    while not services.stopping:
        try:
            await forecaster.once()
        except StateUnavailable as exc:
            log.warning("forecasts delayed: %s", exc.message)
        except Exception:  # noqa: BLE001 - the loop must outlive any one pass
            log.exception("forecasting failed")
        await asyncio.sleep(interval)
