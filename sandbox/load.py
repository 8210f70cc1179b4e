"""A load generator that holds real connections as the app's role (what dynos do)."""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg


@dataclass
class ConnectionLoad:
    """Opens and holds connections; `failures` keeps the real FATAL messages it got."""

    dsn: str
    connections: list[psycopg.Connection[Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    # The threads running queries in the background, by connection. A psycopg
    # connection must not be closed while another thread is inside `execute` on it: that
    # frees the libpq handle under the call (a crash, or bytes written to a reused socket).
    _busy: dict[int, threading.Thread] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def open(self, count: int, application_name: str = "web.1", state: str = "idle") -> int:
        """Try to open `count` connections; returns how many opened. state: idle|active|idle_in_tx."""
        opened = 0
        for _ in range(count):
            try:
                conn = psycopg.connect(self.dsn, application_name=application_name, autocommit=True,
                                       connect_timeout=5)
            except psycopg.OperationalError as exc:
                with self._lock:
                    self.failures.append(str(exc).strip().splitlines()[-1])
                continue
            if state == "idle_in_tx":
                conn.autocommit = False
                conn.execute("SELECT 1")
            elif state == "active":
                # A backend busy in a query; it shows as 'active' until the sleep ends.
                self.in_background(conn, "SELECT pg_sleep(30)")
            with self._lock:
                self.connections.append(conn)
            opened += 1
        return opened

    def session(self, application_name: str) -> psycopg.Connection[Any]:
        """One held connection for the caller to drive (raises if the server refuses it)."""
        conn = psycopg.connect(self.dsn, application_name=application_name, autocommit=True,
                               connect_timeout=5)
        with self._lock:
            self.connections.append(conn)
        return conn

    def in_background(self, conn: psycopg.Connection[Any], sql: str) -> None:
        """Run `sql` on `conn` in a thread until it ends, is cancelled or is terminated."""
        thread = threading.Thread(target=_run_quietly, args=(conn, sql), daemon=True)
        thread.start()
        with self._lock:
            self._busy[id(conn)] = thread

    def open_reporting(self, count: int, application_name: str) -> tuple[int, list[str]]:
        """Like `open`, also returning the refusals this call got (to ship as that dyno's log lines)."""
        with self._lock:
            before = len(self.failures)
        opened = self.open(count, application_name=application_name)
        with self._lock:
            # Callers serialise these calls (the sandbox holds its load lock): a call made
            # meanwhile from another thread would have its refusals counted here too.
            return opened, self.failures[before:]

    def alive(self) -> int:
        """How many held connections the server still has (terminated ones are dropped)."""
        live: list[psycopg.Connection[Any]] = []
        with self._lock:
            held = list(self.connections)
        for conn in held:
            if self._running(conn):
                live.append(conn)  # busy in its query: alive until the query ends or is killed
                continue
            try:
                conn.execute("SELECT 1")
                live.append(conn)
            except psycopg.Error:
                self._close(conn)
        with self._lock:
            self.connections = live
        return len(live)

    def close(self) -> None:
        with self._lock:
            held, self.connections = self.connections, []
        for conn in held:
            self._close(conn)

    def _running(self, conn: psycopg.Connection[Any]) -> bool:
        with self._lock:
            thread = self._busy.get(id(conn))
        return thread is not None and thread.is_alive()

    def _close(self, conn: psycopg.Connection[Any]) -> None:
        with self._lock:
            thread = self._busy.pop(id(conn), None)
        if thread is not None:
            with contextlib.suppress(Exception):
                conn.cancel()  # libpq's cancel is made to be sent from another thread
            thread.join(timeout=10)
            if thread.is_alive():
                return  # still inside execute: leaving it open is safe, closing it is not
        with contextlib.suppress(Exception):
            conn.close()


def _run_quietly(conn: psycopg.Connection[Any], sql: str) -> None:
    with contextlib.suppress(Exception):  # cancelled or terminated: that is how it is meant to end
        conn.execute(sql)


@dataclass(frozen=True)
class TrafficTarget:
    """`clients` app threads of one dyno, connecting to `dsn` (a dyno's PgBouncer)."""

    dsn: str
    application_name: str
    clients: int


@dataclass
class PooledTraffic:
    """App threads running short transactions through a pooler, until stopped.

    Each client holds its own client connection (as an app thread does) and runs
    `SELECT pg_sleep(query_s)` then pauses `pause_s`, so a transaction-mode pooler can
    hand its few server connections from client to client. Connections are made with
    `prepare_threshold=None`: psycopg 3 would otherwise prepare repeated statements,
    which transaction pooling cannot keep (the advice pgconn gives with PgBouncer).
    Threads are daemons and stop on `stop()`; errors are counted and the client reconnects.
    """

    targets: list[TrafficTarget]
    query_s: float = 0.05
    pause_s: float = 0.05
    queries: int = 0
    errors: list[str] = field(default_factory=list)
    _connected: set[int] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def clients(self) -> int:
        return sum(t.clients for t in self.targets)

    @property
    def connected(self) -> int:
        with self._lock:
            return len(self._connected)

    def start(self) -> None:
        n = 0
        for target in self.targets:
            for _ in range(target.clients):
                thread = threading.Thread(
                    target=self._client, args=(n, target), name=f"traffic:{target.application_name}:{n}",
                    daemon=True,
                )
                self._threads.append(thread)
                thread.start()
                n += 1

    def wait_connected(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.connected >= self.clients:
                return True
            time.sleep(0.02)
        return False

    def _client(self, n: int, target: TrafficTarget) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    target.dsn, application_name=target.application_name, autocommit=True,
                    connect_timeout=5, prepare_threshold=None,
                ) as conn:
                    with self._lock:
                        self._connected.add(n)
                    while not self._stop.is_set():
                        conn.execute("SELECT pg_sleep(%s)", (self.query_s,))
                        with self._lock:
                            self.queries += 1
                        self._stop.wait(self.pause_s)
            except psycopg.Error as exc:
                with self._lock:
                    self._connected.discard(n)
                    self.errors.append(str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc))
                    del self.errors[:-50]
                self._stop.wait(0.5)
        with self._lock:
            self._connected.discard(n)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
