"""Following Add PgBouncer's next release by polling `GET /apps/{app}/releases` (the fallback when
no `api:release` webhook comes: the app is not watched here), against the Heroku emulator's builds
and a real Redis; the verdict posted to the Slack emulator."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import redis

from bot.config import Settings
from bot.dependencies import Services, build_services
from bot.heroku import PLATFORM_ACCEPT
from bot.remediation.fixes import Outcome
from bot.verification import checker
from emulators.heroku import HerokuEmulator
from emulators.slack import Message, SlackEmulator
from sandbox.servers import LocalPostgres, LocalRedis
from tests.conftest import seed_apps
from tests.harness import ADMIN, OPS_CHANNEL
from tests.support import API_KEY, BOT_TOKEN

ADDED = Outcome(ok=True, summary="added", done=("buildpacks are now heroku/pgbouncer, heroku/python",))


@pytest.fixture
async def services(
    heroku: HerokuEmulator, slack: SlackEmulator, redis_server: LocalRedis, app_dsn: str, pg: LocalPostgres
) -> AsyncIterator[Services]:
    seed_apps(heroku, app_dsn, pg)
    url = redis_server.url.rsplit("/", 1)[0] + "/4"
    redis.Redis.from_url(url).flushdb()
    settings = Settings.from_env(
        {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": "s",
            "SLACK_API_URL": f"{slack.url}/api/",
            "HEROKU_API_KEY": API_KEY,
            "HEROKU_API_URL": heroku.url,
            "HEROKU_DATA_API_URL": heroku.url,
            "REDIS_URL": url,
            "PGCONN_APPS": "my-app",
            "PGCONN_VERIFY_AFTER": "0.1",
            "PGCONN_VERIFY_POLL": "0.1",
        }
    )
    built = build_services(settings)
    yield built
    await built.aclose()
    redis.Redis.from_url(url).flushdb()


async def deploy(heroku: HerokuEmulator, procfile: dict[str, str]) -> None:
    source = f"https://example.com/src-{time.monotonic_ns()}.tgz"
    heroku.sources[source] = procfile
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            f"{heroku.url}/apps/my-app/builds",
            json={"source_blob": {"url": source}},
            headers={"Authorization": f"Bearer {API_KEY}", "Accept": PLATFORM_ACCEPT},
        )
    assert response.status_code == 201


async def said(services: Services, slack: SlackEmulator) -> Message:
    """Run the checker as the lasting task would, until the verdict is posted."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        await checker.verify_due(services)
        found = [m for m in slack.messages(OPS_CHANNEL) if "checked by pgconn" in m.text]
        if found:
            return found[-1]
        await asyncio.sleep(0.05)
    raise AssertionError("no verdict within 15 s")


async def add_pgbouncer(services: Services, heroku: HerokuEmulator) -> None:
    """What the fix changes (buildpacks, then its config vars: a release on the same slug)."""
    await services.heroku.set_buildpacks("my-app", ["heroku/pgbouncer", "heroku/python"])
    await services.heroku.update_config_vars(
        "my-app", {"PGBOUNCER_DEFAULT_POOL_SIZE": "2", "PGBOUNCER_RESERVE_POOL_SIZE": "1"}
    )
    check = await checker.schedule_after_fix(
        services, action_id="pgconn.add_pgbouncer", app="my-app", process_type=None, user=ADMIN,
        channel=OPS_CHANNEL, thread_ts=None, before=None, outcome=ADDED,
    )
    assert check is not None and check.phase == "release"
    assert check.release_after == heroku.apps["my-app"].current_release.version


async def test_polling_finds_the_deploy_that_carries_pgbouncer(
    services: Services, heroku: HerokuEmulator, slack: SlackEmulator
) -> None:
    slack.reset()
    await add_pgbouncer(services, heroku)
    # Polled, with nothing deployed yet: still waiting, nothing said.
    for _ in range(3):
        await checker.verify_due(services)
        await asyncio.sleep(0.12)
    assert not [m for m in slack.messages(OPS_CHANNEL) if "checked by pgconn" in m.text]
    assert heroku.apps["my-app"].webhooks == []  # no webhook could have woken it
    await deploy(
        heroku,
        {
            "web": "bin/start-pgbouncer gunicorn app.wsgi -w 3",
            "worker": "bin/start-pgbouncer celery -A app worker",
        },
    )
    version = heroku.apps["my-app"].current_release.version
    message = await said(services, slack)
    assert "verified:" in message.text and f"after release v{version}" in message.text
    stored = await services.verifications.for_app("my-app")
    assert stored[-1].verdict == "verified" and stored[-1].action == "add_pgbouncer"


async def test_a_deploy_built_without_the_buildpack_is_not_fixed_with_add_pgbouncer_again(
    services: Services, heroku: HerokuEmulator, slack: SlackEmulator
) -> None:
    slack.reset()
    await add_pgbouncer(services, heroku)
    # Someone removed the buildpack again before deploying.
    await services.heroku.set_buildpacks("my-app", ["heroku/python"])
    await deploy(heroku, {"web": "bin/start-pgbouncer gunicorn app.wsgi", "worker": "celery -A app worker"})
    message = await said(services, slack)
    assert "not fixed:" in message.text and "built without heroku/pgbouncer" in message.text
    buttons = [e for b in message.blocks if b.get("type") == "actions" for e in b["elements"]]
    assert [b["action_id"] for b in buttons] == ["pgconn.add_pgbouncer"]
