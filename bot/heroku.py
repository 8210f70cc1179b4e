"""Async client for the Heroku Platform API and the Heroku Postgres (data) API.

One boundary: every httpx failure and HTTP error becomes a `bot.errors.Heroku*`
exception with a sentence a person understands. The API key only travels in the
Authorization header and never appears in a message or a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from bot.errors import (
    HerokuAuthError,
    HerokuError,
    HerokuForbidden,
    HerokuNotFound,
    HerokuRateLimited,
    HerokuRejected,
    HerokuUnavailable,
    NoDatabase,
)
from bot.ratelimit import REFILL_PER_S, TokenEstimate, whole_seconds
from bot.readings import Build, Database, Dyno, PgInfo, ProcessType, Release

log = logging.getLogger(__name__)

PLATFORM_ACCEPT = "application/vnd.heroku+json; version=3"
# What the Heroku CLI v11 sends to get each attachment's add-on with plan and config vars.
SDK_ACCEPT = "application/vnd.heroku+json; version=3.sdk"
POSTGRES_SERVICE = "heroku-postgresql"
# Longest Retry-After we sleep through inside one request; longer ones surface to the person.
MAX_RETRY_AFTER_S = 5.0

Sleep = Callable[[float], Awaitable[None]]
JSON = Any


def _seg(value: str) -> str:
    """One path segment. `quote` leaves "." and ".." as they are, and httpx resolves them
    (RFC 3986 §5.2.4): a process type ".." would turn `DELETE /apps/{app}/formations/..` into
    `DELETE /apps/{app}`. No Heroku name is empty, "." or "..", so they are refused here."""
    if value in ("", ".", ".."):
        raise HerokuRejected(f"{value!r} is not a name pgconn can send to Heroku")
    return quote(value, safe="")


@contextlib.contextmanager
def _parsing(what: str) -> Iterator[None]:
    """Valid JSON of the wrong shape ("quantity": "lots", a string where an object goes) is a
    malformed response too: the same HerokuUnavailable as bad JSON, never a stray TypeError."""
    try:
        yield
    except (TypeError, ValueError, AttributeError, KeyError, OverflowError):
        raise HerokuUnavailable(f"Heroku sent malformed {what}") from None


class HerokuClient:
    """Thin typed wrapper; one instance per process, built by `bot.dependencies`."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_key: str,
        platform_url: str,
        data_url: str,
        retries: int = 3,
        backoff_s: float = 0.2,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._clock = clock
        # The account's token pool as Heroku last reported it (bot.ratelimit): paced, never overdrawn.
        self._tokens = TokenEstimate()
        self._in_flight = 0
        self._learning: asyncio.Future[None] | None = None
        self._key = api_key
        self._platform = platform_url.rstrip("/")
        self._data = data_url.rstrip("/")
        self._retries = retries
        self._backoff = backoff_s
        self._sleep = sleep

    # -- transport -----------------------------------------------------------------

    async def _request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        json: JSON = None,
        headers: Mapping[str, str] | None = None,
    ) -> JSON:
        # Only requests that cannot have taken effect (GET/PUT are idempotent; 429 and
        # connection errors mean "not processed") are retried: a restart or a reset must
        # never run twice because an answer was slow.
        idempotent = method in ("GET", "PUT")
        hdrs = {"Accept": PLATFORM_ACCEPT, "Authorization": f"Bearer {self._key}"}
        if headers:
            hdrs.update(headers)
        attempt = 0
        while True:
            attempt += 1
            await self._pace(what)
            self._in_flight += 1
            try:
                response = await self._http.request(method, url, json=json, headers=hdrs)
            except httpx.TimeoutException:
                if idempotent and attempt <= self._retries:
                    log.warning("heroku %s: timed out, retrying (attempt %d)", what, attempt)
                    await self._sleep(self._delay(attempt))
                    continue
                raise HerokuUnavailable(
                    f"Heroku did not answer in time while {what}"
                    + ("" if idempotent else " — it may or may not have been done; check before retrying")
                ) from None
            except httpx.TransportError as exc:
                if attempt <= self._retries and isinstance(exc, httpx.ConnectError):
                    await self._sleep(self._delay(attempt))
                    continue
                raise HerokuUnavailable(
                    f"Could not reach Heroku while {what} ({type(exc).__name__})"
                ) from None

            finally:
                self._in_flight -= 1
            self._observe(response)
            status = response.status_code
            if status < 400:
                if status == 204 or not response.content:
                    return None
                try:
                    return response.json()
                except ValueError:
                    raise HerokuUnavailable(f"Heroku sent a malformed response while {what}") from None
            message = _error_message(response)
            if status == 429:
                # Heroku documents no Retry-After: without one, the wait is the refill of a token.
                retry_after = _retry_after(response)
                if retry_after is None:
                    retry_after = max(self._tokens.wait(self._clock()), 1 / REFILL_PER_S)
                if attempt <= self._retries and retry_after <= MAX_RETRY_AFTER_S:
                    log.warning("heroku %s: rate limited, retrying after %.1fs", what, retry_after)
                    await self._sleep(retry_after)
                    continue
                raise HerokuRateLimited(
                    f"Heroku is rate-limiting this API key; try again in {whole_seconds(retry_after)}s",
                    retry_after,
                )
            if status >= 500:
                if idempotent and attempt <= self._retries:
                    log.warning("heroku %s: HTTP %d, retrying (attempt %d)", what, status, attempt)
                    await self._sleep(self._delay(attempt))
                    continue
                raise HerokuUnavailable(
                    f"Heroku failed (HTTP {status}) while {what}"
                    + ("" if idempotent else " — it may or may not have been done; check before retrying")
                )
            if status == 401:
                raise HerokuAuthError("Heroku rejected the API key (HTTP 401): check HEROKU_API_KEY")
            if status == 403:
                raise HerokuForbidden(f"Heroku refused access while {what} (HTTP 403): {message}")
            if status == 404:
                raise HerokuNotFound(f"Heroku says not found while {what}: {message}")
            raise HerokuRejected(f"Heroku refused while {what} (HTTP {status}): {message}")

    async def _pace(self, what: str) -> None:
        """Wait for a token (or for this request's turn while the pool runs low); refuse without
        sending when the wait would be longer than anyone waits: that request was bound to fail."""
        if self._tokens.remaining is None:
            # Before the first answer, ask how full the pool is: that call costs no token.
            if self._learning is None:
                self._learning = asyncio.ensure_future(self._learn_pool())
            await asyncio.shield(self._learning)
        now = self._clock()
        wait = self._tokens.take(now, MAX_RETRY_AFTER_S)
        if wait is None:
            needed = self._tokens.wait(now)
            log.warning("heroku %s: not sent, the rate-limit pool is empty for %.0fs", what, needed)
            raise HerokuRateLimited(
                f"Heroku's rate limit for this API key is used up (it refills 75 requests a minute); "
                f"nothing was sent. Try again in {whole_seconds(needed)}s",
                needed,
            )
        if wait > 0:
            log.info("heroku %s: pacing %.1fs (the rate-limit pool is low)", what, wait)
            await self._sleep(wait)

    async def _learn_pool(self) -> None:
        """`GET /account/rate-limits` (free; Platform API Reference, Rate Limits). Once: when it
        fails, every answer's `RateLimit-Remaining` tells the same soon enough."""
        try:
            response = await self._http.get(
                f"{self._platform}/account/rate-limits",
                headers={"Accept": PLATFORM_ACCEPT, "Authorization": f"Bearer {self._key}"},
            )
            remaining = response.json().get("remaining") if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError, AttributeError):
            return
        if isinstance(remaining, int) and not isinstance(remaining, bool) and remaining >= 0:
            self._tokens.observe(remaining, self._clock(), in_flight=self._in_flight)

    def _observe(self, response: httpx.Response) -> None:
        raw = response.headers.get("RateLimit-Remaining", "")
        if raw.isdigit():
            self._tokens.observe(int(raw), self._clock(), in_flight=self._in_flight)

    def _delay(self, attempt: int) -> float:
        return float(self._backoff * (2 ** (attempt - 1)) * (0.75 + random.random() / 2))

    async def _get(self, path: str, what: str, **kw: Any) -> JSON:
        return await self._request("GET", self._platform + path, what=what, **kw)

    # -- Platform API --------------------------------------------------------------

    async def databases(self, app: str) -> list[Database]:
        """The app's heroku-postgresql attachments, DATABASE first (as the CLI resolves it)."""
        rows = await self._get(
            f"/apps/{_seg(app)}/addon-attachments",
            f"listing {app}'s add-ons",
            headers={"Accept": SDK_ACCEPT, "Accept-Inclusion": "addon:plan,config_vars"},
        )
        with _parsing("add-on attachments"):
            found = self._databases(rows)
        found.sort(key=lambda d: (d.attachment_name != "DATABASE", d.attachment_name))
        return found

    @staticmethod
    def _databases(rows: JSON) -> list[Database]:
        found: list[Database] = []
        for row in _list(rows, "add-on attachments"):
            addon = row.get("addon") or {}
            plan = (addon.get("plan") or {}).get("name") or ""
            service = (addon.get("addon_service") or {}).get("name") or plan.split(":", 1)[0]
            if service != POSTGRES_SERVICE:
                continue
            name = str(row.get("name") or "DATABASE")
            found.append(
                Database(
                    addon_id=str(addon.get("id") or ""),
                    addon_name=str(addon.get("name") or ""),
                    plan=plan,
                    attachment_name=name,
                    config_var=f"{name}_URL",
                )
            )
        return found

    async def database(self, app: str) -> Database:
        dbs = await self.databases(app)
        if not dbs:
            raise NoDatabase(f"{app} has no Heroku Postgres database attached")
        return dbs[0]

    async def config_vars(self, app: str) -> dict[str, str]:
        data = await self._get(f"/apps/{_seg(app)}/config-vars", f"reading {app}'s config vars")
        if not isinstance(data, dict):
            raise HerokuUnavailable("Heroku sent malformed config vars")
        return {str(k): str(v) for k, v in data.items() if v is not None}

    async def update_config_vars(self, app: str, changes: Mapping[str, str | None]) -> dict[str, str]:
        data = await self._request(
            "PATCH",
            f"{self._platform}/apps/{_seg(app)}/config-vars",
            what=f"setting {app}'s config vars",
            json=dict(changes),
        )
        with _parsing("config vars"):
            return {str(k): str(v) for k, v in (data or {}).items() if v is not None}

    async def formation(self, app: str) -> tuple[ProcessType, ...]:
        rows = await self._get(f"/apps/{_seg(app)}/formation", f"reading {app}'s formation")
        with _parsing("formation"):
            return self._formation(rows)

    @staticmethod
    def _formation(rows: JSON) -> tuple[ProcessType, ...]:
        return tuple(
            ProcessType(
                type=str(r.get("type", "")),
                quantity=int(r.get("quantity") or 0),
                command=str(r.get("command") or ""),
                size=str(r.get("size") or ""),
            )
            for r in _list(rows, "formation")
        )

    async def dynos(self, app: str) -> list[Dyno]:
        rows = await self._get(f"/apps/{_seg(app)}/dynos", f"listing {app}'s dynos")
        with _parsing("dynos"):
            return [
                Dyno(name=str(r.get("name", "")), type=str(r.get("type", "")), state=str(r.get("state", "")))
                for r in _list(rows, "dynos")
            ]

    async def restart(self, app: str, process_type: str | None = None) -> None:
        path = f"/apps/{_seg(app)}/dynos" + (f"/{_seg(process_type)}" if process_type else "")
        what = f"restarting {app}'s {process_type + ' ' if process_type else ''}dynos"
        await self._request("DELETE", self._platform + path, what=what)

    async def buildpacks(self, app: str) -> list[str]:
        rows = await self._get(f"/apps/{_seg(app)}/buildpack-installations", f"reading {app}'s buildpacks")
        return _buildpacks(rows)

    async def set_buildpacks(self, app: str, buildpacks: list[str]) -> list[str]:
        rows = await self._request(
            "PUT",
            f"{self._platform}/apps/{_seg(app)}/buildpack-installations",
            what=f"updating {app}'s buildpacks",
            json={"updates": [{"buildpack": b} for b in buildpacks]},
        )
        return _buildpacks(rows)

    async def log_drains(self, app: str) -> list[dict[str, Any]]:
        return _list(
            await self._get(f"/apps/{_seg(app)}/log-drains", f"listing {app}'s log drains"), "drains"
        )

    async def add_log_drain(self, app: str, url: str) -> dict[str, Any]:
        data = await self._request(
            "POST",
            f"{self._platform}/apps/{_seg(app)}/log-drains",
            what=f"adding a log drain to {app}",
            json={"url": url},
        )
        return data if isinstance(data, dict) else {}

    async def remove_log_drain(self, app: str, drain_id: str) -> None:
        await self._request(
            "DELETE",
            f"{self._platform}/apps/{_seg(app)}/log-drains/{_seg(drain_id)}",
            what=f"removing {app}'s log drain",
        )

    async def webhooks(self, app: str) -> list[dict[str, Any]]:
        return _list(await self._get(f"/apps/{_seg(app)}/webhooks", f"listing {app}'s webhooks"), "webhooks")

    async def add_webhook(
        self, app: str, url: str, *, include: Sequence[str], secret: str, level: str = "sync"
    ) -> dict[str, Any]:
        """Subscribe `url` to the app's `include` events; Heroku signs each delivery with `secret`.

        Level "sync": Heroku retries a delivery that gets no 2xx for up to 72 hours; "notify" is
        one fire-and-forget attempt, lost when pgconn is restarting (Platform schema
        `app-webhook.level`, Dev Center changelog 2525)."""
        data = await self._request(
            "POST",
            f"{self._platform}/apps/{_seg(app)}/webhooks",
            what=f"subscribing to {app}'s webhooks",
            json={"include": list(include), "level": level, "url": url, "secret": secret},
        )
        return data if isinstance(data, dict) else {}

    async def remove_webhook(self, app: str, webhook_id: str) -> None:
        await self._request(
            "DELETE",
            f"{self._platform}/apps/{_seg(app)}/webhooks/{_seg(webhook_id)}",
            what=f"removing {app}'s webhook subscription",
        )

    async def releases(self, app: str, newest: int = 10) -> list[Release]:
        """The app's latest releases, newest first (the Range header the CLI sends)."""
        rows = await self._get(
            f"/apps/{_seg(app)}/releases",
            f"listing {app}'s releases",
            headers={"Range": f"version ..; max={int(newest)}, order=desc"},
        )
        with _parsing("releases"):
            return [
                Release(
                    version=int(r["version"]),
                    slug_id=str((r.get("slug") or {}).get("id") or "") or None,
                    description=str(r.get("description") or "")[:200],
                    created_at=str(r.get("created_at") or ""),
                )
                for r in _list(rows, "releases")
            ]

    async def builds(self, app: str) -> list[Build]:
        """The app's builds, with the buildpacks each ran (what its slug carries)."""
        rows = await self._get(f"/apps/{_seg(app)}/builds", f"listing {app}'s builds")
        with _parsing("builds"):
            return [
                Build(
                    id=str(r.get("id") or ""),
                    slug_id=str((r.get("slug") or {}).get("id") or "") or None,
                    buildpacks=tuple(
                        str(b.get("name") or b.get("url") or "")
                        for b in (r.get("buildpacks") or [])
                        if isinstance(b, dict)
                    ),
                    status=str(r.get("status") or ""),
                )
                for r in _list(rows, "builds")
            ]

    # -- Heroku Postgres API -------------------------------------------------------

    async def pg_info(self, database: Database) -> PgInfo:
        data = await self._request(
            "GET",
            f"{self._data}/client/v11/databases/{_seg(database.addon_id)}",
            what=f"reading pg:info for {database.addon_name}",
        )
        return parse_pg_info(data, database)

    async def connection_reset(self, database: Database) -> None:
        await self._request(
            "POST",
            f"{self._data}/client/v11/databases/{_seg(database.addon_id)}/connection_reset",
            what=f"resetting {database.addon_name}'s connections",
        )

    async def enable_connection_pooling(self, database: Database, app: str) -> dict[str, Any]:
        data = await self._request(
            "POST",
            f"{self._data}/client/v11/databases/{_seg(database.addon_name)}/connection-pooling",
            what=f"enabling connection pooling on {database.addon_name}",
            json={"name": None, "credential": "default", "app": app},
        )
        return data if isinstance(data, dict) else {}


