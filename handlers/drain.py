"""`POST /drains/heroku/{app}`: a Heroku HTTPS log drain, answered as soon as it is parsed.

Order of checks: credentials first (each app has its own drain password, derived from
PGCONN_DRAIN_TOKEN: bot.drain_auth; a stranger cannot learn which apps exist), then the
app, then whether that password is still current (watch rotates it), then the size and
framing. Parsing and detection are cheap and run
here; everything that talks to Redis, Heroku or Slack runs after the response, in
the alert engine's workers (logplex waits for our answer before sending more).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from bot.dependencies import Services
from bot.detect import detect_all
from bot.drain import MAX_BODY_BYTES, check_body_size, parse_frames_partly
from bot.drain_auth import credentials_valid
from bot.errors import MalformedFrame
from handlers.http import Endpoint, read_body

log = logging.getLogger(__name__)

_CHALLENGE = {"WWW-Authenticate": 'Basic realm="pgconn log drain"'}
# Bodies up to this are parsed on the event loop (a typical ~100 KB logplex frame: ~0.1 s at
# worst); bigger ones in a worker thread.
INLINE_PARSE_BYTES = 128 * 1024


def drain_credentials(authorization: str | None) -> tuple[str, str] | None:
    """(user, password) of an HTTP Basic `Authorization` header, or None when there is none."""
    if not authorization:
        return None
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def drain_password(authorization: str | None) -> str | None:
    """The password of an HTTP Basic `Authorization` header, or None when there is none."""
    credentials = drain_credentials(authorization)
    return credentials[1] if credentials else None


def authorised(authorization: str | None, master: str | None, app: str) -> bool:
    """Whether the header carries the drain credential pgconn made for `app` (bot.drain_auth).

    PGCONN_DRAIN_TOKEN unset: the route accepts nothing. The comparison is constant-time and
    the same for every app name, so it tells a stranger neither which apps exist nor how much
    of a guess was right.
    """
    credentials = drain_credentials(authorization)
    return credentials is not None and credentials_valid(master, app, *credentials)


def heroku_drain(services: Services) -> Endpoint:
    settings = services.settings
    alerts = services.alerts

    async def endpoint(request: Request) -> Response:
        app = request.path_params["app"]
        authorization = request.headers.get("authorization")
        if not authorised(authorization, settings.drain_token, app):
            return PlainTextResponse("unauthorised\n", status_code=401, headers=_CHALLENGE)
        if app not in settings.apps:
            return PlainTextResponse("unknown app\n", status_code=404)
        credentials = drain_credentials(authorization)
        if credentials is None or not await services.drain_nonces.accepts(app, credentials[0]):
            # Made by pgconn, but for a drain URL that `watch` or `unwatch` has since retired.
            log.info("drain %s: refused a retired drain password", app)
            return PlainTextResponse("unauthorised\n", status_code=401, headers=_CHALLENGE)
        if not alerts.enabled_for(app):
            # Accepting lines nobody will act on would hide the misconfiguration.
            return PlainTextResponse(f"alerts are off: {alerts.why_disabled(app)}\n", status_code=503)
        if services.stopping:
            # SIGTERM: logplex re-sends a frame answered 503 (same Logplex-Frame-Id), to a dyno
            # that stays; a 4xx would drop it for good.
            return PlainTextResponse("restarting; send it again\n", status_code=503)
        length = request.headers.get("content-length", "")
        try:
            if length.isdigit():
                check_body_size(int(length))
        except MalformedFrame as exc:
            return PlainTextResponse(exc.message + "\n", status_code=413)
        body = await read_body(request, MAX_BODY_BYTES)
        if body is None:
            return PlainTextResponse(f"body exceeds {MAX_BODY_BYTES} bytes\n", status_code=413)
        if len(body) > INLINE_PARSE_BYTES:
            # A 1 MB frame of tiny lines takes about a second to parse: in a thread, the event
            # loop keeps answering Slack (acks within 3 s) and other drains meanwhile.
            lines, error = await asyncio.to_thread(parse_frames_partly, body)
        else:
            lines, error = parse_frames_partly(body)
        if error is not None:
            log.info("drain %s: malformed body (%s); %d messages before it", app, error.message, len(lines))
            if not any(line.app_name for line in lines):
                # Not one syslog message in it: a sender that is not logplex. Logplex itself
                # never gets a 4xx for a body pgconn could partly read (it would drop the frame).
                return PlainTextResponse(error.message + "\n", status_code=400)
        await alerts.accept_frame(app, request.headers.get("logplex-frame-id"), detect_all(lines))
        return Response(status_code=204)

    return endpoint
