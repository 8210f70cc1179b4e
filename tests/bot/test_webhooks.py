"""Heroku app webhooks, below the HTTP route: the signature, the event, the subscription
(HerokuClient + `watch`/`unwatch` against the Heroku emulator and a real Redis), and
what a verified event makes pgconn forget."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import redis

from bot.config import Settings
from bot.dependencies import build_services
from bot.errors import HerokuAuthError, HerokuNotFound, HerokuRejected
from bot.heroku import HerokuClient
from bot.reserved import keep_reserved_once
from bot.state import connect_redis
from bot.state.webhooks import WebhookSecrets, secret_key
from bot.watch import unwatch, watch, webhook_url
from bot.webhooks import INCLUDE, parse_event, sign, signature_valid
from emulators.heroku import HerokuEmulator
from emulators.heroku_state import EmulatedApp
from sandbox.servers import LocalPostgres, LocalRedis
from tests.support import API_KEY, BOT_TOKEN, DRAIN_TOKEN, terminate_role

PUBLIC_URL = "https://pgconn.example.com"
APP = "my-app"

# --- the signature, as a pure function ------------------------------------------------

# Computed outside Python: printf '%s' BODY | openssl dgst -sha256 -hmac 12345 -binary | base64
VECTOR_BODY = b'{"resource":"formation","action":"update"}'
VECTOR_SIGNATURE = "f78YdbS9Za+bO+BYK2o6GCO2dxNBNKb7OC6qjIh5sHU="


def test_signature_is_base64_hmac_sha256_of_the_raw_body() -> None:
    assert sign("12345", VECTOR_BODY) == VECTOR_SIGNATURE
    assert signature_valid("12345", VECTOR_BODY, VECTOR_SIGNATURE)


@pytest.mark.parametrize(
    ("secret", "body", "signature"),
    [
        ("12346", VECTOR_BODY, VECTOR_SIGNATURE),  # another secret
        ("12345", VECTOR_BODY + b" ", VECTOR_SIGNATURE),  # the body changed by one byte
        ("12345", b'{"action":"update","resource":"formation"}', VECTOR_SIGNATURE),  # same JSON, other bytes
        ("12345", VECTOR_BODY, None),
        ("12345", VECTOR_BODY, ""),
        ("12345", VECTOR_BODY, VECTOR_SIGNATURE[:-2]),
        ("12345", VECTOR_BODY, "sha256=" + VECTOR_SIGNATURE),
        ("12345", VECTOR_BODY, "7fbf1875b4bd65af9b3be0582b6a3a1823b677134134a6fb382eaa8c8879b075"),  # hex
        ("12345", VECTOR_BODY, "ünïcödé"),
        ("", VECTOR_BODY, sign("", VECTOR_BODY)),  # no secret: nothing verifies, not even this
        (None, VECTOR_BODY, sign("", VECTOR_BODY)),
    ],
)
def test_anything_else_is_refused(secret: str | None, body: bytes, signature: str | None) -> None:
    assert not signature_valid(secret, body, signature)


def test_event_kind_is_read_from_the_body() -> None:
    event = parse_event(b'{"resource": "formation", "action": "update", "data": {"quantity": 4}}')
    assert event is not None
    assert (event.resource, event.action, event.relevant) == ("formation", "update", True)
    release = parse_event(b'{"resource": "release", "action": "create"}')
    assert release is not None and release.relevant
    dyno = parse_event(b'{"resource": "dyno", "action": "create"}')
    assert dyno is not None and not dyno.relevant
    odd = parse_event(b'{"resource": "release", "action": "\\n%s forged log line"}')
    assert odd is not None and odd.action == "unknown"


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"\xff\xfe", b"[1, 2]", b'"formation"', b"{}", b'{"resource": 7}',
     b'{"resource": "Formation\\nforged"}', b"[" * 100_000],
)
def test_a_body_that_is_no_webhook_event_is_none(body: bytes) -> None:
    assert parse_event(body) is None


# --- the subscription, against the emulator and a real Redis ----------------------------


@pytest.fixture
def secrets_redis(redis_server: LocalRedis) -> Iterator[redis.Redis]:
    """Database 2: nobody else's."""
    client = redis.Redis.from_url(redis_server.url.rsplit("/", 1)[0] + "/2", decode_responses=True)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
async def secrets(secrets_redis: redis.Redis, redis_server: LocalRedis) -> AsyncIterator[WebhookSecrets]:
    conn = connect_redis(redis_server.url.rsplit("/", 1)[0] + "/2")
    yield WebhookSecrets(conn)
    await conn.aclose()


