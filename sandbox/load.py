"""A load generator that holds real connections as the app's role (what dynos do)."""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from typing import Any

import psycopg


@dataclass
class ConnectionLoad:
    """Opens and holds connections; `failures` keeps the real FATAL messages it got."""

    dsn: str
    connections: list[psycopg.Connection[Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
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
                threading.Thread(target=_busy, args=(conn,), daemon=True).start()
            with self._lock:
                self.connections.append(conn)
            opened += 1
        return opened

    def alive(self) -> int:
        """How many held connections the server still has (terminated ones are dropped)."""
        live: list[psycopg.Connection[Any]] = []
        with self._lock:
            held = list(self.connections)
        for conn in held:
            try:
                if conn.info.transaction_status == psycopg.pq.TransactionStatus.ACTIVE:
                    live.append(conn)
                    continue
                conn.execute("SELECT 1")
                live.append(conn)
            except psycopg.Error:
                with contextlib.suppress(Exception):
                    conn.close()
        with self._lock:
            self.connections = live
        return len(live)

    def close(self) -> None:
        with self._lock:
            held, self.connections = self.connections, []
        for conn in held:
            with contextlib.suppress(Exception):
                conn.close()


def _busy(conn: psycopg.Connection[Any]) -> None:
    with contextlib.suppress(Exception):
        conn.execute("SELECT pg_sleep(30)")
