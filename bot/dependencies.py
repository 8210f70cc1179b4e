"""The one object holding every dependency, built once at start-up and passed in.

Tests build the same object pointed at the emulators and real local servers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.alerts import AlertEngine
from bot.alerts.escalation import Escalator
from bot.apps import AppDirectory
from bot.authz import Authoriser
from bot.config import Settings
from bot.heroku import HerokuClient
from bot.postgres import PostgresInspector
from bot.postmortem.writer import write_postmortem
from bot.prevention.watcher import BudgetWatcher
from bot.report import AppContextLoader
from bot.state import Redis, connect_redis
from bot.state.drains import DrainNonces
from bot.state.home import ReadingStore
from bot.state.incidents import Incident, IncidentStore
from bot.state.inflight import InFlightStore
from bot.state.metrics import MetricStore
from bot.state.pagerduty import PagerDutyOutbox
from bot.state.postmortems import PostmortemStore
from bot.state.prevention import BudgetWatchStore
from bot.state.remediation import ActionLedger, AuditLog
from bot.state.verification import VerificationStore
from bot.state.webhooks import WebhookSecrets
from bot.throttle import HerokuBudget, Throttle

log = logging.getLogger(__name__)

DSN_CACHE_S = 60.0
# Longest a Heroku request waits for a free connection of the client's pool.
POOL_WAIT_S = 60.0


@dataclass
class Services:
    settings: Settings
    http: httpx.AsyncClient
    heroku: HerokuClient
    inspector: PostgresInspector
    slack: AsyncWebClient
    redis: Redis | None
    authoriser: Authoriser
    contexts: AppContextLoader
    ledger: ActionLedger
    audit: AuditLog
    alerts: AlertEngine
    webhook_secrets: WebhookSecrets
    budget_watch: BudgetWatcher
    drain_nonces: DrainNonces
    throttle: Throttle
    inflight: InFlightStore = field(default_factory=lambda: InFlightStore(None))
    # Fixes whose effect is still to be checked, and the verified effects (bot.verification).
    verifications: VerificationStore = field(default_factory=lambda: VerificationStore(None))
    # The Home tab: each app's last reading (bot.state.home), and incident permalinks (bot.home).
    home: ReadingStore = field(default_factory=lambda: ReadingStore(None))
    home_links: dict[str, str | None] = field(default_factory=dict)
    # SIGTERM: no new work is taken, running work gets the grace period (pgconn.asgi's lifespan).
    stopping: bool = False
    _dsn_cache: dict[str, tuple[float, str | None]] = field(default_factory=dict)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _pending: set[asyncio.Task[Any]] = field(default_factory=set)

    async def database_url(self, app: str) -> str | None:
        """The app's DATABASE_URL, cached briefly."""
        cached = self._dsn_cache.get(app)
        if cached and time.monotonic() - cached[0] < DSN_CACHE_S:
            return cached[1]
        database, config_vars = await asyncio.gather(self.heroku.database(app), self.heroku.config_vars(app))
        dsn = config_vars.get(database.config_var)
        self._dsn_cache[app] = (time.monotonic(), dsn)
        return dsn

    @property
    def apps(self) -> AppDirectory:
        """Each app's alert channel, admins and PagerDuty escalation (bot.apps)."""
        return self.settings.directory

    def last_database_url(self, app: str) -> str | None:
        """The last DATABASE_URL seen for the app, however old (None if never resolved)."""
        cached = self._dsn_cache.get(app)
        return cached[1] if cached else None

    def forget_app(self, app: str) -> None:
        """Drop every fact cached about the app (its formation or config changed): the next
        report, alert or keeper pass asks Heroku again."""
        self._dsn_cache.pop(app, None)
        self.alerts.forget(app)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str, *, lasting: bool = False) -> asyncio.Task[Any]:
        """Run work after an ack; keeps a reference and logs anything that escapes.

        Work that ends (a listener's, a webhook's) counts as pending until it does; `lasting`
        tasks (the keeper) run for the life of the process and do not.
        """
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        if not lasting:
            self._pending.add(task)
        task.add_done_callback(self._done)
        return task

    @property
    def pending_work(self) -> int:
        """Acknowledged inputs still being worked on: spawned work, plus the alert engine's
        batches. /healthz reports it, so a caller can tell when everything it sent has been
        considered (tests wait for 0 before checking that nothing else happened)."""
        return len(self._pending) + (0 if self.alerts.settled else 1)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    async def shutdown(self, grace_s: float) -> None:
        """SIGTERM: take no new work, let running work finish within `grace_s`, then stop it.

        Work stopped mid-way keeps its in-flight record (bot.state.inflight): dropping this
        process's heartbeat makes it an orphan the next process finishes at once."""
        self.stopping = True
        pending = [t for t in self._pending if not t.done()]
        if pending:
            log.info("shutting down: waiting up to %gs for %d running tasks", grace_s, len(pending))
            _, still = await asyncio.wait(pending, timeout=grace_s)
            if still:
                log.warning(
                    "shutting down: %d tasks still running after %gs; stopping them", len(still), grace_s
                )
        await self.aclose()

    async def aclose(self) -> None:
        self.stopping = True
        await self.alerts.stop()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            # Their cancellation handlers (unlock, records) still need Redis: let them run first.
            await asyncio.wait(tasks, timeout=2.0)
        await self.inflight.gone()
        await self.inspector.close()
        await self.http.aclose()
        if self.alerts.escalator is not None:
            await self.alerts.escalator.aclose()
        if self.redis is not None:
            await self.redis.aclose()


