"""Heroku emulator: the Platform API v3 and the Heroku Postgres data API on one ASGI app.

The real Heroku CLI can be pointed at it (HEROKU_HOST=http://127.0.0.1:PORT,
HEROKU_DATA_HOST=127.0.0.1: the CLI sends data-API requests to that hostname on the
Platform API's port and scheme, so one server answers both), and so can the bot
(HEROKU_API_URL and HEROKU_DATA_API_URL both set to the server's URL). With
HEROKU_PARTICLEBOARD_URL pointed here too, the CLI's side request for account
delinquency lands on `GET /account` instead of the internet.

It models effects, not just replies, on a real Postgres reached with `admin_dsn`:
- restarting dynos (all, one process type, one dyno) terminates the app role's
  backends that belong to those dynos — see `emulators.heroku_pg` for the
  application_name convention — and the dynos report "starting" for
  `dyno_boot_seconds`, then "up";
- `connection_reset` (pg:killall) terminates every backend of the role;
- pg:info's "Connections: N/LIMIT" counts the role's live backends;
- changing config vars is a release, and a release restarts every dyno, as on Heroku
  (set `restart_on_config_change = False` to keep connections across config changes).

Test controls: `latency` (slept before every answer), `inject()` (fail or slow down the
next matching requests), `requests` (everything received, for assertions and secret
scans), `on_release` / `on_restart` hooks, and the `apps` state itself.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import inspect
import json
import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulators.heroku_data import pg_info
from emulators.heroku_pg import (
    PostgresEffects,
    belongs_to_dyno,
    belongs_to_type,
    not_external,
)
from emulators.heroku_state import (
    APP_NAME,
    POOLING_NAMESPACE,
    POSTGRES_SERVICE,
    Account,
    Addon,
    Attachment,
    Build,
    EmulatedApp,
    Formation,
    LogDrain,
    Release,
    RestartRecord,
    Slug,
    Webhook,
    addon_name_for,
    is_essential_tier,
    new_uuid,
    now,
    stable_uuid,
)
from emulators.heroku_webhooks import WebhookDispatcher

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]
ReleaseHook = Callable[[EmulatedApp], Awaitable[None] | None]
RestartHook = Callable[[EmulatedApp, RestartRecord], Awaitable[None] | None]

__all__ = [
    "EmulatedApp",
    "Fault",
    "HerokuApiError",
    "HerokuEmulator",
    "RecordedRequest",
    "RestartRecord",
]

# Heroku's own wording, so clients that show the message show what Heroku would say.
_DEFAULT_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "Invalid request."),
    401: ("unauthorized", "Invalid credentials provided."),
    403: ("forbidden", "You do not have access to the app."),
    404: ("not_found", "Couldn't find that app."),
    409: ("conflict", "A conflicting request is in progress."),
    422: ("invalid_params", "Invalid parameters."),
    429: ("rate_limit", "Your account reached the API rate limit\n"
                        "Please wait a few minutes before making new requests"),
    500: ("internal_server_error", "Internal server error."),
    502: ("bad_gateway", "Bad gateway."),
    503: ("service_unavailable", "Service unavailable: please try again in a few minutes."),
    504: ("gateway_timeout", "Gateway timeout."),
}
_UNKNOWN_ROUTE = (
    "The requested API endpoint was not found. Are you using the right HTTP verb (i.e. `GET` "
    "vs. `POST`), and did you specify your intended version with the `Accept` header?"
)
_DEFAULT_FORMATION: list[dict[str, Any]] = [{"type": "web", "quantity": 1, "command": "gunicorn app:app",
                       "size": "Basic"}]


class HerokuApiError(Exception):
    """Raised inside handlers; rendered as Heroku's `{"id": ..., "message": ...}` body."""

    def __init__(self, status: int, error_id: str, message: str, resource: str | None = None):
        super().__init__(message)
        self.status = status
        self.error_id = error_id
        self.message = message
        self.resource = resource

    def response(self) -> Response:
        body: dict[str, Any] = {"id": self.error_id, "message": self.message}
        if self.resource:
            body["resource"] = self.resource
        return JSONResponse(body, status_code=self.status)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    time: float  # time.time() when received
    query: str = ""


@dataclass
class Fault:
    """An injected failure, consumed by the next `remaining` matching requests."""

    path: str
    method: str | None
    status: int
    remaining: int
    retry_after: float | None
    delay: float
    body: bytes | None

    def matches(self, method: str, path: str) -> bool:
        return self.path in path and (self.method is None or self.method.upper() == method)


@dataclass
class _Route:
    method: str
    path: str
    handler: Handler = field(repr=False)


class RateLimitPool:
    """The account's Platform API token pool, as Heroku applies it: 4,500 tokens, refilled at
    about 75 a minute; each request takes one, an empty pool answers 429 `rate_limit` (with
    `RateLimit-Remaining`, and no `Retry-After`: none is documented). `GET /account/rate-limits`
    costs nothing. (Dev Center "Platform API Reference", Rate Limits.)"""

    CAPACITY = 4500.0
    REFILL_PER_S = 75 / 60

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.tokens = self.CAPACITY
        self._at = clock()
        self.refused = 0  # 429s answered because the pool was empty

    def _refill(self) -> None:
        now = self._clock()
        self.tokens = min(self.CAPACITY, self.tokens + (now - self._at) * self.REFILL_PER_S)
        self._at = now

    def take(self) -> bool:
        with self._lock:
            self._refill()
            if self.tokens < 1:
                self.refused += 1
                return False
            self.tokens -= 1
            return True

    def remaining(self) -> int:
        with self._lock:
            self._refill()
            return int(self.tokens)

    def set(self, tokens: float) -> None:
        """Tests: leave this many tokens (refilling from now)."""
        with self._lock:
            self.tokens, self._at, self.refused = float(tokens), self._clock(), 0


