"""`python -m bot` with no credentials (or `--sandbox`): pgconn end to end on one laptop.

Real: PostgreSQL (a role limited to 20 connections, like an Essential-0 plan), Redis,
PgBouncer (one per dyno, started by the "release" that pgconn's Add PgBouncer causes),
the connections the demo app opens and the refusals Postgres answers with, and pgconn
itself (`python -m bot` as a subprocess, configured only through its environment).
Emulated: Slack and Heroku (the project's emulators, over real HTTP), and the app's dynos
(a load generator that connects as the role, one application_name per dyno).

The page at http://127.0.0.1:$PORT/ (sandbox/app.py) is the chat client and the console.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import uvicorn

from bot.budget import Budget, connection_budget, plan_connection_limit
from bot.heroku import PLATFORM_ACCEPT
from bot.readings import ProcessType
from emulators.heroku import HerokuEmulator
from emulators.heroku_state import EmulatedApp, RestartRecord
from emulators.pagerduty import PagerDutyEmulator
from emulators.serve import RunningServer, free_port, serve_in_thread
from emulators.slack import SlackEmulator
from sandbox.load import ConnectionLoad, PooledTraffic, TrafficTarget
from sandbox.logplex import Logplex, syslog_line
from sandbox.pgbouncer import PgBouncerFleet, PgBouncerUnavailable, find_binary
from sandbox.process import BotProcess, start_bot
from sandbox.servers import LocalPostgres, LocalRedis

log = logging.getLogger("pgconn.sandbox")

ROOT = Path(__file__).resolve().parent.parent

DEMO_APP = "demo-app"
APP_ROLE = "demo_app"
APP_DB = "demo_app"
ROLE_LIMIT = 20  # Essential-0's limit, enforced by the real server with CONNECTION LIMIT
PLAN = "essential-0"
ALERT_CHANNEL = "C0ALERTS"
OPS_CHANNEL = "C0OPS"
ME = "U0SANDBOX"  # the person at the page; in PGCONN_ADMINS and in team one's admin group
ME_NAME = "you"
# Two teams share this pgconn (PGCONN_APP_ROUTES, bot/apps.py): team one (you) owns demo-app and
# its alerts in #pgconn-alerts; team two owns billing-api, alerted in #billing-alerts, run by the
# members of its own user group. You are refused on billing-api's buttons as any stranger is.
TEAM_ONE_GROUP = "S0TEAMONE"
BILLING_APP = "billing-api"
BILLING_ROLE = "billing_app"
BILLING_CHANNEL = "C0BILLING"
BILLING_GROUP = "S0BILLING"
BILLING_ADMIN = "U0BILLING"
APP_ROUTES = {
    DEMO_APP: {"channel": ALERT_CHANNEL, "admins": [TEAM_ONE_GROUP]},
    BILLING_APP: {"channel": BILLING_CHANNEL, "admins": [BILLING_GROUP]},
}
# Fits at rest: 3 web dynos × WEB_CONCURRENCY=3 gunicorn workers + 2 celery children + 3 headroom
# = 14 of 20. Scaling web to 6 makes it 23: pgconn warns before any connection fails, and
# "Exhaust" then shows why (6 × 3 + 2 = 20 app connections, plus pgconn's reserved one).
FORMATION: list[dict[str, Any]] = [
    {"type": "web", "quantity": 3, "command": "gunicorn app.wsgi", "size": "basic"},
    {"type": "worker", "quantity": 1, "command": "celery -A app worker -c 2", "size": "basic"},
]
CONFIG_VARS = {"WEB_CONCURRENCY": "3"}
MAX_DYNOS = 10  # what the page may scale a process type to
# Behind PgBouncer each dyno runs more app threads than the role could ever hold directly.
CLIENTS_PER_DYNO_BEHIND_PGBOUNCER = 10
PGBOUNCER_START = "bin/start-pgbouncer"
# demo-app escalates to (the emulated) PagerDuty when nobody acknowledges an incident this soon (15
# minutes by default in production: a person watching the page should see it happen).
ESCALATE_AFTER = "10s"
# A one-off dyno (`heroku run`) that opens more connections than the role allows, straight away.
FLOOD_DYNO = "run.1"
FLOOD_CONNECTIONS = ROLE_LIMIT + 5
RAMP_EVERY_S = 2.0  # the leaking worker's pace: +30 a minute
DEPLOY_AFTER_S = 2.0  # from Add PgBouncer's release to the deploy with the Procfile change


@dataclass
class Event:
    at: float
    text: str
    level: str = "info"  # "info", "ok", "warn", "error"


@dataclass
class EventLog:
    """What the sandbox did, for the page (thread-safe: hooks run on the emulator's thread)."""

    events: list[Event] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, text: str, level: str = "info") -> None:
        log.info("%s", text)
        with self._lock:
            self.events.append(Event(time.time(), text, level))
            del self.events[:-40]

    def recent(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"at": e.at, "text": e.text, "level": e.level} for e in reversed(self.events)]


