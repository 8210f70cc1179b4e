"""Real PgBouncer for the sandbox: one per dyno, configured the way Heroku's buildpack does it.

The heroku/pgbouncer buildpack runs a PgBouncer inside every dyno (`bin/start-pgbouncer`
before the process command) and writes its pgbouncer.ini from PGBOUNCER_* config vars
(bin/gen-pgbouncer-conf.sh: md5 auth, transaction pooling, default_pool_size 1,
reserve_pool_size 1, reserve_pool_timeout 5, max_client_conn 100 unless set). The sandbox
does the same on loopback: one process per emulated dyno, so the pool is per dyno exactly
as pgconn's budget counts it.

PgBouncer comes from the system (Debian's `pgbouncer` package); when it is missing and the
sandbox runs as root with apt-get available, `ensure_installed` installs it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg

from emulators.serve import free_port
from sandbox import debian

log = logging.getLogger(__name__)

# PgBouncer refuses to run as root; the sandbox's Postgres already runs as this account.
SYSTEM_USER = "pgconn-pg"
CLIENT_DB = "db1"  # the buildpack names the first database db1
STATS_USER = "sandbox_stats"

# The buildpack's defaults (bin/gen-pgbouncer-conf.sh), used when a config var is unset.
BUILDPACK_DEFAULTS = {
    "PGBOUNCER_POOL_MODE": "transaction",
    "PGBOUNCER_MAX_CLIENT_CONN": "100",
    "PGBOUNCER_DEFAULT_POOL_SIZE": "1",
    "PGBOUNCER_MIN_POOL_SIZE": "0",
    "PGBOUNCER_RESERVE_POOL_SIZE": "1",
    "PGBOUNCER_RESERVE_POOL_TIMEOUT": "5.0",
    "PGBOUNCER_SERVER_LIFETIME": "3600",
    "PGBOUNCER_SERVER_IDLE_TIMEOUT": "600",
    "PGBOUNCER_QUERY_WAIT_TIMEOUT": "120",
}


class PgBouncerUnavailable(Exception):
    """PgBouncer is not installed and the sandbox cannot install it; the message says what to do."""


PLACES = ("/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer")  # not on a normal user's PATH


def find_binary() -> str | None:
    return debian.find("pgbouncer", PLACES)


def ensure_installed() -> str:
    """The pgbouncer binary, installed with apt-get when missing and allowed. Slow the first time."""
    try:
        return debian.ensure("pgbouncer", "pgbouncer", PLACES)
    except debian.PackageUnavailable as exc:
        hint = "On macOS: `brew install pgbouncer`. Then restart the sandbox."
        raise PgBouncerUnavailable(f"{exc} {hint}") from None


def version(binary: str) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
        return out.splitlines()[0].strip() if out else "PgBouncer"
    return "PgBouncer"


def _md5(user: str, password: str) -> str:
    """The md5 form PgBouncer's auth_file accepts (what the buildpack writes)."""
    return "md5" + hashlib.md5((password + user).encode()).hexdigest()


def _int(value: str) -> int:
    """A config var as PgBouncer would read it; 0 for what it would not (it then fails to start)."""
    try:
        return int(value.strip())
    except ValueError:
        return 0


def _conf_value(value: str) -> str:
    # Values come from config vars someone may have typed: keep each on its own line.
    return value.replace("\n", " ").replace("\r", " ").strip()


@dataclass(frozen=True)
class Upstream:
    """The database a PgBouncer points at, read from DATABASE_URL."""

    host: str
    port: int
    dbname: str
    user: str
    password: str

    @classmethod
    def from_url(cls, url: str) -> Upstream:
        parts = urlsplit(url)
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            dbname=unquote(parts.path.lstrip("/")) or "postgres",
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
        )