def parse_pg_info(data: JSON, database: Database) -> PgInfo:
    """The `info` list of pg:info → ordered fields plus the parsed connection numbers."""
    with _parsing("pg:info"):
        return _pg_info(data, database)


def _pg_info(data: JSON, database: Database) -> PgInfo:
    if not isinstance(data, dict) or not isinstance(data.get("info"), list):
        raise HerokuUnavailable("Heroku sent a malformed pg:info response")
    fields: list[tuple[str, str]] = []
    for item in data["info"]:
        if not isinstance(item, dict):
            continue
        values = item.get("values") or []
        fields.append((str(item.get("name", "")), ", ".join(str(v) for v in values)))
    used = limit = None
    for name, value in fields:
        if name == "Connections":
            used, limit = _parse_connections(value)
    return PgInfo(fields=tuple(fields), connections_used=used, connections_limit=limit, plan=database.plan)


def _parse_connections(value: str) -> tuple[int | None, int | None]:
    # "18/20", "18/20 (90%)", or "18" on plans that do not report a limit.
    head = value.split()[0] if value.split() else ""
    used_s, _, limit_s = head.partition("/")
    used = int(used_s) if used_s.isdigit() else None
    limit = int(limit_s) if limit_s.isdigit() else None
    return used, limit


def _buildpacks(rows: JSON) -> list[str]:
    with _parsing("buildpacks"):
        ordered = sorted(_list(rows, "buildpacks"), key=lambda r: int(r.get("ordinal") or 0))
        return [
            str((r.get("buildpack") or {}).get("name") or (r.get("buildpack") or {}).get("url"))
            for r in ordered
        ]


def _list(data: JSON, what: str) -> list[dict[str, Any]]:
    if not isinstance(data, list):
        raise HerokuUnavailable(f"Heroku sent malformed {what}")
    return [r for r in data if isinstance(r, dict)]


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After when Heroku sends one (tests and proxies do; Heroku documents none)."""
    raw = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase or "no details"
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])[:300]
    return response.reason_phrase or "no details"


__all__ = ["HerokuClient", "HerokuError", "parse_pg_info"]