class HerokuEmulator:
    """One emulated Heroku account holding any number of apps, each with one Postgres add-on."""

    def __init__(self, *, admin_dsn: str, api_key: str, dyno_boot_seconds: float = 0.3) -> None:
        self.api_key = api_key
        self.dyno_boot_seconds = dyno_boot_seconds
        self.url = ""  # base URL, for whoever serves `app` to record (e.g. serve_in_thread().url)
        self.latency = 0.0
        self.apps: dict[str, EmulatedApp] = {}
        self.faults: list[Fault] = []
        self.requests: list[RecordedRequest] = []
        # Called after buildpack and config-var changes (and pooling attach): the sandbox uses
        # it to start a real PgBouncer. Sync or async.
        self.on_release: ReleaseHook | None = None
        # Called after every restart with what was restarted and how many backends died.
        self.on_restart: RestartHook | None = None
        # application_name prefixes of backends that do not run in the app's dynos (the bot's
        # own connection): a restart of every dyno leaves them alone; a connection reset not.
        self.external_application_prefixes: tuple[str, ...] = ("pgconn",)
        self.restart_on_config_change = True
        # Formation changes and releases are POSTed to the apps' webhook subscriptions.
        self.webhooks = WebhookDispatcher()
        # What the Procfile of each source blob URL says (`POST /apps/{app}/builds`): the
        # emulator cannot unpack a tarball, so a test says what a deploy would carry.
        self.sources: dict[str, dict[str, str]] = {}
        self.account = Account()
        self.rate_limit = RateLimitPool()
        self.pg = PostgresEffects(admin_dsn)
        self._faults_lock = threading.Lock()
        self.app = Starlette(routes=self._routes())

    # -- public controls -----------------------------------------------------------

    def add_app(
        self,
        name: str,
        *,
        database_url: str,
        role: str,
        plan: str = "essential-0",
        formation: list[dict[str, Any]] | None = None,
        config_vars: dict[str, str] | None = None,
        buildpacks: list[str] | None = None,
    ) -> EmulatedApp:
        if not APP_NAME.match(name):
            raise ValueError(f"{name!r} is not a valid Heroku app name (^[a-z][a-z0-9-]{{1,28}}"
                             "[a-z0-9]$)")
        if name in self.apps:
            raise ValueError(f"app {name!r} already exists")
        short_plan = plan.removeprefix(f"{POSTGRES_SERVICE}:")
        created = now() - timedelta(days=400)
        # The add-on's id is as stable as its name: a test that re-creates an app re-creates the
        # same database, and a running bot that cached the id (as pgconn does for minutes) keeps
        # finding it, as it would on Heroku where the add-on never changed.
        addon_name = addon_name_for(name)
        addon = Addon(
            stable_uuid("addon", name, addon_name), addon_name, short_plan, created + timedelta(days=1)
        )
        deployed = now() - timedelta(days=2)
        slug = Slug(new_uuid(), {}, _buildpack_description(buildpacks), deployed, "3f2a9c1e")
        releases = [
            Release(new_uuid(), 1, "Initial release", created),
            Release(new_uuid(), 2, f"Attach DATABASE (@ref:{addon.name})", addon.created_at),
            Release(new_uuid(), 3, "Deploy 3f2a9c1e", deployed, slug.id),
        ]
        forms: dict[str, Formation] = {}
        for entry in formation if formation is not None else _DEFAULT_FORMATION:
            form = Formation(
                type=str(entry["type"]),
                quantity=int(entry.get("quantity", 1)),
                command=str(entry.get("command", "")),
                size=str(entry.get("size", "Standard-1X")),
                created_at=created,
                updated_at=created,
            )
            forms[form.type] = form
            slug.process_types[form.type] = form.command
        config = {"DATABASE_URL": database_url}
        config.update(config_vars or {})
        app = EmulatedApp(
            name=name,
            id=new_uuid(),
            role=role,
            database_url=database_url,
            addon=addon,
            attachments=[Attachment(new_uuid(), "DATABASE", "DATABASE_URL", addon.created_at)],
            config_vars=config,
            buildpacks=list(buildpacks) if buildpacks is not None else ["heroku/python"],
            formation=forms,
            dynos={},
            releases=releases,
            created_at=created,
            owner=self.account,
            boot_seconds=self.dyno_boot_seconds,
            web_host=f"{name}-{hashlib.sha1(name.encode()).hexdigest()[:12]}",
        )
        app.slugs[slug.id] = slug
        app.sync_dynos()
        # Dynos of a freshly added app have been up for a while, not booting right now.
        for dyno in app.dynos.values():
            dyno.started_monotonic -= self.dyno_boot_seconds
            dyno.started_at -= timedelta(hours=5)
        self.apps[name] = app
        return app

    def inject(
        self,
        *,
        path: str = "",
        method: str | None = None,
        status: int = 500,
        times: int = 1,
        retry_after: float | None = None,
        delay: float = 0.0,
        body: bytes | None = None,
    ) -> None:
        """Make the next `times` requests whose path contains `path` answer `status`.

        With `delay`, sleep first (to trip client timeouts). A 2xx/3xx `status` without
        `body` means "slow but correct": the real answer follows the delay. With `body`,
        that exact body is sent (e.g. b"{not json") with `status`.
        """
        with self._faults_lock:
            self.faults.append(Fault(path, method, status, times, retry_after, delay, body))

    # -- request pipeline ----------------------------------------------------------

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._faults_lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def _wrap(self, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            body = await request.body()
            self.requests.append(RecordedRequest(
                method=request.method,
                path=request.url.path,
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
                time=time.time(),
                query=request.url.query,
            ))
            if self.latency > 0:
                await asyncio.sleep(self.latency)
            response = await self._answer(request, handler)
            response.headers["Request-Id"] = new_uuid()
            response.headers.setdefault("RateLimit-Remaining", str(self.rate_limit.remaining()))
            return response

        return endpoint

    async def _answer(self, request: Request, handler: Handler) -> Response:
        # Heroku checks who is asking, and for which API version, before anything else can go
        # wrong: a client with a bad key or no version gets that answer, not an injected fault.
        try:
            self._authenticate(request)
        except HerokuApiError as exc:
            return exc.response()
        unversioned = _missing_version(request)
        if unversioned is not None:
            return unversioned
        # The account's token pool is spent by every authenticated request (not by reading it).
        if request.url.path != "/account/rate-limits" and not self.rate_limit.take():
            return HerokuApiError(429, *_DEFAULT_ERRORS[429]).response()
        fault = self._take_fault(request.method, request.url.path)
        if fault is not None:
            if fault.delay > 0:
                await asyncio.sleep(fault.delay)
            if fault.body is not None or fault.status >= 400:
                return _fault_response(fault)
        try:
            return await handler(request)
        except HerokuApiError as exc:
            return exc.response()
        except Exception:
            log.exception("heroku emulator: %s %s failed", request.method, request.url.path)
            return HerokuApiError(500, *_DEFAULT_ERRORS[500]).response()

    def _authenticate(self, request: Request) -> None:
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        key = ""
        if scheme.lower() == "bearer":
            key = credential.strip()
        elif scheme.lower() == "basic":
            # Heroku also takes Basic auth with the API key as password (netrc style).
            try:
                key = base64.b64decode(credential.strip()).decode().partition(":")[2]
            except (binascii.Error, UnicodeDecodeError):
                key = ""
        if not key or not hmac.compare_digest(key.encode(), self.api_key.encode()):
            raise HerokuApiError(401, "unauthorized", "Invalid credentials provided.")

    async def _call_hook(self, hook: Callable[..., Awaitable[None] | None] | None,
                         *args: Any) -> None:
        if hook is None:
            return
        result = hook(*args)
        if inspect.isawaitable(result):
            await result

    # -- lookups -------------------------------------------------------------------

    def _app(self, ident: str) -> EmulatedApp:
        app = self.apps.get(ident) or next((a for a in self.apps.values() if a.id == ident), None)
        if app is None:
            raise HerokuApiError(404, "not_found", "Couldn't find that app.", "app")
        return app

    def _addon_owner(self, ident: str) -> EmulatedApp:
        for app in self.apps.values():
            if ident in (app.addon.id, app.addon.name):
                return app
        raise HerokuApiError(404, "not_found", "Couldn't find that add on.", "add_on")

    def _attachment(self, ident: str) -> tuple[EmulatedApp, Attachment]:
        for app in self.apps.values():
            for attachment in app.attachments:
                if ident == attachment.id:
                    return app, attachment
        raise HerokuApiError(404, "not_found", "Couldn't find that add on attachment.",
                             "add_on attachment")

    def _formation(self, app: EmulatedApp, ident: str) -> Formation:
        for form in app.formation.values():
            if ident in (form.type, form.id):
                return form
        raise HerokuApiError(404, "not_found", "Couldn't find that process type.", "formation")

    # -- effects -------------------------------------------------------------------

    async def _restart(self, app: EmulatedApp, target: str, reason: str = "api") -> RestartRecord:
        if target == "all":
            names = list(app.dynos)
            select = not_external(self.external_application_prefixes)
        elif target in app.dynos:
            names = [target]
            select = belongs_to_dyno(target)
        else:
            form = self._formation(app, target)
            target = form.type
            names = [n for n, d in app.dynos.items() if d.type == form.type]
            select = belongs_to_type(form.type)
        try:
            terminated = await self.pg.terminate(app.role, select)
        except psycopg.Error as exc:
            # Dynos restart whether or not the database is reachable.
            log.warning("heroku emulator: restart could not reach the database: %s", exc)
            terminated = 0
        app.restart_dynos(names)
        record = RestartRecord(target, tuple(names), terminated, now(), reason)
        app.restarts.append(record)
        await self._call_hook(self.on_restart, app, record)
        return record

    async def _release(self, app: EmulatedApp, description: str) -> None:
        """A new release: every dyno restarts on it (as Heroku does), then the hook runs."""
        release = app.add_release(description)
        self.webhooks.publish(app, "release", "create", app.release_json(release))
        if self.restart_on_config_change:
            await self._restart(app, "all", reason="release")
        await self._call_hook(self.on_release, app)

    async def _apply_formation(self, app: EmulatedApp, form: Formation, update: dict[str, Any]
                               ) -> None:
        before = {"quantity": form.quantity, "size": form.size}
        quantity = update.get("quantity")
        if quantity is not None:
            if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
                raise HerokuApiError(422, "invalid_params", "Quantity must be a positive integer.")
            form.quantity = quantity
        size = update.get("size")
        dyno_size = update.get("dyno_size")
        if isinstance(dyno_size, dict):
            size = dyno_size.get("name") or size
        size_changed = isinstance(size, str) and size != form.size
        if size_changed:
            form.size = str(size)
        form.updated_at = now()
        removed = app.sync_dynos()
        for name in removed:
            # Scaled-down dynos are stopped: their connections go with them.
            with contextlib.suppress(psycopg.Error):
                await self.pg.terminate(app.role, belongs_to_dyno(name))
        if size_changed:
            await self._restart(app, form.type, reason="scale")
        # As Heroku does: previous_data holds the fields that changed, with their old values.
        changed = {k: v for k, v in before.items() if v != {"quantity": form.quantity, "size": form.size}[k]}
        if changed:
            self.webhooks.publish(app, "formation", "update", app.formation_json(form), changed)

    # -- routes --------------------------------------------------------------------

    def _routes(self) -> list[Route]:
        table = [
            _Route("GET", "/account", self._get_account),
            _Route("GET", "/account/rate-limits", self._get_rate_limits),
            _Route("GET", "/apps", self._list_apps),
            _Route("GET", "/apps/{app}", self._get_app),
            _Route("GET", "/apps/{app}/addons", self._list_app_addons),
            _Route("GET", "/apps/{app}/addons/{addon}", self._get_app_addon),
            _Route("GET", "/addons", self._list_addons),
            _Route("GET", "/addons/{addon}", self._get_addon),
            _Route("GET", "/addons/{addon}/addon-attachments", self._list_addon_attachments),
            _Route("GET", "/apps/{app}/addon-attachments", self._list_app_attachments),
            _Route("GET", "/apps/{app}/addon-attachments/{attachment}", self._get_app_attachment),
            _Route("GET", "/addon-attachments/{attachment}", self._get_attachment),
            _Route("POST", "/actions/addon-attachments/resolve", self._resolve_attachments),
            _Route("POST", "/actions/addons/resolve", self._resolve_addons),
            _Route("GET", "/apps/{app}/config-vars", self._get_config),
            _Route("PATCH", "/apps/{app}/config-vars", self._patch_config),
            _Route("GET", "/apps/{app}/formation", self._list_formation),
            _Route("PATCH", "/apps/{app}/formation", self._batch_formation),
            _Route("GET", "/apps/{app}/formation/{type}", self._get_formation),
            _Route("PATCH", "/apps/{app}/formation/{type}", self._patch_formation),
            _Route("GET", "/apps/{app}/dynos", self._list_dynos),
            _Route("DELETE", "/apps/{app}/dynos", self._restart_all),
            _Route("GET", "/apps/{app}/dynos/{dyno}", self._get_dyno),
            _Route("DELETE", "/apps/{app}/dynos/{dyno}", self._restart_dyno),
            _Route("DELETE", "/apps/{app}/formations/{type}", self._restart_formation),
            _Route("GET", "/apps/{app}/buildpack-installations", self._list_buildpacks),
            _Route("PUT", "/apps/{app}/buildpack-installations", self._put_buildpacks),
            _Route("GET", "/apps/{app}/log-drains", self._list_drains),
            _Route("POST", "/apps/{app}/log-drains", self._add_drain),
            _Route("GET", "/apps/{app}/log-drains/{drain:path}", self._get_drain),
            _Route("DELETE", "/apps/{app}/log-drains/{drain:path}", self._delete_drain),
            _Route("GET", "/apps/{app}/webhooks", self._list_webhooks),
            _Route("POST", "/apps/{app}/webhooks", self._add_webhook),
            _Route("GET", "/apps/{app}/webhooks/{hook}", self._get_webhook),
            _Route("DELETE", "/apps/{app}/webhooks/{hook}", self._delete_webhook),
            _Route("GET", "/apps/{app}/webhook-deliveries", self._list_deliveries),
            _Route("GET", "/apps/{app}/webhook-deliveries/{delivery}", self._get_delivery),
            _Route("GET", "/apps/{app}/releases", self._list_releases),
            _Route("POST", "/apps/{app}/builds", self._create_build),
            _Route("GET", "/apps/{app}/builds", self._list_builds),
            _Route("GET", "/apps/{app}/builds/{build}", self._get_build),
            _Route("GET", "/apps/{app}/slugs/{slug}", self._get_slug),
            # Heroku Postgres data API (api.data.heroku.com in production).
            _Route("GET", "/client/v11/databases/{db}", self._pg_info),
            _Route("POST", "/client/v11/databases/{db}/connection_reset", self._connection_reset),
            _Route("POST", "/client/v11/databases/{db}/connection-pooling", self._pooling),
        ]
        routes = [Route(r.path, self._wrap(r.handler), methods=[r.method]) for r in table]
        # Last: anything else — including a known path with the wrong verb — is Heroku's 404.
        routes.append(Route("/{rest:path}", self._wrap(self._unknown_route),
                            methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]))
        return routes

    async def _unknown_route(self, request: Request) -> Response:
        raise HerokuApiError(404, "not_found", _UNKNOWN_ROUTE)

    # Account and apps.

    async def _get_account(self, request: Request) -> Response:
        return JSONResponse(self.account.to_json())

    async def _get_rate_limits(self, request: Request) -> Response:
        return JSONResponse({"remaining": self.rate_limit.remaining()})

    async def _list_apps(self, request: Request) -> Response:
        return JSONResponse([a.to_json() for a in self.apps.values()])

    async def _get_app(self, request: Request) -> Response:
        return JSONResponse(self._app(request.path_params["app"]).to_json())

    # Add-ons and attachments.

    async def _list_app_addons(self, request: Request) -> Response:
        return JSONResponse([self._app(request.path_params["app"]).addon_json()])

    async def _get_app_addon(self, request: Request) -> Response:
        app = self._app(request.path_params["app"])
        owner = self._addon_owner(request.path_params["addon"])
        if owner is not app:
            raise HerokuApiError(404, "not_found", "Couldn't find that add on.", "add_on")
        return JSONResponse(app.addon_json())

    async def _list_addons(self, request: Request) -> Response:
        return JSONResponse([a.addon_json() for a in self.apps.values()])

    async def _get_addon(self, request: Request) -> Response:
        return JSONResponse(self._addon_owner(request.path_params["addon"]).addon_json())

    async def _list_addon_attachments(self, request: Request) -> Response:
        app = self._addon_owner(request.path_params["addon"])
        inc = _inclusions(request)
        return JSONResponse([app.attachment_json(a, inc) for a in app.attachments])

    async def _list_app_attachments(self, request: Request) -> Response:
        app = self._app(request.path_params["app"])
        inc = _inclusions(request)
        return JSONResponse([app.attachment_json(a, inc) for a in app.attachments])

    async def _get_app_attachment(self, request: Request) -> Response:
        app = self._app(request.path_params["app"])
        ident = request.path_params["attachment"]
        for attachment in app.attachments:
            if ident in (attachment.id, attachment.name):
                return JSONResponse(app.attachment_json(attachment, _inclusions(request)))
        raise HerokuApiError(404, "not_found", "Couldn't find that add on attachment.",
                             "add_on attachment")

    async def _get_attachment(self, request: Request) -> Response:
        app, attachment = self._attachment(request.path_params["attachment"])
        return JSONResponse(app.attachment_json(attachment, _inclusions(request)))

    async def _resolve_attachments(self, request: Request) -> Response:
        body = await _json_object(request)
        ident = body.get("addon_attachment")
        if not isinstance(ident, str) or not ident:
            raise HerokuApiError(422, "invalid_params", "Missing required params: addon_attachment.")
        apps = [self._app(body["app"])] if body.get("app") else list(self.apps.values())
        service = body.get("addon_service")
        inc = _inclusions(request)
        matches = [
            app.attachment_json(att, inc)
            for app in apps
            if service in (None, POSTGRES_SERVICE)
            for att in app.attachments
            # The resolver takes an attachment name or id, its config var ("DATABASE_URL",
            # what the CLI sends by default), or the add-on's own name or id.
            if ident in (att.name, att.id, att.config_var, app.addon.name, app.addon.id)
        ]
        if not matches:
            raise HerokuApiError(404, "not_found", "Couldn't find that add on attachment.",
                                 "add_on attachment")
        return JSONResponse(matches)

    async def _resolve_addons(self, request: Request) -> Response:
        body = await _json_object(request)
        ident = body.get("addon")
        if not isinstance(ident, str) or not ident:
            raise HerokuApiError(422, "invalid_params", "Missing required params: addon.")
        apps = [self._app(body["app"])] if body.get("app") else list(self.apps.values())
        service = body.get("addon_service")
        matches = [
            app.addon_json()
            for app in apps
            if service in (None, POSTGRES_SERVICE)
            and (ident in (app.addon.id, app.addon.name)
                 or any(ident in (a.name, a.config_var) for a in app.attachments))
        ]
        if not matches:
            raise HerokuApiError(404, "not_found", "Couldn't find that add on.", "add_on")
        return JSONResponse(matches)

    # Config vars.

    async def _get_config(self, request: Request) -> Response:
        return JSONResponse(self._app(request.path_params["app"]).config_vars)

    async def _patch_config(self, request: Request) -> Response:
        app = self._app(request.path_params["app"])
        body = await _json_object(request)
        for key, value in body.items():
            if not re.fullmatch(r"\w+", key):
                raise HerokuApiError(422, "invalid_params", f"Invalid config var name: {key}")
            if value is not None and not isinstance(value, str):
                raise HerokuApiError(422, "invalid_params",
                                     f"Config var {key} must be a string or null.")
        set_keys = [k for k, v in body.items() if v is not None]
        removed = [k for k, v in body.items() if v is None and k in app.config_vars]
        for key, value in body.items():
            if value is None:
                app.config_vars.pop(key, None)
            else:
                app.config_vars[key] = value
        if set_keys or removed:
            parts = []
            if set_keys:
                parts.append(f"Set {', '.join(set_keys)}")
            if removed:
                parts.append(f"Remove {', '.join(removed)}")
            await self._release(app, " and ".join(parts) + " config vars")
        return JSONResponse(app.config_vars)

    # Formation and dynos.

    async def _list_formation(self, request: Request) -> Response:
        app = self._app(request.path_params["app"])
        return JSONResponse([app.formation_json(f) for f in app.formation.values()])

    async def _get_formation(self, request: Request) -> Response:
        app = self._app(request.path_params["app"])
        return JSONResponse(app.formation_json(self._formation(app, request.path_params["type"])))

    async def _patch_formation(self, request: Request) -> Response:
        app = self._app(request.path_params["app"])
        form = self._formation(app, request.path_params["type"])
        await self._apply_formation(app, form, await _json_object(request))
        return JSONResponse(app.formation_json(form))

    async def _batch_formation(self, request: Request) -> Response:
        app = self._app(request.path_params["app"])
        updates = (await _json_object(request)).get("updates")
        if not isinstance(updates, list) or not all(isinstance(u, dict) for u in updates):
            raise HerokuApiError(422, "invalid_params", "Missing required params: updates.")
        forms = [self._formation(app, str(u.get("type", ""))) for u in updates]
        for form, update in zip(forms, updates, strict=True):
            await self._apply_formation(app, form, update)
        return JSONResponse([app.formation_json(f) for f in forms])

    async def _list_dynos(self, request: Request) -> Response:
        app = self._app(request.path_params["app"])
        return JSONResponse([app.dyno_json(d) for d in app.dynos.values()])

    async def _get_dyno(self, request: Request) -> Response:
        app = self._app(request.path_params["app"])
        ident = request.path_params["dyno"]
        for dyno in app.dynos.values():
            if ident in (dyno.name, dyno.id):
                return JSONResponse(app.dyno_json(dyno))
        raise HerokuApiError(404, "not_found", "Couldn't find that dyno.", "dyno")

    async def _restart_all(self, request: Request) -> Response:
        await self._restart(self._app(request.path_params["app"]), "all")
        return JSONResponse({}, status_code=202)

    async def _restart_dyno(self, request: Request) -> Response:
        # `DELETE /apps/{app}/dynos/{name}` restarts one dyno; given a process type instead
        # ("web") it restarts all of that type, as Heroku has long accepted.
        app = self._app(request.path_params["app"])
        ident = request.path_params["dyno"]
        by_id = next((d.name for d in app.dynos.values() if d.id == ident), None)
        target = by_id or ident
        if target not in app.dynos and target not in app.formation:
            raise HerokuApiError(404, "not_found", "Couldn't find that dyno.", "dyno")
        await self._restart(app, target)
        return JSONResponse({}, status_code=202)

    async def _restart_formation(self, request: Request) -> Response:
        app = self._app(request.path_params["app"])
        form = self._formation(app, request.path_params["type"])
        await self._restart(app, form.type)
        return JSONResponse({}, status_code=202)

    # Buildpacks.

    async def _list_buildpacks(self, request: Request) -> Response:
        return JSONResponse(self._app(request.path_params["app"]).buildpacks_json())

    async def _put_buildpacks(self, request: Request) -> Response:
        app = self._app(request.path_params["app"])
        updates = (await _json_object(request)).get("updates")
        if not isinstance(updates, list):
            raise HerokuApiError(422, "invalid_params", "Missing required params: updates.")
        urls: list[str] = []
        for update in updates:
            url = update.get("buildpack") if isinstance(update, dict) else None
            if not isinstance(url, str) or not url:
                raise HerokuApiError(422, "invalid_params",
                                     "Each update needs a buildpack name or URL.")
            urls.append(url)
        if len(set(urls)) != len(urls):
            raise HerokuApiError(422, "invalid_params", "Buildpacks must be unique.")
        app.buildpacks = urls
        # A buildpack change takes effect on the next build; no release, but the sandbox
        # hook runs so it can model that build.
        await self._call_hook(self.on_release, app)
        return JSONResponse(app.buildpacks_json())

    # Log drains.

    def _drain(self, app: EmulatedApp, ident: str) -> LogDrain:
        for drain in app.log_drains:
            if ident in (drain.id, drain.url, drain.token):
                return drain
        raise HerokuApiError(404, "not_found", "Couldn't find that log drain.", "log_drain")

    async def _list_drains(self, request: Request) -> Response:
        app = self._app(request.path_params["app"])
        return JSONResponse([app.drain_json(d) for d in app.log_drains])

    async def _add_drain(self, request: Request) -> Response:
        app = self._app(request.path_params["app"])
        url = (await _json_object(request)).get("url")
        if not isinstance(url, str) or not url:
            raise HerokuApiError(422, "invalid_params", "Missing required params: url.")
        if not re.match(r"^(https?|syslog(\+tls)?)://[^\s/]+", url):
            raise HerokuApiError(422, "invalid_params", "Url is invalid")
        if any(d.url == url for d in app.log_drains):
            raise HerokuApiError(422, "invalid_params", "Url has already been taken")
        drain = LogDrain(new_uuid(), url, f"d.{new_uuid()}", now())
        app.log_drains.append(drain)
        return JSONResponse(app.drain_json(drain), status_code=201)

    async def _get_drain(self, request: Request) -> Response:
        app = self._app(request.path_params["app"])
        return JSONResponse(app.drain_json(self._drain(app, request.path_params["drain"])))

    async def _delete_drain(self, request: Request) -> Response:
        app = self._app(request.path_params["app"])
        drain = self._drain(app, request.path_params["drain"])
        app.log_drains.remove(drain)
        return JSONResponse(app.drain_json(drain))

    # Webhooks.

    def _webhook(self, app: EmulatedApp, ident: str) -> Webhook:
        for hook in app.webhooks:
            if hook.id == ident:
                return hook
        raise HerokuApiError(404, "not_found", "Couldn't find that webhook.", "app_webhook")

    async def _list_webhooks(self, request: Request) -> Response:
        app = self._app(request.path_params["app"])
        return JSONResponse([app.webhook_json(h) for h in app.webhooks])

    async def _add_webhook(self, request: Request) -> Response:
        app = self._app(request.path_params["app"])
        body = await _json_object(request)
        url, include, level = body.get("url"), body.get("include"), body.get("level")
        if not isinstance(url, str) or not re.match(r"^https?://", url):
            raise HerokuApiError(422, "invalid_params", "Url is invalid")
        if (not isinstance(include, list) or not include
                or not all(isinstance(i, str) for i in include)):
            raise HerokuApiError(422, "invalid_params", "Include must list at least one entity.")
        if level not in ("notify", "sync"):
            raise HerokuApiError(422, "invalid_params", "Level must be notify or sync.")
        if any(h.url == url for h in app.webhooks):
            raise HerokuApiError(422, "invalid_params", "Url has already been taken")
        secret, authorization = body.get("secret"), body.get("authorization")
        hook = Webhook(new_uuid(), url, list(include), str(level),
                       secret if isinstance(secret, str) else None,
                       authorization if isinstance(authorization, str) else None, now(), now())
        app.webhooks.append(hook)
        return JSONResponse(app.webhook_json(hook), status_code=201)

    async def _get_webhook(self, request: Request) -> Response:
        app = self._app(request.path_params["app"])
        return JSONResponse(app.webhook_json(self._webhook(app, request.path_params["hook"])))

    async def _delete_webhook(self, request: Request) -> Response:
        app = self._app(request.path_params["app"])
        hook = self._webhook(app, request.path_params["hook"])
        app.webhooks.remove(hook)
        return JSONResponse(app.webhook_json(hook))

    async def _list_deliveries(self, request: Request) -> Response:
        app = self._app(request.path_params["app"])
        return JSONResponse([d.to_json() for d in self.webhooks.of(app.name)])

    async def _get_delivery(self, request: Request) -> Response:
        app = self._app(request.path_params["app"])
        for delivery in self.webhooks.of(app.name):
            if delivery.id == request.path_params["delivery"]:
                return JSONResponse(delivery.to_json())
        raise HerokuApiError(404, "not_found", "Couldn't find that webhook delivery.", "app_webhook_delivery")

    # Releases (the CLI reads the latest after connection-pooling:attach).

    async def _list_releases(self, request: Request) -> Response:
        app = self._app(request.path_params["app"])
        releases = list(app.releases)
        range_header = request.headers.get("range", "")
        if "order=desc" in range_header:
            releases.reverse()
        limit = re.search(r"max=(\d+)", range_header)
        if limit:
            releases = releases[: int(limit.group(1))]
        return JSONResponse([app.release_json(r) for r in releases])

    # Builds and slugs: a deploy (`git push heroku`, `heroku builds:create`).

    async def _create_build(self, request: Request) -> Response:
        app = self._app(request.path_params["app"])
        body = await _json_object(request)
        blob = body.get("source_blob")
        url = blob.get("url") if isinstance(blob, dict) else None
        if not isinstance(url, str) or not url:
            raise HerokuApiError(422, "invalid_params", "Missing required params: source_blob.")
        version = blob.get("version") if isinstance(blob, dict) else None
        build = await self.deploy(app, url, version=str(version) if version else None)
        return JSONResponse(app.build_json(build), status_code=201)

    async def deploy(self, app: EmulatedApp, source_url: str, *, version: str | None = None) -> Build:
        """Build the source with the app's buildpacks as they are now, and release the slug.

        The emulator cannot unpack a tarball: the Procfile a source carries is what `sources`
        says for its URL (a test control), else the current slug's. Like Heroku, the formation's
        commands follow the new slug's process types, and the release restarts every dyno."""
        current = app.slugs.get(app.current_release.slug_id or "")
        procfile = dict(self.sources.get(source_url) or (current.process_types if current else {}))
        slug = Slug(new_uuid(), procfile, _buildpack_description(app.buildpacks), now(), version)
        app.slugs[slug.id] = slug
        build = Build(new_uuid(), list(app.buildpacks), source_url, version, slug.id, None, now())
        app.builds.append(build)
        for kind, command in procfile.items():
            form = app.formation.get(kind)
            if form is None:
                # A new process type starts at 0 dynos, web at 1 on an app's first deploy.
                app.formation[kind] = Formation(kind, 0, command, "basic")
            else:
                form.command = command
                form.updated_at = now()
        app.sync_dynos()
        release = app.add_release(f"Deploy {version or slug.id[:8]}", slug.id)
        build.release_id = release.id
        self.webhooks.publish(app, "release", "create", app.release_json(release))
        await self._restart(app, "all", reason="release")
        await self._call_hook(self.on_release, app)
        return build

    async def _list_builds(self, request: Request) -> Response:
        app = self._app(request.path_params["app"])
        return JSONResponse([app.build_json(b) for b in app.builds])

    async def _get_build(self, request: Request) -> Response:
        app = self._app(request.path_params["app"])
        for build in app.builds:
            if build.id == request.path_params["build"]:
                return JSONResponse(app.build_json(build))
        raise HerokuApiError(404, "not_found", "Couldn't find that build.", "build")

    async def _get_slug(self, request: Request) -> Response:
        app = self._app(request.path_params["app"])
        slug = app.slugs.get(request.path_params["slug"])
        if slug is None:
            raise HerokuApiError(404, "not_found", "Couldn't find that slug.", "slug")
        return JSONResponse(app.slug_json(slug))

    # Heroku Postgres data API.

    async def _pg_info(self, request: Request) -> Response:
        app = self._database(request.path_params["db"])
        try:
            facts = await self.pg.facts(app.role, app.database_url)
        except psycopg.Error as exc:  # the database is down: Heroku answers, but can't say much
            log.warning("heroku emulator: pg:info could not reach the database: %s", exc)
            raise HerokuApiError(503, "service_unavailable",
                                 "The database is temporarily unavailable.") from None
        return JSONResponse(pg_info(app, facts))

    async def _connection_reset(self, request: Request) -> Response:
        app = self._database(request.path_params["db"])
        try:
            terminated = await self.pg.terminate(app.role)
        except psycopg.Error as exc:
            log.warning("heroku emulator: connection reset could not reach the database: %s", exc)
            raise HerokuApiError(503, "service_unavailable",
                                 "The database is temporarily unavailable.") from None
        app.connection_resets.append(terminated)
        # The real endpoint's body is not documented (the CLI ignores it): an empty object.
        return JSONResponse({})

    async def _pooling(self, request: Request) -> Response:
        owner = self._database(request.path_params["db"])
        body = await _json_object(request)
        if is_essential_tier(owner.plan):
            raise HerokuApiError(422, "invalid_params",
                                 "You can't perform this operation on Essential-tier databases.")
        app = self._app(str(body.get("app") or owner.name))
        if app is not owner:
            raise HerokuApiError(422, "invalid_params",
                                 "The emulator attaches pooling only to the add-on's own app.")
        name = body.get("name") or "DATABASE_CONNECTION_POOL"
        if not isinstance(name, str) or not re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
            raise HerokuApiError(422, "invalid_params", "Name is invalid")
        if any(a.name == name for a in app.attachments):
            raise HerokuApiError(422, "invalid_params", "Name has already been taken")
        attachment = Attachment(new_uuid(), name, f"{name}_URL", now(), POOLING_NAMESPACE)
        app.attachments.append(attachment)
        app.config_vars[attachment.config_var] = app.pool_url or app.database_url
        await self._release(app, f"Attach {name} (@ref:{app.addon.name})")
        return JSONResponse(app.attachment_json(attachment, frozenset()), status_code=201)

    def _database(self, ident: str) -> EmulatedApp:
        for app in self.apps.values():
            if ident in (app.addon.id, app.addon.name):
                return app
        raise HerokuApiError(404, "not_found", "Couldn't find that database.", "database")


