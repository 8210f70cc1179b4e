"""A Slack emulator: the Web API the bot calls, and the requests Slack sends the bot.

The bot under test is configured with ``SLACK_API_URL = f"{emulator.url}/api/"`` and talks
to this server over real HTTP with its real slack_sdk client; the emulator answers like
Slack (contract: ``shared/contracts/slack-web-api.openapi.json``), keeps what was posted
(messages, edits, threads, ephemerals, response-URL posts) and records every raw call.

In the other direction it plays Slack's side of ``POST /slack/events``: slash commands,
button clicks (``block_actions``) and Events API callbacks, signed with the signing secret
exactly as Slack signs them, so the bot's own request verification runs in every test.

    emulator = SlackEmulator(bot_token="xoxb-test", signing_secret="s3cr3t",
                             request_url=f"{bot_url}/slack/events")
    running = emulator.start()        # serves on a loopback port, sets emulator.url
    await emulator.send_slash_command("myapp", user_id="U0ALICE")
    await emulator.wait_for(lambda: emulator.ephemerals)

Module layout: ``slack_state`` (what is stored, JSON views), ``slack_api`` (the Web API
methods), ``slack_blocks`` (Block Kit validation), this module (HTTP, faults, delivery).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import math
import secrets
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qs, parse_qsl, urlencode

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from emulators.serve import RunningServer, serve_in_thread
from emulators.slack_api import MAX_TEXT, METHODS, ApiError, flag
from emulators.slack_blocks import find_button, validate_blocks
from emulators.slack_socket import SocketModeServer
from emulators.slack_state import (
    DEFAULT_SCOPES,
    RESPONSE_URL_MAX_USES,
    RESPONSE_URL_TTL,
    Channel,
    Delivery,
    Message,
    RecordedCall,
    ResponsePost,
    ResponseUrl,
)
from emulators.slack_surfaces import SurfaceRequests
from emulators.slack_views import VIEW_METHODS

__all__ = [
    "DEFAULT_CHANNELS",
    "Delivery",
    "Message",
    "RecordedCall",
    "ResponsePost",
    "SlackEmulator",
    "slack_signature",
]

T = TypeVar("T")

# Channels every emulator starts with; tests add more with add_channel.
DEFAULT_CHANNELS = {
    "C0ALERTS": "pgconn-alerts",
    "C0GENERAL": "general",
    "C0OPS": "ops",
}


_TLS = ssl.create_default_context()


def slack_signature(secret: str, timestamp: str | int, body: bytes) -> str:
    """Slack's v0 request signature: ``v0=`` + hex HMAC-SHA256 of ``v0:{ts}:{body}``."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class _Fault:
    error: str
    status: int
    retry_after: float | None
    remaining: int


