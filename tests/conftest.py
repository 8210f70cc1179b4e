"""Real servers for the whole suite: PostgreSQL 16 and Redis, started once per session.

A role with CONNECTION LIMIT 20 plays the Heroku app's credential (the classic
hobby-plan limit), so "too many connections for role" is the real server's error.
Recognisable secrets are used everywhere so the suite can prove none of them leak.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
import redis

from emulators.heroku import HerokuEmulator
from emulators.pagerduty import PagerDutyEmulator
from emulators.serve import serve_in_thread
from emulators.slack import SlackEmulator
from sandbox.load import ConnectionLoad
from sandbox.servers import LocalPostgres, LocalRedis
from tests.harness import (
    ADMIN,
    ALERT_CHANNEL,
    CHANNEL_MEMBER,
    GROUP,
    GROUP_MEMBER,
    OPS_CHANNEL,
    PUBLIC_URL,
    STRANGER,
    BotProcess,
    bot_env,
    new_port,
    start_bot,
)
from tests.support import (
    API_KEY,
    APP_DB,
    APP_ROLE,
    BOT_TOKEN,
    DB_PASSWORD,
    ROLE_LIMIT,
    SIGNING_SECRET,
    terminate_role,
)


@pytest.fixture(scope="session")
def pg() -> Iterator[LocalPostgres]:
    server = LocalPostgres.start(max_connections=700)
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{DB_PASSWORD}' CONNECTION LIMIT {ROLE_LIMIT}")
        conn.execute(f"CREATE DATABASE {APP_DB} OWNER {APP_ROLE}")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def app_dsn(pg: LocalPostgres) -> str:
    return pg.dsn(APP_ROLE, DB_PASSWORD, APP_DB)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[LocalRedis]:
    server = LocalRedis.start()
    yield server
    server.stop()


# -- the running system: emulators in-process, the bot as a subprocess ---------------------

MY_APP_FORMATION = [
    {"type": "web", "quantity": 3, "command": "gunicorn app.wsgi -w 3", "size": "basic"},
    {"type": "worker", "quantity": 1, "command": "celery -A app worker -c 4", "size": "basic"},
]


def seed_apps(heroku: HerokuEmulator, app_dsn: str, pg: LocalPostgres) -> None:
    """(Re)create the emulated apps, dropping any state a test changed."""
    for name in ("my-app", "std-app", "bare-app"):
        heroku.apps.pop(name, None)
    heroku.add_app(
        "my-app",
        database_url=app_dsn,
        role=APP_ROLE,
        plan="essential-0",
        formation=MY_APP_FORMATION,
        buildpacks=["heroku/python"],
    )
    heroku.add_app(
        "std-app",
        database_url=app_dsn,
        role=APP_ROLE,
        plan="standard-0",
        formation=[
            {"type": "web", "quantity": 2, "command": "bundle exec puma -t 5:5", "size": "standard-1x"}
        ],
        buildpacks=["heroku/ruby"],
    )
    # A database pgconn cannot reach (the port is closed): holders fail, pg:info still answers.
    heroku.add_app(
        "bare-app",
        database_url=f"postgresql://{APP_ROLE}:{DB_PASSWORD}@127.0.0.1:1/{APP_DB}",
        role=APP_ROLE,
        plan="essential-0",
        formation=[{"type": "web", "quantity": 1, "command": "node server.js", "size": "basic"}],
    )


@pytest.fixture(scope="session")
def heroku(pg: LocalPostgres, app_dsn: str) -> Iterator[HerokuEmulator]:
    emulator = HerokuEmulator(admin_dsn=pg.dsn(), api_key=API_KEY, dyno_boot_seconds=0.3)
    seed_apps(emulator, app_dsn, pg)
    running = serve_in_thread(emulator.app)
    emulator.url = running.url
    yield emulator
    running.stop()


@pytest.fixture(scope="session")
def slack() -> Iterator[SlackEmulator]:
    emulator = SlackEmulator(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET)
    emulator.add_channel(ALERT_CHANNEL, "db-alerts")
    emulator.add_channel(OPS_CHANNEL, "ops")
    for user_id, name in ((ADMIN, "alice"), (GROUP_MEMBER, "grace"), (STRANGER, "mallory")):
        emulator.add_user(user_id, name)
    emulator.add_usergroup(GROUP, [GROUP_MEMBER])
    emulator.add_user(CHANNEL_MEMBER, "carol")
    emulator.channels[ALERT_CHANNEL].members = [ADMIN, CHANNEL_MEMBER]
    running = serve_in_thread(emulator.app)
    emulator.url = running.url
    yield emulator
    running.stop()


@pytest.fixture(scope="session")
def pagerduty() -> Iterator[PagerDutyEmulator]:
    """PagerDuty's Events API v2 (emulators/pagerduty.py); tests reset() it before use."""
    emulator = PagerDutyEmulator()
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def bot(slack: SlackEmulator, heroku: HerokuEmulator, redis_server: LocalRedis) -> Iterator[BotProcess]:
    process = start_bot(
        bot_env(slack_url=slack.url, heroku_url=heroku.url, redis_url=redis_server.url, port=new_port())
    )
    slack.request_url = process.events_url
    yield process
    process.stop()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "late_acks: the test makes the bot acknowledge Slack late on purpose (a frozen bot)"
    )


@pytest.fixture
def system(
    request: pytest.FixtureRequest,
    bot: BotProcess,
    slack: SlackEmulator,
    heroku: HerokuEmulator,
    pg: LocalPostgres,
    app_dsn: str,
    redis_server: LocalRedis,
) -> Iterator[System]:
    """A clean slate for one end-to-end test: apps reseeded, no faults, no held connections."""
    seed_apps(heroku, app_dsn, pg)
    heroku.faults.clear()
    heroku.requests.clear()
    heroku.rate_limit.set(heroku.rate_limit.CAPACITY)
    slack.reset()
    heroku.latency = 0.0
    redis.Redis.from_url(redis_server.url).flushdb()
    terminate_role(pg)
    load = ConnectionLoad(app_dsn)
    slack.request_url = bot.events_url
    # Heroku delivers the apps' webhooks to the public URL the bot subscribed with: here, to it.
    heroku.webhooks.routes = {PUBLIC_URL: bot.url}
    heroku.webhooks.deliveries.clear()
    yield System(
        bot=bot, slack=slack, heroku=heroku, pg=pg, load=load, app_dsn=app_dsn, redis_url=redis_server.url
    )
    load.close()
    terminate_role(pg)
    heroku.webhooks.routes = {}
    # Slack shows the person an error when an acknowledgement takes over 3 s, and the emulator
    # marks such a delivery `late`: no end-to-end test may have one (acks take milliseconds).
    late = [f"{d.kind} acknowledged after {d.elapsed:.1f}s" for d in slack.deliveries if d.late]
    assert late == [] or request.node.get_closest_marker("late_acks") is not None, late


@dataclass
class System:
    bot: BotProcess
    slack: SlackEmulator
    heroku: HerokuEmulator
    pg: LocalPostgres
    load: ConnectionLoad
    app_dsn: str
    redis_url: str