def _buildpack_description(buildpacks: list[str] | None) -> str:
    names = [b.removeprefix("urn:buildpack:") for b in buildpacks or ["heroku/python"]]
    return "Python" if names[-1:] == ["heroku/python"] else names[-1]


def _accept_version(request: Request) -> str | None:
    """The `version=` of an `application/vnd.heroku+json` Accept header ("3", "3.sdk"), if any."""
    for media in request.headers.get("accept", "").split(","):
        kind, *params = (part.strip() for part in media.split(";"))
        if kind.lower() != "application/vnd.heroku+json":
            continue
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "version" and value.strip():
                return value.strip()
    return None


def _missing_version(request: Request) -> Response | None:
    """The Platform API answers 400 `missing_version` to a request that does not name version 3
    in Accept, with this body (`error`, not `message`), as reported verbatim in
    marc0der/gradle-heroku#4, Strider-CD/strider#1052 and markbates/goth#340 (Dev Center
    "Platform API Reference", Clients). The Postgres API under /client/ is another service; the
    CLI sends it the same header, but nothing says it requires it."""
    if request.url.path.startswith("/client/"):
        return None
    version = _accept_version(request)
    if version is not None and version.split(".")[0] == "3":
        return None
    return JSONResponse(
        {"id": "missing_version", "error": "Please specify a version along with Heroku's API MIME type. "
         "For example, `Accept: application/vnd.heroku+json; version=3`.\n"},
        status_code=400,
    )