@dataclass
class PgBouncer:
    """One running pgbouncer process (one dyno's)."""

    dyno: str
    port: int
    workdir: Path
    settings: dict[str, str]
    upstream: Upstream
    stats_password: str
    process: subprocess.Popen[bytes] | None = None
    _admin: psycopg.Connection[Any] | None = field(default=None, repr=False)

    @property
    def pool_size(self) -> int:
        return _int(self.settings["PGBOUNCER_DEFAULT_POOL_SIZE"])

    @property
    def reserve_pool_size(self) -> int:
        return _int(self.settings["PGBOUNCER_RESERVE_POOL_SIZE"])

    def client_dsn(self) -> str:
        """What the buildpack exports as DATABASE_URL_PGBOUNCER inside the dyno."""
        u = self.upstream
        return f"postgresql://{u.user}:{u.password}@127.0.0.1:{self.port}/{CLIENT_DB}"

    def write_config(self) -> Path:
        s, u = self.settings, self.upstream
        users = self.workdir / "users.txt"
        users.write_text(
            f'"{u.user}" "{_md5(u.user, u.password)}"\n'
            f'"{STATS_USER}" "{_md5(STATS_USER, self.stats_password)}"\n'
        )
        ini = self.workdir / "pgbouncer.ini"
        # application_name on the server side names the dyno, as the app's own connections
        # would: the Heroku emulator's dyno restarts find a dyno's backends by it.
        ini.write_text(
            "[databases]\n"
            f"{CLIENT_DB} = host={u.host} port={u.port} dbname={u.dbname} application_name={self.dyno}\n"
            "\n[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = md5\nauth_file = {users}\n"
            f"pool_mode = {_conf_value(s['PGBOUNCER_POOL_MODE'])}\n"
            f"max_client_conn = {_conf_value(s['PGBOUNCER_MAX_CLIENT_CONN'])}\n"
            f"default_pool_size = {_conf_value(s['PGBOUNCER_DEFAULT_POOL_SIZE'])}\n"
            f"min_pool_size = {_conf_value(s['PGBOUNCER_MIN_POOL_SIZE'])}\n"
            f"reserve_pool_size = {_conf_value(s['PGBOUNCER_RESERVE_POOL_SIZE'])}\n"
            f"reserve_pool_timeout = {_conf_value(s['PGBOUNCER_RESERVE_POOL_TIMEOUT'])}\n"
            f"server_lifetime = {_conf_value(s['PGBOUNCER_SERVER_LIFETIME'])}\n"
            f"server_idle_timeout = {_conf_value(s['PGBOUNCER_SERVER_IDLE_TIMEOUT'])}\n"
            f"query_wait_timeout = {_conf_value(s['PGBOUNCER_QUERY_WAIT_TIMEOUT'])}\n"
            f"stats_users = {STATS_USER}\n"
            f"logfile = {self.workdir / 'pgbouncer.log'}\n"
            f"pidfile = {self.workdir / 'pgbouncer.pid'}\n"
        )
        users.chmod(0o600)
        ini.chmod(0o600)
        return ini

    def start(self, binary: str, run_as: str | None) -> None:
        ini = self.write_config()
        if run_as is not None:
            for path in (self.workdir, *self.workdir.iterdir()):
                shutil.chown(path, user=run_as)
        args = [binary, *(["-u", run_as] if run_as else []), str(ini)]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PgBouncerUnavailable(f"pgbouncer for {self.dyno} exited at start: {self.log_tail()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return
            time.sleep(0.02)
        self.stop()
        raise PgBouncerUnavailable(f"pgbouncer for {self.dyno} did not listen on {self.port}")

    def log_tail(self, lines: int = 3) -> str:
        with contextlib.suppress(OSError):
            return " | ".join((self.workdir / "pgbouncer.log").read_text().strip().splitlines()[-lines:])
        return ""

    def pools(self) -> dict[str, int]:
        """SHOW POOLS for the app's database, from the admin console (stats user)."""
        try:
            if self._admin is None or self._admin.closed:
                self._admin = psycopg.connect(
                    f"postgresql://{STATS_USER}:{self.stats_password}@127.0.0.1:{self.port}/pgbouncer",
                    autocommit=True,
                    connect_timeout=2,
                )
            cur = self._admin.execute("SHOW POOLS")
            names = [d.name for d in cur.description or []]
            for row in cur.fetchall():
                record = dict(zip(names, row, strict=False))
                if record.get("database") == CLIENT_DB:
                    return {k: int(v) for k, v in record.items() if isinstance(v, int)}
            return {}
        except psycopg.Error:
            with contextlib.suppress(Exception):
                if self._admin is not None:
                    self._admin.close()
            self._admin = None
            raise

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            if self._admin is not None:
                self._admin.close()
        self._admin = None
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


class PgBouncerFleet:
    """The app's PgBouncers, one per dyno; (re)deployed on each release that asks for them."""

    def __init__(self) -> None:
        self.bouncers: dict[str, PgBouncer] = {}
        self.binary: str | None = None
        self.version = ""
        self.status = "not installed"  # "installing", "ready", "running", "unavailable"
        self.error: str | None = None
        self._lock = threading.RLock()
        self._stats_password = os.urandom(12).hex()
        self._workdir = Path(tempfile.mkdtemp(prefix="pgconn-pgbouncer-"))

    def prepare(self) -> str:
        """Find or install the binary (blocking); records the outcome for the page."""
        with self._lock:
            if self.binary:
                return self.binary
            self.status = "installing" if find_binary() is None else self.status
        try:
            binary = ensure_installed()
        except PgBouncerUnavailable as exc:
            with self._lock:
                self.status, self.error = "unavailable", str(exc)
            raise
        with self._lock:
            self.binary, self.version = binary, version(binary)
            if self.status != "running":
                self.status, self.error = "ready", None
        return binary

    def deploy(self, dynos: list[str], database_url: str, config_vars: Mapping[str, str]) -> list[PgBouncer]:
        """Stop the old PgBouncers and start one per dyno with the app's PGBOUNCER_* settings."""
        binary = self.prepare()
        settings = {k: config_vars.get(k) or v for k, v in BUILDPACK_DEFAULTS.items()}
        upstream = Upstream.from_url(database_url)
        run_as = _unprivileged_user()
        if run_as is not None:
            shutil.chown(self._workdir, user=run_as)
        with self._lock:
            self.stop_all()
            started: list[PgBouncer] = []
            try:
                for dyno in dynos:
                    workdir = self._workdir / dyno
                    workdir.mkdir(parents=True, exist_ok=True)
                    bouncer = PgBouncer(
                        dyno, free_port(), workdir, dict(settings), upstream, self._stats_password
                    )
                    bouncer.start(binary, run_as)
                    started.append(bouncer)
            except Exception as exc:
                for bouncer in started:
                    bouncer.stop()
                self.status, self.error = "unavailable", str(exc)
                raise
            self.bouncers = {b.dyno: b for b in started}
            self.status, self.error = "running", None
            return started

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            bouncers = list(self.bouncers.values())
            out: dict[str, Any] = {
                "status": self.status,
                "error": self.error,
                "version": self.version,
                "dynos": [],
            }
        clients = servers = 0
        for b in bouncers:
            entry: dict[str, Any] = {
                "dyno": b.dyno,
                "port": b.port,
                "pool_size": b.pool_size,
                "reserve_pool_size": b.reserve_pool_size,
                "pool_mode": b.settings["PGBOUNCER_POOL_MODE"],
            }
            try:
                pools = b.pools()
                entry.update(
                    {
                        k: pools.get(k, 0)
                        for k in (
                            "cl_active",
                            "cl_waiting",
                            "sv_active",
                            "sv_idle",
                            "sv_used",
                            "sv_tested",
                            "sv_login",
                        )
                    }
                )
                entry["clients"] = pools.get("cl_active", 0) + pools.get("cl_waiting", 0)
                entry["servers"] = sum(
                    pools.get(k, 0) for k in ("sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login")
                )
                clients += entry["clients"]
                servers += entry["servers"]
            except psycopg.Error as exc:
                entry["error"] = (
                    str(exc).strip().splitlines()[-1][:200] if str(exc).strip() else "unreachable"
                )
            out["dynos"].append(entry)
        out["clients"], out["servers"] = clients, servers
        return out

    def stop_all(self) -> None:
        with self._lock:
            for bouncer in self.bouncers.values():
                bouncer.stop()
            self.bouncers = {}
            if self.status == "running":
                self.status = "ready"

    def close(self) -> None:
        self.stop_all()
        shutil.rmtree(self._workdir, ignore_errors=True)


def _unprivileged_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", SYSTEM_USER], check=True, capture_output=True
        )
    return SYSTEM_USER
