"""`POST /webhooks/heroku/{app}`: Heroku tells pgconn the app's formation or config changed.

Order of checks: the signature (against the secret pgconn made when it subscribed, kept
in Redis) over the bounded body, then the app: before a delivery is verified, every app
name gets the same 401. Nothing is done for a delivery that is not
verified. A verified formation or release event drops what pgconn cached about the
app, so the next report, alert or keeper pass reads the new formation and config, and
has the budget recomputed (a warning thread when it stops fitting). Each delivery is
taken once: a replay, or Heroku's retry of one already handled, does nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from bot.dependencies import Services
from bot.errors import StateUnavailable
from bot.verification.checker import release_arrived
from bot.webhooks import MAX_BODY_BYTES, SIGNATURE_HEADER, parse_event, signature_valid
from handlers.http import Endpoint, read_body

log = logging.getLogger(__name__)

# Heroku waits a while for the answer (the emulator 10 s); the evaluation takes about 0.3 s
# (bench/), so a delivery that needs longer is answered 503 and retried rather than left hanging.
ANSWER_WITHIN_S = 8.0

# Heroku app names (bot.config checks PGCONN_APPS with the same rule).
_APP_NAME = re.compile(r"^[a-z][a-z0-9-]{1,29}$")


def _unauthorised() -> Response:
    return PlainTextResponse("unauthorised\n", status_code=401)


def heroku_webhook(services: Services) -> Endpoint:
    settings = services.settings
    secrets = services.webhook_secrets

    async def endpoint(request: Request) -> Response:
        # Every app name takes the same path to the same 401 until a signature is verified:
        # an unknown app, one pgconn does not watch and one with a wrong signature look alike,
        # so the route does not tell a stranger which apps pgconn watches (as the drain route).
        app = request.path_params["app"]
        signature = request.headers.get(SIGNATURE_HEADER)
        if not signature:
            log.info("webhook %s refused: no signature", app[:40])
            return _unauthorised()
        length = request.headers.get("content-length", "")
        body = None if length.isdigit() and int(length[:12]) > MAX_BODY_BYTES else await read_body(
            request, MAX_BODY_BYTES
        )
        if body is None:
            return PlainTextResponse(f"body exceeds {MAX_BODY_BYTES} bytes\n", status_code=413)
        try:
            # Looked up for any well-formed name, watched or not, so the timing is alike too.
            secret = await secrets.get(app) if _APP_NAME.match(app) else None
        except StateUnavailable:
            # Unverifiable is not the same as wrong: say so, and Heroku's "sync" level retries.
            return PlainTextResponse("cannot verify now: state store unavailable\n", status_code=503)
        if secret is None or not signature_valid(secret, body, signature) or app not in settings.apps:
            log.info("webhook %s refused: no subscription secret, or a bad signature", app[:40])
            return _unauthorised()
        event = parse_event(body)
        if event is None:
            log.info("webhook %s: signed, but not a Heroku webhook event", app)
            return PlainTextResponse("not a Heroku webhook event\n", status_code=400)
        log.info("webhook %s: %s %s", app, event.resource, event.action)
        if not event.relevant:
            return Response(status_code=204)
        if services.stopping:
            return PlainTextResponse("restarting; try again\n", status_code=503)  # Heroku retries "sync"
        delivery = event.delivery_id or hashlib.sha256(body).hexdigest()
        try:
            first = await services.budget_watch.store.claim_delivery(app, delivery)
        except StateUnavailable:
            return PlainTextResponse("cannot deduplicate now: state store unavailable\n", status_code=503)
        if not first:
            try:
                done = await services.budget_watch.store.delivery_done(app, delivery)
            except StateUnavailable:
                done = False
            if not done:
                # Another process is evaluating it right now: Heroku's next retry will know.
                return PlainTextResponse("being handled; try again\n", status_code=503)
            log.info("webhook %s: delivery %s was already handled; nothing done", app, delivery)
            return PlainTextResponse("already handled\n", status_code=200)
        services.forget_app(app)
        if event.resource == "release":
            # A check following Add PgBouncer waits for this (bot.verification.checker).
            await release_arrived(services, app)
        # A 2xx only once the evaluation is done: the subscription is level "sync", so Heroku
        # retries anything else, and a warning is never lost to a restart or a failing re-read.
        task = services.spawn(services.budget_watch.handle(app, event, delivery), name=f"budget-watch:{app}")
        try:
            step = await asyncio.wait_for(asyncio.shield(task), ANSWER_WITHIN_S)
        except TimeoutError:
            # Still running (it keeps its claim): the retry finds it done, or free again.
            return PlainTextResponse("still being handled; try again\n", status_code=503)
        if step is None:
            return PlainTextResponse("not evaluated; try again\n", status_code=503)
        return Response(status_code=200)

    return endpoint