def _inclusions(request: Request) -> frozenset[str]:
    """What `Accept-Inclusion` embeds: only with the `3.sdk` variant the CLI asks for when it
    sends the header (heroku/cli `src/lib/addons/resolve.ts` and ../shared/contracts/README.md:
    `Accept: application/vnd.heroku+json; version=3.sdk` with `Accept-Inclusion:
    addon:plan,config_vars`); plain version 3 ignores it."""
    if _accept_version(request) != "3.sdk":
        return frozenset()
    header = request.headers.get("accept-inclusion", "")
    return frozenset(part.strip() for part in header.split(",") if part.strip())


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise HerokuApiError(400, "bad_request", "Request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise HerokuApiError(400, "bad_request", "Request body must be a JSON object.")
    return body


def _fault_response(fault: Fault) -> Response:
    headers = {}
    if fault.retry_after is not None:
        headers["Retry-After"] = f"{fault.retry_after:g}"
    if fault.status == 429:
        headers["RateLimit-Remaining"] = "0"
    if fault.body is not None:
        return Response(fault.body, status_code=fault.status, headers=headers,
                        media_type="application/json")
    error_id, message = _DEFAULT_ERRORS.get(fault.status, ("error", f"HTTP {fault.status}"))
    return JSONResponse({"id": error_id, "message": message}, status_code=fault.status,
                        headers=headers)
