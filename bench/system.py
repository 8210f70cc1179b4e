"""The system under measurement, started the way the tests start it.

Real PostgreSQL 16 and Redis (sandbox.servers), the Heroku and Slack emulators served
in this process on loopback (emulators.serve), and pgconn itself as `python -m bot`
subprocesses configured only through environment variables (tests.harness).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import redis

from emulators.heroku import HerokuEmulator, RecordedRequest
from emulators.serve import RunningServer, serve_in_thread
from emulators.slack import SlackEmulator
from sandbox.process import BotProcess
from sandbox.servers import LocalPostgres, LocalRedis
from tests.harness import (
    ADMIN,
    ALERT_CHANNEL,
    GROUP,
    GROUP_MEMBER,
    OPS_CHANNEL,
    STRANGER,
    bot_env,
    new_port,
    start_bot,
)
from tests.support import API_KEY, APP_DB, APP_ROLE, BOT_TOKEN, DB_PASSWORD, ROLE_LIMIT, SIGNING_SECRET

ROOT = Path(__file__).resolve().parent.parent

APP = "my-app"  # the app people ask about: Essential-0, 20 connections
FORMATION = [
    {"type": "web", "quantity": 3, "command": "gunicorn app.wsgi -w 3", "size": "basic"},
    {"type": "worker", "quantity": 1, "command": "celery -A app worker -c 4", "size": "basic"},
]
# A role without a low limit, for holders over hundreds of connections.
CROWD_ROLE = "crowd_role"
CROWD_PASSWORD = "crowd-pw-3e4d5c"
NOT_WATCHED = "someone-elses-app"  # a button value naming an app outside PGCONN_APPS


def incident_apps(prefix: str, count: int) -> list[str]:
    """Distinct apps, one incident each: no state carries over from one incident to the next."""
    return [f"{prefix}-{i:02d}" for i in range(1, count + 1)]


@dataclass
class System:
    pg: LocalPostgres
    redis_server: LocalRedis
    heroku: HerokuEmulator
    slack: SlackEmulator
    servers: list[RunningServer]
    apps: list[str]
    bots: list[BotProcess] = field(default_factory=list)
    # Every request the Heroku emulator received, kept across reset().
    heroku_log: list[RecordedRequest] = field(default_factory=list)
    # CPUs for the bot processes (None: wherever the OS puts them); see pin_cpus().
    bot_cpus: set[int] | None = None
    bot_favoured: bool = False

    @property
    def app_dsn(self) -> str:
        return self.pg.dsn(APP_ROLE, DB_PASSWORD, APP_DB)

    @property
    def crowd_dsn(self) -> str:
        return self.pg.dsn(CROWD_ROLE, CROWD_PASSWORD, APP_DB)

    def start_bot(self, **overrides: str) -> BotProcess:
        env = bot_env(
            slack_url=self.slack.url,
            heroku_url=self.heroku.url,
            redis_url=self.redis_server.url,
            port=new_port(),
            PGCONN_APPS=",".join(self.apps),
            # Production defaults where the test harness shortens them.
            PGCONN_HEROKU_TIMEOUT="10",
            PGCONN_RESOLVE_AFTER="300",
            PGCONN_RESERVE_INTERVAL="30",
            **overrides,
        )
        bot = start_bot(env)
        self.bots.append(bot)
        if self.bot_cpus is not None:
            set_affinity(bot.process.pid, self.bot_cpus)
            self.bot_favoured = favour(bot.process.pid)
        return bot

    def stop_bot(self, bot: BotProcess) -> None:
        bot.stop()
        with contextlib.suppress(ValueError):
            self.bots.remove(bot)

    def flush_redis(self) -> None:
        redis.Redis.from_url(self.redis_server.url).flushdb()

    def terminate_role(self, role: str = APP_ROLE) -> None:
        with psycopg.connect(self.pg.dsn(), autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE usename = %s AND pid <> pg_backend_pid()",
                (role,),
            )

    def reset(self) -> None:
        """Between scenarios: no faults, no recorded traffic, no state in Redis."""
        self.heroku.faults.clear()
        # Swapped, not cleared: the emulator's thread may be appending right now.
        taken, self.heroku.requests = self.heroku.requests, []
        self.heroku_log += taken
        self.slack.reset()
        self.flush_redis()

    def stop(self) -> None:
        for bot in list(self.bots):
            self.stop_bot(bot)
        for server in self.servers:
            server.stop()
        self.redis_server.stop()
        self.pg.stop()


def seed(heroku: HerokuEmulator, apps: list[str], dsn: str) -> None:
    for name in apps:
        heroku.add_app(
            name,
            database_url=dsn,
            role=APP_ROLE,
            plan="essential-0",
            formation=FORMATION,
            buildpacks=["heroku/python"],
        )


@contextlib.contextmanager
def running_system(*, heroku_latency: float, extra_apps: list[str]) -> Iterator[System]:
    pg = LocalPostgres.start(max_connections=700)
    started: list[Any] = [pg]
    try:
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute(
                f"CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{DB_PASSWORD}' CONNECTION LIMIT {ROLE_LIMIT}"
            )
            conn.execute(f"CREATE ROLE {CROWD_ROLE} LOGIN PASSWORD '{CROWD_PASSWORD}'")
            conn.execute(f"CREATE DATABASE {APP_DB} OWNER {APP_ROLE}")
            conn.execute(f"GRANT ALL ON DATABASE {APP_DB} TO {CROWD_ROLE}")
        redis_server = LocalRedis.start()
        started.append(redis_server)
        apps = [APP, *extra_apps]
        heroku = HerokuEmulator(admin_dsn=pg.dsn(), api_key=API_KEY, dyno_boot_seconds=0.3)
        seed(heroku, apps, pg.dsn(APP_ROLE, DB_PASSWORD, APP_DB))
        heroku_server = serve_in_thread(heroku.app)
        heroku.url = heroku_server.url
        heroku.latency = heroku_latency
        slack = SlackEmulator(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET)
        slack.add_channel(OPS_CHANNEL, "ops")
        for user_id, name in ((ADMIN, "alice"), (GROUP_MEMBER, "grace"), (STRANGER, "mallory")):
            slack.add_user(user_id, name)
        slack.add_usergroup(GROUP, [GROUP_MEMBER])
        slack_server = serve_in_thread(slack.app)
        slack.url = slack_server.url
        system = System(
            pg=pg,
            redis_server=redis_server,
            heroku=heroku,
            slack=slack,
            servers=[heroku_server, slack_server],
            apps=apps,
        )
    except BaseException:
        for thing in reversed(started):
            with contextlib.suppress(Exception):
                thing.stop()
        raise
    try:
        yield system
    finally:
        system.stop()


def pin_cpus() -> tuple[set[int], set[int]] | None:
    """Give the bot a CPU of its own, as a dyno would have, and everything else the rest.

    On a small machine the load generator, the emulators, Postgres and Redis would
    otherwise take turns with the bot on the same cores, and the OS scheduler's time
    slices would show up as the bot's tail latency. Call before starting anything: this
    process and all it starts later (servers, threads) inherit the "everything else" set.
    Returns (bot CPUs, other CPUs), or None on a single-CPU machine.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    bot, rest = {cpus[-1]}, set(cpus[:-1])
    os.sched_setaffinity(0, rest)
    return bot, rest


def set_affinity(pid: int, cpus: set[int]) -> None:
    """Move every thread of a process (each has its own affinity on Linux)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(task.name), cpus)


FAVOURED_NICE = -10


def favour(pid: int) -> bool:
    """Let the process run first when other work on a shared machine wants its CPU too.

    Nice values are per thread on Linux, so every thread of the process is changed (threads
    started later inherit it). Needs root (or CAP_SYS_NICE); False when not allowed.
    """
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(ProcessLookupError):
                os.setpriority(os.PRIO_PROCESS, int(task.name), FAVOURED_NICE)
    except PermissionError:
        return False
    return True


def rss_kb(pid: int) -> int:
    """VmRSS of a process, in kB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


__all__ = [
    "ADMIN",
    "ALERT_CHANNEL",
    "APP",
    "NOT_WATCHED",
    "OPS_CHANNEL",
    "STRANGER",
    "System",
    "cpu_seconds",
    "favour",
    "incident_apps",
    "pin_cpus",
    "set_affinity",
    "rss_kb",
    "running_system",
]