class SlackEmulator(SurfaceRequests):
    """Slack, for one workspace with one bot installed. See the module docstring."""

    def __init__(
        self,
        *,
        bot_token: str,
        signing_secret: str,
        request_url: str | None = None,
        team_id: str = "T0PGCONN",
        bot_user_id: str = "UBOTPGCONN",
        bot_id: str = "B0PGCONNBOT",
        app_id: str = "A0PGCONN",
        team_domain: str = "pgconn",
        bot_name: str = "pgconn",
        verification_token: str = "emulatorverificationtoken",
        ack_deadline: float = 3.0,
        app_token: str | None = None,
    ) -> None:
        super().__init__(
            team_id=team_id,
            team_domain=team_domain,
            bot_user_id=bot_user_id,
            bot_id=bot_id,
            app_id=app_id,
            bot_name=bot_name,
        )
        self.bot_token = bot_token
        self.signing_secret = signing_secret
        self.request_url = request_url
        # The deprecated verification token Slack still puts in every payload.
        self.verification_token = verification_token
        self.ack_deadline = ack_deadline
        # Socket Mode: `apps.connections.open` takes this app-level token; with `socket_mode`
        # on, deliver() sends every request as an envelope over the app's WebSocket instead.
        self.app_token = app_token
        self.socket = SocketModeServer(app_id, ack_deadline=ack_deadline)
        self.socket_mode = False
        # When Slack re-sends an event that got no 2xx in time (at once, after 1 and 5 minutes).
        self.event_retry_delays: tuple[float, ...] = (0.0, 60.0, 300.0)
        self.response_url_ttl = RESPONSE_URL_TTL
        self.url = ""  # set by start(), or by the caller after serving self.app
        self._faults: dict[str, list[_Fault]] = {}
        self._server: RunningServer | None = None
        for channel_id, name in DEFAULT_CHANNELS.items():
            self.add_channel(channel_id, name)
        self.app = Starlette(
            routes=[
                Route("/api/{method}", self._api, methods=["GET", "POST"]),
                Route("/response/{token}", self._response_url, methods=["POST"]),
                Route("/upload/v1/{token}", self._upload, methods=["POST"]),
                Route("/files-pri/{ref}/{name}", self._file_download, methods=["GET"]),
                Route("/_emulator/state", self._state_view, methods=["GET"]),
            ]
        )

    # -- serving ---------------------------------------------------------------------

    def start(self, port: int | None = None) -> RunningServer:
        """Serve on a loopback port in a background thread; sets ``self.url``."""
        self._server = serve_in_thread(self.app, port=port)
        self.url = self._server.url
        return self._server

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def api_url(self) -> str:
        """What the bot's SLACK_API_URL should be."""
        return f"{self._base()}/api/"

    def _base(self) -> str:
        if not self.url:
            raise RuntimeError("SlackEmulator.url is not set: call start() or set it")
        return self.url.rstrip("/")

    # -- inspection ------------------------------------------------------------------

    def calls(self, method: str) -> list[dict[str, Any]]:
        """Parsed parameters (token removed) of every call of ``method``, in order,
        failed ones included (see ``received`` for status and answer)."""
        with self.lock:
            return [dict(c.params) for c in self.received if c.method == method]

    def inject(
        self,
        method: str,
        *,
        error: str = "ratelimited",
        status: int = 200,
        retry_after: float | None = None,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail with ``error``.

        ``method`` is a Web API method name, ``"*"`` for any method, or ``"response_url"``
        for posts to response URLs. With ``status=429`` this is Slack's rate limit: HTTP 429,
        ``{"ok": false, "error": "ratelimited"}`` and a ``Retry-After`` header. Slack sends
        whole seconds there (slack_sdk parses it with int()), so ``retry_after`` is rounded up.
        """
        with self.lock:
            self._faults.setdefault(method, []).append(
                _Fault(error=error, status=status, retry_after=retry_after, remaining=times)
            )

    def clear_faults(self) -> None:
        """Drop every injected fault not consumed yet."""
        with self.lock:
            self._faults.clear()

    def reset(self) -> None:
        """Forget messages, ephemerals, response URLs, calls, deliveries and faults; keep
        the workspace (channels, users, user groups). For a session-wide emulator."""
        with self.lock:
            for messages in self._messages.values():
                messages.clear()
            self.ephemerals.clear()
            self.responses.clear()
            self.response_urls.clear()
            self.received.clear()
            self.deliveries.clear()
            self._faults.clear()
            self.home_views.clear()
            self.files.clear()
            self.scopes = set(DEFAULT_SCOPES)
        self.socket.reset()

    def _take_fault(self, method: str) -> _Fault | None:
        with self.lock:
            for key in (method, "*"):
                queue = self._faults.get(key) or []
                if queue:
                    fault = queue[0]
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        queue.pop(0)
                    return fault
            return None

    async def wait_for(self, predicate: Callable[[], T | None], timeout: float = 5.0) -> T:
        """Poll ``predicate`` until it returns something truthy, and return that.

        A predicate that raises LookupError or AssertionError (``msgs[0]`` on an empty list,
        an ``assert`` inside) counts as "not yet". On timeout: AssertionError with a dump of
        what the emulator saw, so a failing test shows what the bot did instead.
        """
        deadline = time.monotonic() + timeout
        last_exc: Exception | None = None
        while True:
            try:
                value = predicate()
            except (LookupError, AssertionError) as exc:
                last_exc, value = exc, None
            if value:
                return value
            if time.monotonic() >= deadline:
                detail = f" (last: {last_exc!r})" if last_exc else ""
                raise AssertionError(f"condition not met within {timeout}s{detail}\n{self.dump()}")
            await asyncio.sleep(0.02)

    def dump(self) -> str:
        """A readable summary of everything the emulator holds, for failure messages."""
        lines: list[str] = []
        with self.lock:
            for channel_id, channel in self.channels.items():
                messages = self.messages(channel_id, include_deleted=True)
                if not messages:
                    continue
                lines.append(f"#{channel.name} ({channel_id}):")
                for m in messages:
                    who = m.user or m.bot_id or m.username or "?"
                    where = f" thread={m.thread_ts}" if m.is_reply else ""
                    flags = (" [deleted]" if m.deleted else "") + (
                        f" [{len(m.edits)} edits]" if m.edits else ""
                    )
                    lines.append(f"  {m.ts} {who}{where}{flags}: {_short(m.text)}")
                    lines.extend(f"      {s}" for s in _block_summary(m.blocks))
            if self.ephemerals:
                lines.append("ephemerals:")
                for e in self.ephemerals:
                    lines.append(
                        f"  {e['message_ts']} to {e['user']} in {e['channel']} via {e['via']}: "
                        f"{_short(e['text'])}"
                    )
                    lines.extend(f"      {s}" for s in _block_summary(e["blocks"]))
            if self.responses:
                lines.append("response_url posts:")
                for r in self.responses:
                    lines.append(f"  {r.token[:8]}…: {_short(json.dumps(r.body))}")
            if self.received:
                lines.append("last calls:")
                for c in self.received[-25:]:
                    outcome = c.error or "ok"
                    lines.append(f"  {c.method} -> {c.status} {outcome}")
            if self.deliveries:
                lines.append("deliveries to the bot:")
                for d in self.deliveries[-15:]:
                    late = " LATE" if d.late else ""
                    lines.append(
                        f"  {d.kind} -> {d.status} in {d.elapsed:.2f}s{late}: {_short(d.response_text)}"
                    )
        return "\n".join(lines) or "(the Slack emulator saw nothing)"

    def snapshot(self) -> dict[str, Any]:
        """JSON-able state (for the sandbox page and debugging)."""
        with self.lock:
            return {
                "channels": {
                    cid: {
                        "name": ch.name,
                        "messages": [
                            {**self.message_json(m), "edits": len(m.edits)} for m in self.messages(cid)
                        ],
                    }
                    for cid, ch in self.channels.items()
                },
                "ephemerals": list(self.ephemerals),
                "responses": [
                    {"token": r.token, "body": r.body, "received_at": r.received_at} for r in self.responses
                ],
            }

    # -- Web API -----------------------------------------------------------------------

    def _record(self, method: str, request: Request, body: bytes) -> RecordedCall:
        call = RecordedCall(
            method=method,
            http_method=request.method,
            path=request.url.path,
            query=request.url.query,
            headers=dict(request.headers),
            body=body,
            params={},
            received_at=time.time(),
        )
        with self.lock:
            self.received.append(call)
        return call

    def _connections_open(
        self, request: Request, body: bytes, call: RecordedCall
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Socket Mode's entry: only an app-level token (`xapp-…`) may open a connection."""
        try:
            params = _parse_params(request.headers.get("content-type", ""), call.query, body)
        except ApiError as exc:
            return 200, exc.body(), {}
        token = _bearer(request.headers.get("authorization")) or params.pop("token", None)
        if not token:
            return 200, {"ok": False, "error": "not_authed"}, {}
        if token == self.bot_token:
            return 200, {"ok": False, "error": "not_allowed_token_type"}, {}
        if self.app_token is None or token != self.app_token:
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        return 200, {"ok": True, "url": self.socket.new_url()}, {}

    async def _api(self, request: Request) -> Response:
        method = request.path_params["method"]
        body = await request.body()
        call = self._record(method, request, body)
        status, payload, headers = self._api_answer(method, request, body, call)
        call.status, call.response = status, payload
        return JSONResponse(payload, status_code=status, headers=headers)

    def _api_answer(
        self, method: str, request: Request, body: bytes, call: RecordedCall
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if method == "apps.connections.open":
            return self._connections_open(request, body, call)
        handler = METHODS.get(method) or VIEW_METHODS.get(method)
        if handler is None:
            return 404, {"ok": False, "error": "unknown_method", "req_method": method}, {}
        try:
            params = _parse_params(request.headers.get("content-type", ""), call.query, body)
        except ApiError as exc:
            return 200, exc.body(), {}
        token = _bearer(request.headers.get("authorization")) or params.pop("token", None)
        params.pop("token", None)
        call.params = params
        if not token:
            return 200, {"ok": False, "error": "not_authed"}, {}
        if token != self.bot_token:
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        fault = self._take_fault(method)
        if fault is not None:
            return fault.status, {"ok": False, "error": fault.error}, _retry_header(fault)
        with self.lock:
            try:
                return 200, handler(self, params), {}
            except ApiError as exc:
                return 200, exc.body(), {}

    # -- response URLs -----------------------------------------------------------------

    def new_response_url(
        self,
        *,
        channel: str | None = None,
        user: str | None = None,
        message_ts: str | None = None,
        is_ephemeral: bool = False,
    ) -> str:
        """A fresh ``{url}/response/{token}``. The context says where its posts land: the
        channel/user for new messages, the message a replace/delete_original acts on."""
        token = self.new_response_url_token(
            channel=channel, user=user, message_ts=message_ts, is_ephemeral=is_ephemeral
        )
        return f"{self._base()}/response/{token}"

    def expire_response_url(self, url: str) -> None:
        """Age a response URL past Slack's 30 minutes."""
        with self.lock:
            ctx = self.response_urls[url.rstrip("/").rsplit("/", 1)[-1]]
            ctx.created_at -= self.response_url_ttl + 1

    async def _response_url(self, request: Request) -> Response:
        token = request.path_params["token"]
        body = await request.body()
        call = self._record("response_url", request, body)
        status, text, headers = self._response_answer(token, request, body, call)
        call.status, call.response = status, text
        return PlainTextResponse(text, status_code=status, headers=headers)

    def _response_answer(
        self, token: str, request: Request, body: bytes, call: RecordedCall
    ) -> tuple[int, str, dict[str, str]]:
        fault = self._take_fault("response_url")
        if fault is not None:
            return fault.status, fault.error, _retry_header(fault)
        with self.lock:
            ctx = self.response_urls.get(token)
            if ctx is None or time.monotonic() - ctx.created_at > self.response_url_ttl:
                return 404, "expired_url", {}
            if ctx.uses >= RESPONSE_URL_MAX_USES:
                return 404, "used_url", {}
            data = _parse_response_body(request.headers.get("content-type", ""), body)
            if data is None:
                return 400, "invalid_payload", {}
            call.params = data
            blocks = data.get("blocks")
            if isinstance(blocks, str):
                try:
                    blocks = json.loads(blocks)
                except ValueError:
                    return 400, "invalid_blocks_format", {}
            if blocks is not None and validate_blocks(blocks):
                return 400, "invalid_blocks", {}
            text = data.get("text")
            text = text if isinstance(text, str) else ("" if text is None else str(text))
            delete = flag(data, "delete_original")
            if not delete and not text and not blocks:
                return 400, "no_text", {}
            if len(text) > MAX_TEXT:
                return 400, "msg_too_long", {}
            problem = self._apply_response(ctx, data, text, blocks, delete)
            if problem:
                return 404, problem, {}
            ctx.uses += 1
            self.responses.append(ResponsePost(token=token, body=data, received_at=time.time()))
            return 200, "ok", {}

    def _apply_response(
        self,
        ctx: ResponseUrl,
        data: dict[str, Any],
        text: str,
        blocks: list[dict[str, Any]] | None,
        delete: bool,
    ) -> str | None:
        """What Slack does with a response-URL post; returns an error string or None."""
        replace = flag(data, "replace_original")
        if delete or replace:
            # The original is the message the interaction came from, or, for a slash
            # command, the last ephemeral answer given through this URL.
            if ctx.message_ts and not ctx.is_ephemeral and ctx.channel:
                message = self.find(ctx.channel, ctx.message_ts)
                if message is None:
                    return "message_not_found"
                if delete:
                    self.delete(message)
                else:
                    self.edit(message, text=text, blocks=blocks or [])
                return None
            original_ts = ctx.message_ts or ctx.last_ephemeral_ts
            record = self.find_ephemeral(original_ts) if original_ts else None
            if record is not None:
                if delete:
                    record["deleted"] = True
                else:
                    record.setdefault("edits", []).append(
                        {"text": record["text"], "blocks": record["blocks"]}
                    )
                    record["text"], record["blocks"] = text, list(blocks or [])
                return None
            if delete:
                return "message_not_found"
            # Nothing to replace: Slack posts it as a new message instead.
        if data.get("response_type") == "in_channel":
            if not ctx.channel or ctx.channel not in self.channels:
                return "channel_not_found"
            self.post(
                ctx.channel,
                text=text,
                blocks=blocks,
                thread_ts=data.get("thread_ts") or None,
                user=self.bot_user_id,
                bot_id=self.bot_id,
            )
            return None
        record = self.add_ephemeral(
            channel=ctx.channel or "",
            user=ctx.user or "",
            text=text,
            blocks=blocks,
            thread_ts=data.get("thread_ts") or None,
            via="response_url",
        )
        ctx.last_ephemeral_ts = record["message_ts"]
        return None

    # -- file uploads (step 2 of files.getUploadURLExternal → POST → completeUploadExternal) --

    def expire_upload_url(self, file_id: str) -> None:
        """Age a file's upload URL past its lifetime."""
        with self.lock:
            self.files[file_id].created_at -= self.upload_url_ttl + 1

    async def _upload(self, request: Request) -> Response:
        token = request.path_params["token"]
        body = await request.body()
        call = self._record("upload", request, body)
        data = body
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            # Slack takes a multipart form too; its first file part is the content.
            form = await request.form()
            part = next((v for v in form.values() if hasattr(v, "read")), None)
            data = await part.read() if part is not None else b""
        status, text = self._upload_answer(token, data)
        call.status, call.response = status, text
        return PlainTextResponse(text, status_code=status)

    def _upload_answer(self, token: str, data: bytes) -> tuple[int, str]:
        fault = self._take_fault("upload")
        if fault is not None:
            return fault.status, fault.error
        with self.lock:
            stored = self.file_by_upload_token(token)
            if stored is None or stored.completed:
                return 404, "not found"
            if self.upload_expired(stored):
                return 404, "upload URL expired"
            if len(data) != stored.length:
                # Nothing kept: the file stays without bytes, so completing it is refused.
                return 400, f"length mismatch: {len(data)} bytes, expected {stored.length}"
            stored.data = bytes(data)
            return 200, f"OK - {len(data)}"

    async def _file_download(self, request: Request) -> Response:
        """url_private: needs the bot token, as Slack's does."""
        if _bearer(request.headers.get("authorization")) != self.bot_token:
            return PlainTextResponse("forbidden", status_code=403)
        file_id = request.path_params["ref"].rsplit("-", 1)[-1]
        with self.lock:
            stored = self.files.get(file_id)
            if stored is None or not stored.completed or stored.data is None:
                return PlainTextResponse("not found", status_code=404)
            return Response(stored.data, media_type=stored.mimetype)

    async def _state_view(self, request: Request) -> Response:
        return JSONResponse(self.snapshot())

    # -- requests to the bot, as Slack sends them --------------------------------------

    def sign(self, body: bytes, timestamp: int) -> dict[str, str]:
        return {
            "X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": slack_signature(self.signing_secret, timestamp, body),
        }

    async def deliver(
        self,
        body: bytes,
        *,
        content_type: str = "application/x-www-form-urlencoded",
        kind: str = "raw",
        timestamp: int | None = None,
        signature: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST ``body`` to the bot's request URL, signed (or with ``signature`` instead,
        to test rejection), and record the exchange in ``deliveries``."""
        if self.socket_mode:
            return await self._deliver_over_socket(body, kind, headers or {})
        if not self.request_url:
            raise RuntimeError("SlackEmulator.request_url is not set (the bot's /slack/events)")
        ts = int(time.time()) if timestamp is None else timestamp
        sent = {
            "Content-Type": content_type,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "Accept": "application/json,*/*",
            **self.sign(body, ts),
        }
        if signature is not None:
            sent["X-Slack-Signature"] = signature
        sent.update(headers or {})
        # Slack gives up after 3 s; the emulator waits longer so a slow bot shows up as
        # ``late`` in the record (and in the dump) instead of as a confusing client error.
        # One TLS context for every delivery: httpx builds one per client otherwise, ~17 ms of
        # this process's CPU each, which in a burst of 200 deliveries counted as seconds of
        # "the bot's" acknowledgement time.
        started = time.monotonic()
        async with httpx.AsyncClient(timeout=max(10.0, self.ack_deadline * 3), verify=_TLS) as client:
            response = await client.post(self.request_url, content=body, headers=sent)
        elapsed = time.monotonic() - started
        with self.lock:
            self.deliveries.append(
                Delivery(
                    kind=kind,
                    body=body,
                    headers=sent,
                    status=response.status_code,
                    response_text=response.text,
                    elapsed=elapsed,
                    late=elapsed > self.ack_deadline,
                )
            )
        return response

    async def _deliver_over_socket(self, body: bytes, kind: str, headers: dict[str, str]) -> httpx.Response:
        """The same request as an envelope on the app's Socket Mode connection (no signature:
        the connection itself is authenticated). The answer stands in for the HTTP one: 200
        with the ack's payload, or 504 when no ack came within the deadline."""
        if kind == "slash_command":
            type_, accepts = "slash_commands", True
            payload: dict[str, Any] = {k: v[-1] for k, v in parse_qs(body.decode()).items()}
        elif kind == "event_callback":
            type_, accepts = "events_api", False
            payload = json.loads(body)
        else:
            type_, accepts = "interactive", kind == "view_submission"
            payload = json.loads(parse_qs(body.decode()).get("payload", ["{}"])[-1])
        retry = int(headers.get("X-Slack-Retry-Num", "0") or 0)
        ack = await self.socket.send(type_, payload, accepts_response_payload=accepts, retry_attempt=retry)
        status = 200 if ack is not None else 504
        text = json.dumps(ack.payload) if ack is not None and ack.payload else ""
        with self.lock:
            self.deliveries.append(
                Delivery(
                    kind=kind, body=body, headers=headers, status=status, response_text=text,
                    elapsed=ack.elapsed if ack else self.ack_deadline, late=ack is None,
                )
            )
        response = httpx.Response(status, text=text)
        response.elapsed = timedelta(seconds=ack.elapsed if ack else self.ack_deadline)
        return response

    def _channel_for_request(self, channel_id: str) -> Channel:
        if channel_id.startswith("D"):
            return Channel(channel_id, "directmessage")
        channel = self.channels.get(channel_id)
        if channel is None:
            raise ValueError(f"unknown channel {channel_id}: register it with add_channel()")
        return channel

    @staticmethod
    def _trigger_id() -> str:
        return f"{secrets.randbelow(10**12)}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"

    async def send_slash_command(
        self,
        text: str,
        *,
        user_id: str,
        channel_id: str = "C0ALERTS",
        command: str = "/pgconn",
        timestamp: int | None = None,
        response_url: str | None = None,
    ) -> httpx.Response:
        """Invoke a slash command as ``user_id`` in ``channel_id``.

        An immediate answer in the ack (Bolt's ``ack(text)``) is shown like Slack shows it:
        ephemeral (``ephemerals``, via "ack") or, with response_type in_channel, as a message.
        """
        user = self.ensure_user(user_id)
        channel = self._channel_for_request(channel_id)
        if response_url is None:
            response_url = self.new_response_url(channel=channel_id, user=user_id)
        form = {
            "token": self.verification_token,
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": channel_id,
            "channel_name": channel.name,
            "user_id": user_id,
            "user_name": user.name,
            "command": command,
            "text": text,
            "api_app_id": self.app_id,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": self._trigger_id(),
        }
        body = urlencode(form).encode()
        response = await self.deliver(body, kind="slash_command", timestamp=timestamp)
        self._show_ack(response, channel_id=channel_id, user_id=user_id, response_url=response_url)
        return response

    def _show_ack(
        self, response: httpx.Response, *, channel_id: str, user_id: str, response_url: str
    ) -> None:
        """A slash command's ack body is the first answer the user sees (unless late:
        then Slack has already shown "operation_timeout" and drops it)."""
        late = response.elapsed.total_seconds() > self.ack_deadline
        if response.status_code != 200 or not response.content or late:
            return
        try:
            data: Any = response.json()
        except ValueError:
            data = {"text": response.text}
        if not isinstance(data, dict) or not (data.get("text") or data.get("blocks")):
            return
        blocks = data.get("blocks")
        if blocks is not None and validate_blocks(blocks):
            return  # Slack shows the user an error instead; the dump shows the body
        text = str(data.get("text") or "")
        with self.lock:
            if data.get("response_type") == "in_channel" and channel_id in self.channels:
                self.post(channel_id, text=text, blocks=blocks, user=self.bot_user_id, bot_id=self.bot_id)
                return
            record = self.add_ephemeral(
                channel=channel_id,
                user=user_id,
                text=text,
                blocks=blocks,
                thread_ts=None,
                via="ack",
            )
            ctx = self.response_urls.get(response_url.rsplit("/", 1)[-1])
            if ctx is not None:
                ctx.last_ephemeral_ts = record["message_ts"]

    def _locate_button(
        self, channel_id: str, message_ts: str, action_id: str
    ) -> tuple[dict[str, Any] | None, bool, str | None, dict[str, Any]]:
        """(message JSON for the payload, is_ephemeral, block_id, element) of a button
        the user can see. Looks at the current version of the message first, then older
        versions (a user double-clicking while the bot edits the message)."""
        with self.lock:
            message = self.find(channel_id, message_ts)
            if message is not None:
                versions = [message.blocks] + [e["blocks"] for e in reversed(message.edits)]
                for blocks in versions:
                    found = find_button(blocks, action_id)
                    if found is not None:
                        shown = self.message_json(message)
                        if blocks is not message.blocks:
                            shown["blocks"] = blocks
                        return shown, False, found[0], found[1]
                raise ValueError(f"message {message_ts} has no element with action_id {action_id}")
            record = self.find_ephemeral(message_ts)
            if record is not None:
                found = find_button(record["blocks"], action_id)
                if found is not None:
                    # Slack does not store ephemeral messages: no "message" in the payload.
                    return None, True, found[0], found[1]
                raise ValueError(f"ephemeral {message_ts} has no element with action_id {action_id}")
        raise ValueError(f"no message {message_ts} in {channel_id} to click in")

    async def click(
        self,
        *,
        action_id: str,
        value: str,
        user_id: str,
        channel_id: str,
        message_ts: str | None = None,
        block_id: str | None = None,
        timestamp: int | None = None,
        response_url: str | None = None,
    ) -> httpx.Response:
        """Click a button: the ``block_actions`` payload Slack sends (after the user
        confirmed the button's confirm dialog, if it has one).

        With ``message_ts`` the button must exist in that message (or ephemeral): the
        payload carries the message, the button's text, style and real block_id. ``value``
        is sent as given, so a test can tamper with it. Without ``message_ts`` the payload
        has no message (``block_id`` defaults to "pgconn.actions").
        """
        user = self.ensure_user(user_id)
        channel = self._channel_for_request(channel_id)
        shown: dict[str, Any] | None = None
        is_ephemeral = False
        element: dict[str, Any] = {}
        found_block_id: str | None = None
        if message_ts is not None:
            shown, is_ephemeral, found_block_id, element = self._locate_button(
                channel_id, message_ts, action_id
            )
        if response_url is None:
            response_url = self.new_response_url(
                channel=channel_id, user=user_id, message_ts=message_ts, is_ephemeral=is_ephemeral
            )
        action: dict[str, Any] = {
            "action_id": action_id,
            "block_id": block_id or found_block_id or "pgconn.actions",
            "text": element.get("text") or {"type": "plain_text", "text": action_id, "emoji": True},
            "value": value,
            "type": element.get("type", "button"),
            "action_ts": f"{time.time():.6f}",
        }
        if action["type"] in ("overflow", "static_select"):
            # A menu's choice comes as `selected_option` (the option object), with no `value` or
            # `text` of the element's own (api.slack.com/reference/interaction-payloads/block-actions).
            chosen = next((o for o in element.get("options") or [] if o.get("value") == value), None)
            action.pop("value")
            action.pop("text")
            shown = {"type": "plain_text", "text": value}
            action["selected_option"] = chosen or {"text": shown, "value": value}
        if "style" in element:
            action["style"] = element["style"]
        container: dict[str, Any] = {
            "type": "message",
            "channel_id": channel_id,
            "is_ephemeral": is_ephemeral,
        }
        if message_ts is not None:
            container["message_ts"] = message_ts
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {
                "id": user.id,
                "username": user.name,
                "name": user.name,
                "team_id": self.team_id,
            },
            "api_app_id": self.app_id,
            "token": self.verification_token,
            "container": container,
            "trigger_id": self._trigger_id(),
            "team": {"id": self.team_id, "domain": self.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel.id, "name": channel.name},
        }
        if shown is not None:
            payload["message"] = shown
        payload["state"] = {"values": {}}
        payload["response_url"] = response_url
        payload["actions"] = [action]
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return await self.deliver(body, kind="block_actions", timestamp=timestamp)

    def event_envelope(self, event: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
        """The Events API ``event_callback`` wrapper Slack puts around ``event``."""
        event = dict(event)
        event.setdefault("event_ts", f"{time.time():.6f}")
        return {
            "token": self.verification_token,
            "team_id": self.team_id,
            "context_team_id": self.team_id,
            "context_enterprise_id": None,
            "api_app_id": self.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or "Ev" + secrets.token_hex(5).upper(),
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": self.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": "4-" + secrets.token_urlsafe(24),
        }

    async def send_event(
        self,
        event: dict[str, Any],
        *,
        timestamp: int | None = None,
        event_id: str | None = None,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
    ) -> httpx.Response:
        """Deliver an Events API callback (JSON, as Slack sends events). ``retry_num``
        with the same ``event_id`` replays it the way Slack retries an unacknowledged event.

        Without ``retry_num``, Slack's own retries are modelled: an answer that is not a 2xx,
        or none within ``ack_deadline`` (3 s), makes the same envelope come again with
        ``X-Slack-Retry-Num`` 1, 2, 3 after ``event_retry_delays`` (Slack: at once, 1 min,
        5 min), unless the answer carried ``X-Slack-No-Retry: 1``. Returns the last answer
        (a 504 stands for one Slack stopped waiting for)."""
        envelope = self.event_envelope(event, event_id=event_id)
        body = json.dumps(envelope).encode()
        if retry_num is not None:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason}
            return await self.deliver(
                body, content_type="application/json", kind="event_callback", timestamp=timestamp,
                headers=headers,
            )
        response = await self._deliver_event(body, {}, timestamp)
        for number, delay in enumerate(self.event_retry_delays, start=1):
            if response.is_success or response.headers.get("X-Slack-No-Retry") == "1":
                break
            reason = "http_timeout" if response.status_code == 504 else "http_error"
            await asyncio.sleep(delay)
            response = await self._deliver_event(
                body, {"X-Slack-Retry-Num": str(number), "X-Slack-Retry-Reason": reason}, None
            )
        return response

    async def _deliver_event(
        self, body: bytes, headers: dict[str, str], timestamp: int | None
    ) -> httpx.Response:
        """One attempt, given up after ``ack_deadline`` as Slack does (the bot may still get it)."""
        try:
            return await asyncio.wait_for(
                self.deliver(
                    body, content_type="application/json", kind="event_callback", timestamp=timestamp,
                    headers=headers,
                ),
                timeout=self.ack_deadline,
            )
        except TimeoutError:
            with self.lock:
                self.deliveries.append(
                    Delivery(
                        kind="event_callback", body=body, headers=headers, status=504,
                        response_text="", elapsed=self.ack_deadline, late=True,
                    )
                )
            return httpx.Response(504)

    async def verify_url(self) -> httpx.Response:
        """Slack's url_verification handshake (when the Request URL is saved)."""
        body = {
            "token": self.verification_token,
            "challenge": secrets.token_urlsafe(24),
            "type": "url_verification",
        }
        return await self.deliver(
            json.dumps(body).encode(), content_type="application/json", kind="url_verification"
        )

    async def post_as(
        self,
        channel: str,
        text: str,
        *,
        user: str | None = None,
        bot_id: str | None = None,
        username: str | None = None,
        thread_ts: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
        attachments: list[dict[str, Any]] | None = None,
    ) -> Message:
        """A message from a person (``user``) or another alerting bot (``bot_id``):
        stored, and delivered to the bot as a ``message`` event when the bot is in the
        channel (plus ``app_mention`` when it mentions the bot), as Slack does."""
        if (user is None) == (bot_id is None):
            raise ValueError("post_as needs exactly one of user= or bot_id=")
        target = self.channels.get(channel)
        if target is None:
            raise ValueError(f"unknown channel {channel}: register it with add_channel()")
        if user is not None:
            self.ensure_user(user)
        message = self.post(
            channel,
            text=text,
            blocks=blocks,
            thread_ts=thread_ts,
            user=user,
            bot_id=bot_id,
            username=username,
            subtype="bot_message" if bot_id is not None and user is None else None,
            attachments=attachments,
        )
        if not self.request_url or not target.member:
            return message
        event = self._message_event(message, target)
        await self.send_event(event)
        if f"<@{self.bot_user_id}>" in text:
            mention = {k: v for k, v in event.items() if k not in ("subtype", "channel_type")}
            mention["type"] = "app_mention"
            await self.send_event(mention)
        return message

    def _message_event(self, message: Message, channel: Channel) -> dict[str, Any]:
        event: dict[str, Any] = {"type": "message"}
        if message.subtype:
            event["subtype"] = message.subtype
        event["text"] = message.text
        if message.user:
            event["user"] = message.user
            event["client_msg_id"] = str(uuid.uuid4())
            event["team"] = self.team_id
        if message.bot_id:
            event["bot_id"] = message.bot_id
        if message.username:
            event["username"] = message.username
        if message.blocks:
            event["blocks"] = message.blocks
        if message.attachments:
            event["attachments"] = message.attachments
        event["ts"] = message.ts
        if message.thread_ts:
            event["thread_ts"] = message.thread_ts
            parent = self.find(channel.id, message.thread_ts)
            if parent is not None and parent.user:
                event["parent_user_id"] = parent.user
        event["channel"] = channel.id
        event["event_ts"] = message.ts
        event["channel_type"] = "group" if channel.is_private else "channel"
        return event


