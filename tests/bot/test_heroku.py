"""HerokuClient against the Heroku emulator over real HTTP: shapes, errors, retries."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest

from bot.errors import (
    HerokuAuthError,
    HerokuNotFound,
    HerokuRateLimited,
    HerokuUnavailable,
    NoDatabase,
)
from bot.heroku import HerokuClient, parse_pg_info
from bot.readings import Database
from emulators.heroku import HerokuEmulator
from tests.support import API_KEY

pytestmark = pytest.mark.usefixtures("heroku")


@pytest.fixture
async def client(heroku: HerokuEmulator) -> AsyncIterator[HerokuClient]:
    heroku.faults.clear()
    heroku.requests.clear()
    heroku.latency = 0.0
    slept: list[float] = []
    # The client's clock moves by what it "slept": its rate-limit estimate refills as it would.
    clock = [time.monotonic()]

    async def no_sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    # A client timeout no answer of the emulator comes near on a busy machine: a timed-out
    # request would be retried, and the exact retry counts below would be off.
    async with httpx.AsyncClient(timeout=10) as http:
        c = HerokuClient(
            http, api_key=API_KEY, platform_url=heroku.url, data_url=heroku.url, sleep=no_sleep,
            clock=lambda: clock[0],
        )
        c.slept = slept  # type: ignore[attr-defined]
        yield c
    heroku.faults.clear()


async def test_database_resolution_and_pg_info(client: HerokuClient) -> None:
    db = await client.database("my-app")
    assert db.attachment_name == "DATABASE" and db.config_var == "DATABASE_URL"
    assert db.plan == "heroku-postgresql:essential-0"
    info = await client.pg_info(db)
    assert info.connections_limit == 20 and info.connections_used is not None
    assert info.get("Plan") == "Essential 0"
    formation = await client.formation("my-app")
    assert {p.type: p.quantity for p in formation} == {"web": 3, "worker": 1}
    assert "DATABASE_URL" in await client.config_vars("my-app")


async def test_unknown_app_is_not_found(client: HerokuClient) -> None:
    with pytest.raises(HerokuNotFound) as info:
        await client.database("no-such-app")
    assert "not found" in info.value.message


async def test_bad_key_is_an_auth_error_that_names_the_variable(heroku: HerokuEmulator) -> None:
    async with httpx.AsyncClient() as http:
        c = HerokuClient(http, api_key="wrong", platform_url=heroku.url, data_url=heroku.url)
        with pytest.raises(HerokuAuthError) as info:
            await c.formation("my-app")
    assert "HEROKU_API_KEY" in info.value.message and "wrong" not in info.value.message


async def test_5xx_burst_is_retried_then_succeeds(client: HerokuClient, heroku: HerokuEmulator) -> None:
    heroku.inject(path="/formation", status=503, times=2)
    assert await client.formation("my-app")
    assert len(client.slept) == 2  # type: ignore[attr-defined]


async def test_persistent_5xx_gives_up_with_a_sentence(client: HerokuClient, heroku: HerokuEmulator) -> None:
    heroku.inject(path="/formation", status=500, times=10)
    with pytest.raises(HerokuUnavailable) as info:
        await client.formation("my-app")
    assert "HTTP 500" in info.value.message
    assert len([r for r in heroku.requests if r.path.endswith("/formation")]) == 4  # 1 + 3 retries


async def test_destructive_call_is_not_retried_after_a_5xx(
    client: HerokuClient, heroku: HerokuEmulator
) -> None:
    heroku.inject(path="/dynos", method="DELETE", status=500, times=5)
    with pytest.raises(HerokuUnavailable) as info:
        await client.restart("my-app")
    assert "may or may not have been done" in info.value.message
    assert len([r for r in heroku.requests if r.method == "DELETE"]) == 1


async def test_429_retry_after_is_honoured_then_surfaced(
    client: HerokuClient, heroku: HerokuEmulator
) -> None:
    heroku.inject(path="/config-vars", status=429, retry_after=2, times=1)
    assert await client.config_vars("my-app")
    assert client.slept == [2.0]  # type: ignore[attr-defined]
    heroku.inject(path="/config-vars", status=429, retry_after=60, times=1)
    with pytest.raises(HerokuRateLimited) as info:
        await client.config_vars("my-app")
    assert info.value.retry_after == 60


async def no_wait(seconds: float) -> None:
    """Retries without their back-off: these tests count attempts, not seconds."""


async def test_timeout_and_malformed_json(client: HerokuClient, heroku: HerokuEmulator) -> None:
    # Only the slowed path is asked here, so a short timeout cannot trip on anything else; each
    # answer is three times later than the timeout, however busy the machine.
    heroku.inject(path="/formation", status=200, delay=1.5, times=10)
    async with httpx.AsyncClient(timeout=0.5) as http:
        impatient = HerokuClient(
            http, api_key=API_KEY, platform_url=heroku.url, data_url=heroku.url, sleep=no_wait
        )
        with pytest.raises(HerokuUnavailable) as info:
            await impatient.formation("my-app")
    assert "did not answer in time" in info.value.message
    assert len([r for r in heroku.requests if r.path.endswith("/formation")]) == 4  # 1 + 3 retries
    heroku.faults.clear()
    heroku.inject(path="/config-vars", status=200, body=b"{not json", times=1)
    with pytest.raises(HerokuUnavailable) as info2:
        await client.config_vars("my-app")
    assert "malformed" in info2.value.message


async def test_app_without_postgres_is_no_database(client: HerokuClient, heroku: HerokuEmulator) -> None:
    heroku.inject(path="/addon-attachments", status=200, body=b"[]", times=1)
    with pytest.raises(NoDatabase):
        await client.database("my-app")


def test_parse_pg_info_reads_connections_and_keeps_field_order() -> None:
    db = Database("id", "postgresql-x", "heroku-postgresql:standard-0", "DATABASE", "DATABASE_URL")
    info = parse_pg_info(
        {"info": [{"name": "Plan", "values": ["Standard 0"]}, {"name": "Connections", "values": ["97/120"]}]},
        db,
    )
    assert info.fields == (("Plan", "Standard 0"), ("Connections", "97/120"))
    assert (info.connections_used, info.connections_limit) == (97, 120)
    with pytest.raises(HerokuUnavailable):
        parse_pg_info({"nope": 1}, db)


async def test_concurrent_loads_of_one_app_share_one_fetch(
    client: HerokuClient, heroku: HerokuEmulator
) -> None:
    import asyncio

    from bot.report import AppContextLoader

    heroku.latency = 0.05
    loader = AppContextLoader(client)
    contexts = await asyncio.gather(*(loader.load("my-app") for _ in range(30)))
    heroku.latency = 0.0
    assert len({c.database.addon_id for c in contexts}) == 1
    assert len([r for r in heroku.requests if r.path.endswith("/addon-attachments")]) == 1
    # Nothing is kept: the next load asks Heroku again.
    await loader.load("my-app")
    assert len([r for r in heroku.requests if r.path.endswith("/addon-attachments")]) == 2