class Sandbox:
    """Everything the page drives. Built by `start()`, torn down by `stop()`."""

    def __init__(self) -> None:
        self.events = EventLog()
        self.logplex = Logplex()
        self.fleet = PgBouncerFleet()
        self.pg: LocalPostgres | None = None
        self.redis: LocalRedis | None = None
        self.heroku: HerokuEmulator | None = None
        self.slack: SlackEmulator | None = None
        self.bot: BotProcess | None = None
        self.load: ConnectionLoad | None = None
        self.oneoff: ConnectionLoad | None = None  # the flood's: its refusals are not the dynos'
        self.pagerduty = PagerDutyEmulator()
        self.traffic: PooledTraffic | None = None
        self.app_dsn = ""
        self._servers: list[RunningServer] = []
        self._seen_release = 0
        self._background: set[asyncio.Task[Any]] = set()
        self._ramp: threading.Thread | None = None
        self._ramp_stop = threading.Event()
        self._load_lock = threading.RLock()
        self._deploy_lock = threading.Lock()
        self.pgbouncer_ready = threading.Event()

    # -- start and stop ----------------------------------------------------------------

    @classmethod
    def start(cls) -> Sandbox:
        sandbox = cls()
        try:
            sandbox._start()
        except BaseException:
            sandbox.stop()
            raise
        return sandbox

    def _start(self) -> None:
        password = secrets.token_hex(12)
        self.pg = LocalPostgres.start(max_connections=100)
        with psycopg.connect(self.pg.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{password}' CONNECTION LIMIT {ROLE_LIMIT}")
            conn.execute(f"CREATE DATABASE {APP_DB} OWNER {APP_ROLE}")
        self.app_dsn = self.pg.dsn(APP_ROLE, password, APP_DB)
        billing_dsn = self._create_role(BILLING_ROLE)
        self.load = ConnectionLoad(self.app_dsn)
        self.oneoff = ConnectionLoad(self.app_dsn)
        self.events.add(
            f"PostgreSQL is up on 127.0.0.1:{self.pg.port}; role {APP_ROLE} may open {ROLE_LIMIT} connections"
        )
        self.redis = LocalRedis.start()

        api_key = "HRKU-sandbox-" + secrets.token_hex(16)
        self.heroku = HerokuEmulator(admin_dsn=self.pg.dsn(), api_key=api_key, dyno_boot_seconds=2.0)
        app = self.heroku.add_app(
            DEMO_APP,
            database_url=self.app_dsn,
            role=APP_ROLE,
            plan=PLAN,
            formation=FORMATION,
            config_vars=CONFIG_VARS,
            buildpacks=["heroku/python"],
        )
        self.heroku.add_app(
            BILLING_APP,
            database_url=billing_dsn,
            role=BILLING_ROLE,
            plan=PLAN,
            formation=[{"type": "web", "quantity": 2, "command": "gunicorn billing.wsgi", "size": "basic"}],
            config_vars={"WEB_CONCURRENCY": "2"},
            buildpacks=["heroku/python"],
        )
        self._seen_release = app.current_release.version
        self.heroku.on_release = self._on_release
        self.heroku.on_restart = self._on_restart
        running = serve_in_thread(self.heroku.app)
        self._servers.append(running)
        self.heroku.url = running.url

        bot_token = "xoxb-sandbox-" + secrets.token_hex(12)
        self.slack = SlackEmulator(bot_token=bot_token, signing_secret=secrets.token_hex(16))
        self.slack.add_user(ME, ME_NAME, real_name="You (sandbox)")
        self.slack.add_user(BILLING_ADMIN, "bea", real_name="Bea (billing team)")
        self.slack.add_channel(BILLING_CHANNEL, "billing-alerts")
        self.slack.add_usergroup(TEAM_ONE_GROUP, [ME])
        self.slack.add_usergroup(BILLING_GROUP, [BILLING_ADMIN])
        self.slack.start()

        self._servers.append(self.pagerduty.start())
        routing_key = secrets.token_hex(16)  # 32 characters, as an Events API v2 integration key

        bot_port = free_port()
        bot_url = f"http://127.0.0.1:{bot_port}"
        drain_token = secrets.token_hex(16)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "HEROKU_", "PGCONN_"))}
        env.update(
            {
                "HOST": "127.0.0.1",
                "PORT": str(bot_port),
                "PYTHONUNBUFFERED": "1",
                "SLACK_BOT_TOKEN": bot_token,
                "SLACK_SIGNING_SECRET": self.slack.signing_secret,
                "SLACK_API_URL": self.slack.api_url,
                "HEROKU_API_KEY": api_key,
                "HEROKU_API_URL": self.heroku.url,
                "HEROKU_DATA_API_URL": self.heroku.url,
                "REDIS_URL": self.redis.url,
                "PGCONN_APPS": f"{DEMO_APP},{BILLING_APP}",
                # demo-app also pages its on-call team through (emulated) PagerDuty's Events API v2.
                "PGCONN_APP_ROUTES": json.dumps(
                    {
                        **APP_ROUTES,
                        DEMO_APP: {
                            **APP_ROUTES[DEMO_APP],
                            "pagerduty_routing_key": routing_key,
                            "escalate_after": ESCALATE_AFTER,
                        },
                    }
                ),
                "PGCONN_ADMINS": ME,
                "PGCONN_ALERT_CHANNEL": ALERT_CHANNEL,
                "PGCONN_DRAIN_TOKEN": drain_token,
                "PGCONN_PUBLIC_URL": bot_url,
                # Demo pacing: a person watches, so updates come quickly and incidents end (with
                # their post-mortem) 20 seconds after the connections are back.
                "PGCONN_HEROKU_TIMEOUT": "5",
                "PGCONN_KILL_IDLE_AFTER": "10",
                "PGCONN_RESOLVE_AFTER": "20",
                "PGCONN_ALERT_UPDATE_INTERVAL": "1",
                "PGCONN_ALERT_REPLY_INTERVAL": "10",
                "PGCONN_RESTART_POLL": "0.5",
                "PGCONN_RESERVE_INTERVAL": "5",
                # Each fix verified in its thread a few seconds later (a minute in production),
                # and a slow ramp forecast from a count every half second over an 8-second window.
                "PGCONN_VERIFY_AFTER": "3",
                "PGCONN_VERIFY_POLL": "5",
                "PGCONN_FORECAST_INTERVAL": "0.5",
                "PGCONN_FORECAST_WINDOW": "8",
                "PGCONN_FORECAST_HORIZON": "300",
                "PGCONN_PAGERDUTY_URL": self.pagerduty.url,
                "PGCONN_PAGERDUTY_RETRY": "2",
            }
        )
        self.bot = start_bot(env)
        self.slack.request_url = f"{bot_url}/slack/events"
        self.events.add(f"pgconn is running ({bot_url}); Slack and Heroku are the project's emulators")
        self._watch()
        self._watch(BILLING_APP, BILLING_ADMIN, BILLING_CHANNEL)
        if find_binary() is None:
            # Installing takes a while: start now so it is ready by the time someone adds it.
            threading.Thread(target=self._prepare_pgbouncer, name="pgbouncer-install", daemon=True).start()
        else:
            self._prepare_pgbouncer()

    def _create_role(self, role: str) -> str:
        """Another app's own database and role, limited as demo-app's is; its DSN."""
        assert self.pg is not None
        password = secrets.token_hex(12)
        with psycopg.connect(self.pg.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}' CONNECTION LIMIT {ROLE_LIMIT}")
            conn.execute(f"CREATE DATABASE {role} OWNER {role}")
        return self.pg.dsn(role, password, role)

    def _watch(self, name: str = DEMO_APP, user: str = ME, channel: str = OPS_CHANNEL) -> None:
        """`/pgconn APP watch`, as the app's admin would type it: pgconn registers its log drain."""
        assert self.slack is not None and self.heroku is not None
        app = self.heroku.apps[name]
        with contextlib.suppress(Exception):
            asyncio.run(self.slack.send_slash_command(f"{name} watch", user_id=user, channel_id=channel))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not app.log_drains:
            time.sleep(0.05)
        if app.log_drains:
            self.events.add(f"pgconn registered its log drain on {name} (/pgconn {name} watch)", "ok")
        else:
            self.events.add(
                f"pgconn did not register its log drain on {name}: its alerts will not arrive", "warn"
            )

    def _prepare_pgbouncer(self) -> None:
        try:
            self.fleet.prepare()
            self.events.add(f"{self.fleet.version} is available for the release that adds it")
        except PgBouncerUnavailable as exc:
            self.events.add(str(exc), "error")
        finally:
            self.pgbouncer_ready.set()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.stop_load()
        self.fleet.close()
        if self.bot is not None:
            self.bot.stop()
        if self.slack is not None:
            self.slack.stop()
        for server in self._servers:
            server.stop()
        if self.redis is not None:
            self.redis.stop()
        if self.pg is not None:
            self.pg.stop()

    # -- what the page's buttons do ----------------------------------------------------

    @property
    def app(self) -> EmulatedApp:
        assert self.heroku is not None
        return self.heroku.apps[DEMO_APP]

    def budget(self) -> Budget:
        app = self.app
        formation = [ProcessType(f.type, f.quantity, f.command, f.size) for f in list(app.formation.values())]
        return connection_budget(
            formation, dict(app.config_vars), plan_connection_limit(app.plan) or ROLE_LIMIT
        )

    def exhaust(self) -> dict[str, Any]:
        """Every dyno opens what its processes ask for; PgBouncer, once deployed, takes them.

        Without PgBouncer the role runs out: Postgres refuses the rest with the real FATAL,
        and each refusal becomes a line of that dyno's log, shipped to the app's drains.
        """
        with self._load_lock:
            if self.fleet.bouncers:
                return self._start_traffic()
            assert self.load is not None
            self.load.alive()  # forget connections that kill all / restarts terminated
            held = self.role_backends_by_name()
            demand = {ln.process_type: ln.client_per_dyno for ln in self.budget().lines if not ln.transient}
            asked = opened = 0
            lines: list[str] = []
            refusals: list[str] = []
            for dyno in list(self.app.dynos):
                want = max(0, demand.get(dyno.split(".")[0], 1) - held.get(dyno, 0))
                if not want:
                    continue
                got, failures = self.load.open_reporting(want, application_name=dyno)
                asked, opened = asked + want, opened + got
                refusals += failures
                lines += [syslog_line(f"psycopg.OperationalError: {f}", proc=dyno) for f in failures]
        if not asked:
            self.events.add("Every dyno already holds the connections its processes ask for")
            return {"asked": 0, "opened": 0, "refused": 0}
        if refusals:
            self.events.add(
                f"The dynos asked for {asked} more connections: {opened} opened, {len(refusals)} refused by "
                f"Postgres ({_fatal(refusals[-1])})",
                "warn",
            )
            drains = [(d.url, d.token) for d in self.app.log_drains]
            if not drains:
                self.events.add("demo-app has no log drain (unwatched?): nobody hears about it", "warn")
            for delivery in self.logplex.ship(drains, lines):
                self.events.add(
                    f"logplex delivered {len(delivery.lines)} log lines to {delivery.url}: "
                    f"{delivery.status or delivery.error}",
                    "info" if delivery.status and delivery.status < 300 else "error",
                )
        else:
            self.events.add(f"The dynos opened {opened} more connections")
        return {"asked": asked, "opened": opened, "refused": len(refusals)}

    def _start_traffic(self) -> dict[str, Any]:
        if self.traffic is not None:
            return {"clients": self.traffic.clients, "already": True}
        targets = [
            TrafficTarget(b.client_dsn(), b.dyno, CLIENTS_PER_DYNO_BEHIND_PGBOUNCER)
            for b in self.fleet.bouncers.values()
        ]
        self.traffic = PooledTraffic(targets)
        self.traffic.start()
        connected = self.traffic.wait_connected(timeout=10)
        self.events.add(
            f"{self.traffic.clients} app threads ({CLIENTS_PER_DYNO_BEHIND_PGBOUNCER} per dyno) now run "
            f"transactions through their dyno's PgBouncer"
            + ("" if connected else f" ({self.traffic.connected} connected so far)"),
            "ok" if connected else "warn",
        )
        return {"clients": self.traffic.clients}

    def ramp(self) -> dict[str, Any]:
        """A worker that leaks: one more connection every RAMP_EVERY_S seconds, until Postgres
        refuses one (shipped to the drain, as Exhaust does) or the load is stopped. Slow enough
        for pgconn's forecast to warn before the first refusal."""
        with self._load_lock:
            if self._ramp is not None and self._ramp.is_alive():
                return {"already": True}
            self._ramp_stop.clear()
            self._ramp = threading.Thread(target=self._ramp_up, name="ramp", daemon=True)
            self._ramp.start()
        self.events.add(f"worker.1 starts leaking: one more connection every {RAMP_EVERY_S:g}s")
        return {"every_s": RAMP_EVERY_S}

    def _ramp_up(self) -> None:
        assert self.load is not None
        while not self._ramp_stop.wait(RAMP_EVERY_S):
            with self._load_lock:
                opened, refused = self.load.open_reporting(1, application_name="worker.1")
            if refused:
                self.events.add(f"worker.1 was refused: {_fatal(refused[-1])}", "warn")
                lines = [syslog_line(f"psycopg.OperationalError: {f}", proc="worker.1") for f in refused]
                self.logplex.ship([(d.url, d.token) for d in self.app.log_drains], lines)
                return

    def flood(self) -> dict[str, Any]:
        """A one-off dyno opens more connections than the role allows, at once (a console, a
        migration): Postgres refuses the rest, and its log lines reach pgconn through the drain."""
        assert self.oneoff is not None
        with self._load_lock:
            opened, refused = self.oneoff.open_reporting(FLOOD_CONNECTIONS, application_name=FLOOD_DYNO)
        if refused:
            self.events.add(
                f"{FLOOD_DYNO} asked for {FLOOD_CONNECTIONS} connections: {opened} opened, {len(refused)} "
                f"refused ({_fatal(refused[-1])})",
                "warn",
            )
            lines = [syslog_line(f"psycopg.OperationalError: {f}", proc=FLOOD_DYNO) for f in refused]
            self.logplex.ship([(d.url, d.token) for d in self.app.log_drains], lines)
        else:
            self.events.add(f"{FLOOD_DYNO} opened {opened} connections")
        return {"opened": opened, "refused": len(refused)}

    def scale(self, process_type: str, quantity: int) -> dict[str, Any]:
        """`heroku ps:scale TYPE=N`: the same Platform API call, so Heroku's webhook follows."""
        assert self.heroku is not None
        before = self.app.formation[process_type].quantity
        response = httpx.patch(
            f"{self.heroku.url}/apps/{DEMO_APP}/formation/{process_type}",
            json={"quantity": quantity},
            headers={"Authorization": f"Bearer {self.heroku.api_key}", "Accept": PLATFORM_ACCEPT},
            timeout=10,
        )
        response.raise_for_status()
        self.events.add(
            f"You scaled {process_type} {before} → {quantity} (heroku ps:scale {process_type}={quantity}); "
            "Heroku sends its formation webhook to pgconn"
        )
        return {"type": process_type, "before": before, "quantity": quantity}

    def stop_load(self) -> None:
        self._ramp_stop.set()
        with self._load_lock:
            if self.traffic is not None:
                self.traffic.stop()
                self.traffic = None
            if self.load is not None:
                held = len(self.load.connections)
                self.load.close()
                if held:
                    self.events.add(f"The dynos closed their {held} direct connections")
            if self.oneoff is not None and self.oneoff.connections:
                self.events.add(f"{FLOOD_DYNO} closed its {len(self.oneoff.connections)} connections")
                self.oneoff.close()

    # -- Heroku emulator hooks (run on the emulator's event loop: stay quick) -----------

    def _on_release(self, app: EmulatedApp) -> None:
        if app.name != DEMO_APP:
            return
        version = app.current_release.version
        if version == self._seen_release:
            # A buildpack change alone is no release on Heroku: it waits for the next one.
            self.events.add(f"Buildpacks are now {', '.join(app.buildpacks)} (used from the next release)")
            return
        self._seen_release = version
        self.events.add(f"Release v{version}: {app.current_release.description}; every dyno restarted")
        if not any("pgbouncer" in b for b in app.buildpacks):
            return
        procfile = {
            form.type: form.command if form.type == "release" or form.command.startswith(PGBOUNCER_START)
            else f"{PGBOUNCER_START} {form.command}"
            for form in app.formation.values()
        }
        if any(procfile[f.type] != f.command for f in app.formation.values()):
            # The sandbox plays the deploy pgconn asked for: a build of the source whose Procfile
            # starts each process behind bin/start-pgbouncer, released with its new slug (and its
            # api:release webhook, which pgconn follows to verify the fix).
            assert self.heroku is not None
            source = f"https://sandbox.invalid/{DEMO_APP}-pgbouncer.tgz"
            self.heroku.sources[source] = procfile
            self.events.add("You change the Procfile as pgconn showed and deploy (git push heroku main)")
            task = asyncio.get_running_loop().create_task(self._deploy_later(app, source))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return
        args = (version, list(app.dynos), app.database_url, dict(app.config_vars))
        threading.Thread(
            target=self._deploy_pgbouncer, args=args, name="pgbouncer-deploy", daemon=True
        ).start()

    async def _deploy_later(self, app: EmulatedApp, source: str) -> None:
        await asyncio.sleep(DEPLOY_AFTER_S)  # a person editing the Procfile, then pushing
        assert self.heroku is not None
        await self.heroku.deploy(app, source, version="pgbouncer")

    def _deploy_pgbouncer(
        self, version: int, dynos: list[str], database_url: str, config: dict[str, str]
    ) -> None:
        with self._deploy_lock:
            if version != self._seen_release:
                return  # a newer release is on its way and deploys its own settings
            try:
                if not self.pgbouncer_ready.is_set():
                    self.events.add("Waiting for apt-get to finish installing PgBouncer…")
                    self.pgbouncer_ready.wait(timeout=600)
                bouncers = self.fleet.deploy(dynos, database_url, config)
            except (PgBouncerUnavailable, OSError, subprocess.SubprocessError) as exc:
                self.events.add(f"Release v{version}: PgBouncer could not start: {exc}", "error")
                return
            first = bouncers[0]
            self.events.add(
                f"Release v{version}: {self.fleet.version} runs in each of the {len(bouncers)} dynos "
                f"(pool_mode={first.settings['PGBOUNCER_POOL_MODE']}, default_pool_size={first.pool_size}, "
                f"reserve_pool_size={first.reserve_pool_size})",
                "ok",
            )
            with self._load_lock:
                # The dynos restarted on the release: their old direct connections are gone,
                # and the app now connects to its dyno's PgBouncer.
                if self.traffic is not None:
                    self.traffic.stop()
                    self.traffic = None
                if self.load is not None:
                    self.load.close()
                self._start_traffic()

    def _on_restart(self, app: EmulatedApp, record: RestartRecord) -> None:
        if app.name != DEMO_APP or record.reason == "release":
            return
        what = "every dyno" if record.target == "all" else record.target
        self.events.add(f"Heroku restarted {what}: {record.terminated} connections closed")

    # -- numbers for the page ----------------------------------------------------------

    def role_backends_by_name(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for row in self.role_activity():
            out[row["application_name"]] = out.get(row["application_name"], 0) + row["count"]
        return out

    def role_activity(self) -> list[dict[str, Any]]:
        assert self.pg is not None
        with psycopg.connect(self.pg.dsn(), autocommit=True, connect_timeout=3) as conn:
            rows = conn.execute(
                "SELECT coalesce(application_name, ''), coalesce(state, ''), count(*) "
                "FROM pg_stat_activity WHERE usename = %s GROUP BY 1, 2 ORDER BY 1, 2",
                (APP_ROLE,),
            ).fetchall()
        return [{"application_name": r[0], "state": r[1], "count": int(r[2])} for r in rows]

    def role_limit(self) -> int:
        assert self.pg is not None
        with psycopg.connect(self.pg.dsn(), autocommit=True, connect_timeout=3) as conn:
            row = conn.execute("SELECT rolconnlimit FROM pg_roles WHERE rolname = %s", (APP_ROLE,)).fetchone()
        return int(row[0]) if row else ROLE_LIMIT


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _fatal(message: str) -> str:
    """The server's own words from a client error: `FATAL:  too many connections for role "x"`."""
    at = message.find("FATAL:")
    return message[at:] if at >= 0 else message


@contextlib.contextmanager
def running_sandbox() -> Iterator[Sandbox]:
    sandbox = Sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("PGCONN_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # One line per request to the emulators and the drain would drown what the sandbox says.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from sandbox.app import create_app

    port_raw = os.environ.get("PORT", "").strip() or "3000"
    if not port_raw.isdigit() or not 0 < int(port_raw) < 65536:
        print(f"pgconn sandbox: PORT must be a TCP port number, got {port_raw[:20]!r}", file=sys.stderr)
        raise SystemExit(2)
    # Loopback unless told otherwise: the page has buttons that terminate connections.
    host = os.environ.get("HOST", "").strip() or "127.0.0.1"
    # Fail before the slow start-up, not after it, when the page's port is taken.
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, int(port_raw)))
    except OSError as exc:
        print(
            f"pgconn sandbox: cannot listen on {host}:{port_raw} ({exc.strerror}); set PORT", file=sys.stderr
        )
        raise SystemExit(2) from None
    print(
        "pgconn sandbox: starting PostgreSQL, Redis, the Slack and Heroku emulators and pgconn…",
        file=sys.stderr,
    )
    # uvicorn re-raises SIGTERM once it has shut down; as SystemExit it unwinds through
    # running_sandbox(), which stops Postgres, Redis, PgBouncer and pgconn.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with running_sandbox() as sandbox:
        config = uvicorn.Config(
            create_app(sandbox), host=host, port=int(port_raw), log_level="warning", access_log=False
        )
        server = uvicorn.Server(config)
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        print(f"pgconn sandbox: open http://{shown}:{port_raw}/  (Ctrl-C stops everything)", file=sys.stderr)
        server.run()