def slack_client(settings: Settings) -> AsyncWebClient:
    return AsyncWebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        timeout=10,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
        ],
    )


def build_services(settings: Settings) -> Services:
    budget = HerokuBudget()

    async def observe_rate_limit(response: httpx.Response) -> None:
        budget.observe(response.headers.get("RateLimit-Remaining"))

    http = httpx.AsyncClient(
        # Heroku says after every call how many of the account's API calls are left.
        event_hooks={"response": [observe_rate_limit]},
        # The timeout is Heroku's to answer; waiting for one of our own pooled connections (a burst
        # of reports) is not Heroku being slow, so that wait has a bound of its own.
        timeout=httpx.Timeout(
            settings.heroku_timeout, connect=min(5.0, settings.heroku_timeout), pool=POOL_WAIT_S
        ),
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
        headers={"User-Agent": "pgconn/0.1"},
    )
    heroku = HerokuClient(
        http,
        api_key=settings.heroku_api_key,
        platform_url=settings.heroku_api_url,
        data_url=settings.heroku_data_api_url,
        retries=settings.heroku_retries,
    )
    slack = slack_client(settings)
    redis = (
        connect_redis(settings.redis_url, max_connections=settings.redis_max_connections)
        if settings.redis_url
        else None
    )
    inspector = PostgresInspector(statement_timeout_ms=settings.db_statement_timeout_ms)
    escalator = Escalator(
        base_url=settings.pagerduty_url,
        retry_s=settings.pagerduty_retry_s,
        route=lambda app: (
            settings.directory.for_app(app).pagerduty_routing_key,
            settings.directory.for_app(app).escalate_after_s,
        ),
        slack=slack,
        outbox=PagerDutyOutbox(redis) if redis is not None else None,
    )
    alerts = AlertEngine(
        settings,
        heroku=heroku,
        inspector=inspector,
        slack=slack,
        incidents=IncidentStore(redis) if redis is not None else None,
        metrics=MetricStore(redis) if redis is not None else None,
        postmortems=PostmortemStore(redis) if redis is not None else None,
        readings=ReadingStore(redis) if redis is not None else None,
        escalator=escalator,
    )
    services = Services(
        settings=settings,
        http=http,
        heroku=heroku,
        inspector=inspector,
        slack=slack,
        redis=redis,
        authoriser=Authoriser(slack, settings.directory),
        contexts=AppContextLoader(heroku),
        ledger=ActionLedger(redis),
        audit=AuditLog(redis),
        alerts=alerts,
        webhook_secrets=WebhookSecrets(redis),
        budget_watch=BudgetWatcher(settings, heroku=heroku, slack=slack, store=BudgetWatchStore(redis)),
        drain_nonces=DrainNonces(redis),
        throttle=Throttle(
            redis,
            budget,
            user_rate=settings.user_rate,
            app_rate=settings.app_rate,
            max_in_flight=settings.max_in_flight,
            heroku_reserve=settings.heroku_reserve,
        ),
        inflight=InFlightStore(redis),
        verifications=VerificationStore(redis),
        home=ReadingStore(redis),
    )
    # The one "incident ended" path: the post-mortem is written after the engine's work, as
    # pending work of its own (so /healthz's `pending` counts it, and SIGTERM gives it the grace).
    async def ended(incident: Incident) -> None:
        services.spawn(write_postmortem(services, incident), name=f"postmortem-{incident.app}")

    alerts.on_ended = ended
    return services