@pytest.fixture
def app(heroku: HerokuEmulator) -> Iterator[EmulatedApp]:
    emulated = heroku.apps[APP]
    emulated.webhooks.clear()
    emulated.log_drains.clear()
    heroku.faults.clear()
    yield emulated
    emulated.webhooks.clear()
    emulated.log_drains.clear()
    heroku.faults.clear()


@pytest.fixture
async def client(heroku: HerokuEmulator) -> AsyncIterator[HerokuClient]:
    async with httpx.AsyncClient(timeout=5) as http:
        yield HerokuClient(http, api_key=API_KEY, platform_url=heroku.url, data_url=heroku.url)


async def test_client_adds_lists_and_removes_webhooks(client: HerokuClient, app: EmulatedApp) -> None:
    url = webhook_url(PUBLIC_URL, APP)
    created = await client.add_webhook(APP, url, include=INCLUDE, secret="s" * 64)
    assert created["url"] == url and "secret" not in created  # Heroku never shows a secret back
    (listed,) = await client.webhooks(APP)
    # Level sync: Heroku retries a delivery pgconn could not take (bot.heroku.add_webhook).
    assert (listed["id"], listed["include"], listed["level"]) == (created["id"], list(INCLUDE), "sync")
    assert app.webhooks[0].secret == "s" * 64
    with pytest.raises(HerokuRejected):  # the same URL twice
        await client.add_webhook(APP, url, include=INCLUDE, secret="t" * 64)
    await client.remove_webhook(APP, created["id"])
    assert await client.webhooks(APP) == []
    with pytest.raises(HerokuNotFound):
        await client.remove_webhook(APP, created["id"])


async def test_client_maps_webhook_errors(heroku: HerokuEmulator, app: EmulatedApp) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        bad_key = HerokuClient(http, api_key="wrong", platform_url=heroku.url, data_url=heroku.url)
        with pytest.raises(HerokuAuthError):
            await bad_key.webhooks(APP)


def _one_hook(app: EmulatedApp) -> tuple[str, str]:
    (hook,) = app.webhooks
    assert hook.secret is not None
    return hook.id, hook.secret


async def test_watch_subscribes_once_with_a_secret_kept_in_redis(
    client: HerokuClient, app: EmulatedApp, secrets: WebhookSecrets, secrets_redis: redis.Redis
) -> None:
    message = await watch(client, APP, PUBLIC_URL, DRAIN_TOKEN, secrets)
    assert "now receives" in message and "subscribed to `my-app`'s formation and release webhooks" in message
    hook_id, secret = _one_hook(app)
    (hook,) = app.webhooks
    assert hook.url == f"{PUBLIC_URL}/webhooks/heroku/{APP}" and hook.include == list(INCLUDE)
    assert hook.level == "sync" and re.fullmatch(r"[0-9a-f]{64}", secret)
    assert secrets_redis.get(secret_key(APP)) == secret
    assert len(app.log_drains) == 1
    assert secret not in message and DRAIN_TOKEN not in message

    again = await watch(client, APP, PUBLIC_URL, DRAIN_TOKEN, secrets)
    assert again == "pgconn already receives `my-app`'s logs and webhooks. Nothing changed."
    assert _one_hook(app) == (hook_id, secret) and len(app.log_drains) == 1

    removed = await unwatch(client, APP, PUBLIC_URL, secrets)
    assert removed.startswith("Removed pgconn's log drain and webhook subscription from `my-app`")
    assert app.webhooks == [] and app.log_drains == [] and secrets_redis.get(secret_key(APP)) is None
    assert await unwatch(client, APP, PUBLIC_URL, secrets) == (
        "pgconn had no log drain or webhook subscription on `my-app`; nothing changed."
    )


async def test_a_subscription_whose_secret_was_lost_is_replaced(
    client: HerokuClient, app: EmulatedApp, secrets: WebhookSecrets, secrets_redis: redis.Redis
) -> None:
    await watch(client, APP, PUBLIC_URL, DRAIN_TOKEN, secrets)
    old_id, old_secret = _one_hook(app)
    secrets_redis.flushdb()  # Redis emptied: nobody can verify the old subscription any more
    message = await watch(client, APP, PUBLIC_URL, DRAIN_TOKEN, secrets)
    assert message.startswith("pgconn already receives `my-app`'s logs.") and "was replaced" in message
    new_id, new_secret = _one_hook(app)
    assert new_id != old_id and new_secret != old_secret
    assert secrets_redis.get(secret_key(APP)) == new_secret