# -- helpers ---------------------------------------------------------------------------


def _bearer(header: str | None) -> str | None:
    if header and header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


def _retry_header(fault: _Fault) -> dict[str, str]:
    if fault.retry_after is None:
        return {}
    return {"Retry-After": str(math.ceil(fault.retry_after))}


def _parse_params(content_type: str, query: str, body: bytes) -> dict[str, Any]:
    """Query string, then form or JSON body, merged: slack_sdk sends GET query params,
    form bodies, and JSON bodies (chat.* with blocks) to the same endpoints."""
    params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    if not body:
        return params
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise ApiError("invalid_json") from exc
        if not isinstance(data, dict):
            raise ApiError("json_not_object")
        params.update(data)
    elif kind in ("application/x-www-form-urlencoded", ""):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ApiError("invalid_charset") from exc
        params.update(parse_qsl(text, keep_blank_values=True))
    else:
        # multipart/form-data is only for file uploads, which pgconn does not do.
        raise ApiError("invalid_form_data")
    return params


def _parse_response_body(content_type: str, body: bytes) -> dict[str, Any] | None:
    """A response-URL body: JSON, or (as incoming webhooks also accept) ``payload=<json>``."""
    raw: bytes | str = body
    if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
        form = dict(parse_qsl(body.decode("utf-8", "replace")))
        if "payload" not in form:
            return None
        raw = form["payload"]
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _short(text: str, limit: int = 160) -> str:
    text = text.replace("\n", "⏎")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _block_summary(blocks: list[dict[str, Any]]) -> list[str]:
    """One line per block: its type and the text or buttons in it."""
    out: list[str] = []
    for block in blocks:
        kind = block.get("type", "?")
        parts: list[str] = []
        text = block.get("text")
        if isinstance(text, dict):
            parts.append(str(text.get("text", "")))
        for element in block.get("elements") or []:
            if isinstance(element, dict):
                if element.get("type") == "button":
                    label = (element.get("text") or {}).get("text", "")
                    parts.append(f"[{label} → {element.get('action_id')}={element.get('value')}]")
                elif "text" in element:
                    parts.append(str(element.get("text")))
        out.append(f"{kind}: {_short(' '.join(parts), 120)}")
    return out
