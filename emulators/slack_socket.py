"""Slack's Socket Mode, emulated: the WebSocket `apps.connections.open` hands out.

What the real service does, as slack-sdk's clients expect it (slackapi/python-slack-sdk
`slack_sdk/socket_mode/async_client.py`, `aiohttp/__init__.py`, `request.py`; Slack's
"Using Socket Mode" docs):
- `apps.connections.open` (app-level `xapp-` token) answers a one-off `wss://` URL;
- on connecting, the server sends `{"type": "hello", "num_connections": n, ...}`;
- each request is an envelope `{"envelope_id", "type", "payload", "accepts_response_payload",
  "retry_attempt", "retry_reason"}` with type `slash_commands` (payload: the command's form
  fields), `interactive` (the interaction payload) or `events_api` (the event callback);
- the app acknowledges with `{"envelope_id": ..., "payload": {...}?}` within 3 s;
- `{"type": "disconnect", "reason": "refresh_requested", ...}` asks the app to open a new
  connection (it calls `apps.connections.open` again); the old one is then closed.

The server is aiohttp's (aiohttp is already slack-sdk's transport), on its own loop in a thread;
tests call `send()` from any loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from emulators.serve import free_port

log = logging.getLogger(__name__)


@dataclass
class Connection:
    id: int
    ticket: str
    ws: web.WebSocketResponse
    opened_at: float = field(default_factory=time.monotonic)
    closed: bool = False


@dataclass
class Ack:
    envelope_id: str
    type: str
    payload: dict[str, Any] | None
    elapsed: float
    connection: int


class SocketModeServer:
    """Hands out connection URLs, runs the WebSockets, sends envelopes and collects their acks."""

    def __init__(self, app_id: str, ack_deadline: float = 3.0) -> None:
        self.app_id = app_id
        self.ack_deadline = ack_deadline
        self.connections: list[Connection] = []
        self.acks: list[Ack] = []
        self.received: list[dict[str, Any]] = []  # every message an app sent, in order
        self._tickets: set[str] = set()
        self._waiting: dict[str, concurrent.futures.Future[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle (its own loop, in a thread) ----------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self.port = free_port()
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_get("/link/", self._link)
            self._runner = web.AppRunner(app, handle_signals=False)
            loop.run_until_complete(self._runner.setup())
            loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name=f"socket-mode:{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the Socket Mode emulator did not start")

    def stop(self) -> None:
        loop, runner = self._loop, self._runner
        if loop is None or runner is None:
            return
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)

    def reset(self) -> None:
        with self._lock:
            self.acks.clear()
            self.received.clear()

    # -- apps.connections.open ----------------------------------------------------------------

    def new_url(self) -> str:
        self.start()
        ticket = secrets.token_hex(16)
        with self._lock:
            self._tickets.add(ticket)
        return f"ws://127.0.0.1:{self.port}/link/?ticket={ticket}&app_id={self.app_id}"

    @property
    def open_connections(self) -> list[Connection]:
        with self._lock:
            return [c for c in self.connections if not c.closed]

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        ticket = request.query.get("ticket", "")
        with self._lock:
            known = ticket in self._tickets
            self._tickets.discard(ticket)  # a URL is good for one connection
        if not known:
            raise web.HTTPUnauthorized(text="invalid ticket")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        with self._lock:
            conn = Connection(len(self.connections) + 1, ticket, ws)
            self.connections.append(conn)
            live = sum(1 for c in self.connections if not c.closed)
        await ws.send_str(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": live,
                    "debug_info": {
                        "host": f"applink-emulator-{conn.id}",
                        "approximate_connection_time": 18060,
                    },
                    "connection_info": {"app_id": self.app_id},
                }
            )
        )
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(message.data)
                except ValueError:
                    continue
                if not isinstance(data, dict):
                    continue
                with self._lock:
                    self.received.append(data)
                    waiter = self._waiting.pop(str(data.get("envelope_id")), None)
                if waiter is not None and not waiter.done():
                    waiter.set_result({**data, "_connection": conn.id})
        finally:
            conn.closed = True
        return ws

    # -- sending ------------------------------------------------------------------------------

    async def send(
        self, type_: str, payload: dict[str, Any], *, accepts_response_payload: bool, retry_attempt: int = 0
    ) -> Ack | None:
        """One envelope over the newest open connection; its ack, or None when none came in
        time (Slack then shows the user an error, or re-sends an event)."""
        live = self.open_connections
        if not live or self._loop is None:
            raise RuntimeError("no app is connected over Socket Mode")
        conn = live[-1]
        envelope_id = secrets.token_hex(18)
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "payload": payload,
            "type": type_,
            "accepts_response_payload": accepts_response_payload,
        }
        if type_ == "events_api":
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = "timeout" if retry_attempt else ""
        waiter: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()
        with self._lock:
            self._waiting[envelope_id] = waiter
        started = time.monotonic()
        asyncio.run_coroutine_threadsafe(conn.ws.send_str(json.dumps(envelope)), self._loop).result(5)
        try:
            answer = await asyncio.wait_for(asyncio.wrap_future(waiter), self.ack_deadline)
        except TimeoutError:
            with self._lock:
                self._waiting.pop(envelope_id, None)
            return None
        got = answer.get("payload")
        ack = Ack(
            envelope_id, type_, got if isinstance(got, dict) else None, time.monotonic() - started,
            int(answer["_connection"]),
        )
        with self._lock:
            self.acks.append(ack)
        return ack

    def request_reconnect(self, reason: str = "refresh_requested") -> Connection:
        """Ask the newest connection to go away (Slack does, e.g. every few hours); returns it."""
        live = self.open_connections
        if not live or self._loop is None:
            raise RuntimeError("no app is connected over Socket Mode")
        conn = live[-1]
        host = f"applink-emulator-{conn.id}"
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": host}}
        asyncio.run_coroutine_threadsafe(conn.ws.send_str(json.dumps(message)), self._loop).result(5)
        return conn

    def close(self, conn: Connection) -> None:
        """Close a connection from the server's side (after a disconnect, as Slack does)."""
        if self._loop is not None and not conn.closed:
            asyncio.run_coroutine_threadsafe(conn.ws.close(), self._loop).result(5)