async def test_two_watches_at_once_leave_one_subscription_every_process_can_verify(
    client: HerokuClient, app: EmulatedApp, secrets: WebhookSecrets, secrets_redis: redis.Redis
) -> None:
    await asyncio.gather(*(watch(client, APP, PUBLIC_URL, DRAIN_TOKEN, secrets) for _ in range(2)))
    _, secret = _one_hook(app)
    assert secrets_redis.get(secret_key(APP)) == secret


@pytest.mark.parametrize("redis_url", [None, "redis://127.0.0.1:1/0"], ids=["no-redis", "redis-down"])
async def test_without_redis_the_drain_is_added_and_webhooks_are_not(
    client: HerokuClient, app: EmulatedApp, redis_url: str | None
) -> None:
    conn = connect_redis(redis_url) if redis_url else None
    try:
        message = await watch(client, APP, PUBLIC_URL, DRAIN_TOKEN, WebhookSecrets(conn))
    finally:
        if conn is not None:
            await conn.aclose()
    assert message.startswith("pgconn now receives `my-app`'s logs")
    assert ":warning: Heroku webhooks for `my-app` could not be set up" in message and "Redis" in message
    assert len(app.log_drains) == 1 and app.webhooks == []


async def test_heroku_refusing_the_subscription_keeps_the_drain_and_says_why(
    client: HerokuClient,
    heroku: HerokuEmulator,
    app: EmulatedApp,
    secrets: WebhookSecrets,
    secrets_redis: redis.Redis,
) -> None:
    heroku.inject(path="/webhooks", method="POST", status=403)
    message = await watch(client, APP, PUBLIC_URL, DRAIN_TOKEN, secrets)
    assert message.startswith("pgconn now receives") and "could not be set up: Heroku refused" in message
    assert len(app.log_drains) == 1 and app.webhooks == []
    assert secrets_redis.get(secret_key(APP)) is None  # the next watch starts clean
    await watch(client, APP, PUBLIC_URL, DRAIN_TOKEN, secrets)
    _, secret = _one_hook(app)
    assert secrets_redis.get(secret_key(APP)) == secret


# --- what a verified event makes pgconn forget ------------------------------------------


@pytest.fixture
def settings(heroku: HerokuEmulator) -> Settings:
    return Settings.from_env(
        {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": "s",
            "HEROKU_API_KEY": API_KEY,
            "PGCONN_APPS": APP,
            "HEROKU_API_URL": heroku.url,
            "HEROKU_DATA_API_URL": heroku.url,
        }
    )


def _asked(heroku: HerokuEmulator, suffix: str) -> int:
    return sum(1 for r in heroku.requests if r.path == f"/apps/{APP}{suffix}")


async def test_forgetting_an_app_makes_the_keeper_and_the_alert_engine_ask_heroku_again(
    settings: Settings, heroku: HerokuEmulator, app: EmulatedApp, pg: LocalPostgres
) -> None:
    services = build_services(settings)
    try:
        assert await keep_reserved_once(services) == {APP: True}
        assert await services.alerts._app(APP) is not None
        heroku.requests.clear()
        # Idle: the live reserved connection and the engine's cache are trusted.
        assert await keep_reserved_once(services) == {APP: True}
        await services.alerts._app(APP)
        assert heroku.requests == []

        services.forget_app(APP)
        assert await keep_reserved_once(services) == {APP: True}
        assert _asked(heroku, "/config-vars") == 1  # the keeper re-read DATABASE_URL
        known = await services.alerts._app(APP)
        assert _asked(heroku, "/formation") == 1 and _asked(heroku, "/config-vars") == 2
        assert known is not None and {p.type: p.quantity for p in known.formation} == {"web": 3, "worker": 1}
    finally:
        await services.aclose()
        terminate_role(pg)


async def test_a_forgotten_app_still_falls_back_on_what_was_known_when_heroku_fails(
    settings: Settings, heroku: HerokuEmulator, app: EmulatedApp
) -> None:
    services = build_services(settings)
    try:
        known = await services.alerts._app(APP)
        assert known is not None
        services.alerts.forget(APP)
        heroku.inject(path="/formation", status=503, times=10)
        assert await services.alerts._app(APP) is known
    finally:
        heroku.faults.clear()
        await services.aclose()
