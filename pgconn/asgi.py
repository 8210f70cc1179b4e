"""The ASGI application: Bolt at /slack/events plus pgconn's own HTTP routes."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.dependencies import Services
from bot.forecast.watcher import keep_forecasting
from bot.payloads import malformed
from bot.remediation.recovery import keep_finishing
from bot.reserved import keep_reserved
from bot.signing import MAX_BODY_BYTES as MAX_SLACK_BODY_BYTES
from bot.signing import headers_fresh, signature_valid
from bot.verification.checker import keep_verifying
from handlers import http_routes, register
from handlers.http import read_body

log = logging.getLogger(__name__)


def create_bolt_app(services: Services) -> AsyncApp:
    settings = services.settings
    app = AsyncApp(
        client=services.slack,
        signing_secret=settings.slack_signing_secret or None,
        # Answer as soon as a listener returns: every listener is registered through
        # handlers.ack_first, which acks and leaves the work to a task (Slack's 3 s limit).
        # Bolt's other mode (False) polls for the ack every 10 ms, which added 10-12 ms to
        # every acknowledgement and doubled p99 in a burst of 50 (see bench/).
        process_before_response=True,
        raise_error_for_unhandled_request=False,
        logger=logging.getLogger("slack_bolt"),
    )
    register(app, services)
    return app


def create_asgi(services: Services) -> Starlette:
    bolt = create_bolt_app(services)
    handler = AsyncSlackRequestHandler(bolt)

    async def slack_events(request: Request) -> Response:
        # Checked here on the raw bytes first: Bolt's own check raises (500) on some tampered bytes.
        # What can be refused without the body is refused before reading it, and the body is
        # read up to a bound: an unauthenticated sender must not make pgconn hold megabytes.
        headers = request.headers
        secret = services.settings.slack_signing_secret
        timestamp, signature = headers.get("x-slack-request-timestamp"), headers.get("x-slack-signature")
        if not headers_fresh(secret, timestamp, signature):
            log.info("refused a request to /slack/events: missing, malformed or stale signature headers")
            return JSONResponse({"error": "invalid request"}, status_code=401)
        length = headers.get("content-length", "")
        if length.isdigit() and int(length[:12]) > MAX_SLACK_BODY_BYTES:
            log.info("refused a request to /slack/events: Content-Length %s is over the bound", length[:12])
            return JSONResponse({"error": "request too large"}, status_code=413)
        body = await read_body(request, MAX_SLACK_BODY_BYTES)
        if body is None:
            log.info("refused a request to /slack/events: body over %d bytes", MAX_SLACK_BODY_BYTES)
            return JSONResponse({"error": "request too large"}, status_code=413)
        if not signature_valid(secret, body, timestamp, signature):
            log.info("refused a request to /slack/events: bad signature")
            return JSONResponse({"error": "invalid request"}, status_code=401)
        # Bolt's adapter reads the body again through request.body(), which returns this cache
        # (the stream itself is consumed).
        request._body = body
        problem = malformed(body, headers.get("content-type"))
        if problem is not None:
            log.warning("refused a signed Slack request: %s", problem)
            return JSONResponse({"error": "malformed request"}, status_code=400)
        try:
            response = await handler.handle(request)
        except Exception as exc:  # noqa: BLE001 - Bolt's adapter could not read it (a body not UTF-8)
            log.warning("refused a signed Slack request Bolt could not read (%s)", type(exc).__name__)
            return JSONResponse({"error": "malformed request"}, status_code=400)
        if response.status_code == 500:
            # Bolt answers 500 when its own reading of a signed payload fails (a field missing or
            # of the wrong type: its matchers index without checks). pgconn's listeners answer
            # their own errors after the ack, so a 500 here means the request, not the server.
            log.warning("refused a signed Slack request Bolt could not dispatch (malformed payload)")
            return JSONResponse({"error": "malformed request"}, status_code=400)
        return response

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        services.spawn(keep_reserved(services), name="keep-reserved", lasting=True)
        # Heartbeat, and the story of actions a stopped process left half-told (a dyno restart).
        services.spawn(keep_finishing(services), name="finish-interrupted", lasting=True)
        # Each fix's effect, checked a while later in its thread (whichever process finds it due).
        services.spawn(keep_verifying(services), name="verify-fixes", lasting=True)
        # A rising trend warned about before the first refusal (PGCONN_FORECAST_INTERVAL 0: off).
        services.spawn(keep_forecasting(services), name="forecast", lasting=True)
        await services.alerts.start()
        yield
        # SIGTERM (uvicorn stopped taking connections): running actions get the grace period.
        await services.shutdown(services.settings.shutdown_grace_s)

    routes = [Route("/slack/events", slack_events, methods=["POST"]), *http_routes(services)]
    asgi = Starlette(routes=routes, lifespan=lifespan)
    asgi.state.bolt = bolt
    return asgi
