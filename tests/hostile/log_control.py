"""A process that logs planted secrets through pgconn's own logging set-up: the positive
control of the secret scan (tests/hostile/test_secrets.py).

    python -m tests.hostile.log_control PATH on|off

PATH is where the secrets are planted; `off` removes the scrubber first (what a change that
dropped it would do). The scan must find every planted secret with `off`, and
none with `on`.
"""

from __future__ import annotations

import asyncio
import logging
import sys

import httpx
import psycopg
import uvicorn

from bot import logs
from bot.config import Settings
from emulators.serve import free_port
from pgconn.main import server_config
from tests.harness import bot_env
from tests.support import API_KEY, BOT_TOKEN, DB_PASSWORD, DRAIN_TOKEN, SIGNING_SECRET

# What pgconn/main.py gives the filter: the configured secrets (a database password is not
# one of them; the URL rule has to catch it).
CONFIGURED = [API_KEY, BOT_TOKEN, SIGNING_SECRET, DRAIN_TOKEN]
# A scheme typo: libpq then parses the URL as "key=value" text and quotes all of it, password
# included, in its error ('missing "=" after "postgresq://…" in connection info string').
BAD_URL = f"postgresq://app_role:{DB_PASSWORD}@127.0.0.1:1/appdb"


def exception_with_a_database_url() -> None:
    try:
        psycopg.connect(BAD_URL, connect_timeout=1)
    except psycopg.Error:
        logging.getLogger("bot.postgres").exception("could not connect")


def library_lines() -> None:
    # Secrets as a library might log them: in arguments, in a URL, in an exception's text.
    logging.getLogger("httpx").info("HTTP Request: GET %s", f"https://x:{DRAIN_TOKEN}@pgconn.example.com/")
    logging.getLogger("slack_bolt").warning("token %s, key %s", BOT_TOKEN, API_KEY)
    try:
        raise RuntimeError(f"signature with {SIGNING_SECRET}")
    except RuntimeError:
        logging.getLogger("slack_sdk").error("failed", exc_info=True)


def uvicorn_error_path() -> None:
    """An exception escaping the ASGI app, logged by uvicorn itself, configured as
    pgconn/main.py configures it (its server_config, after configure_logging)."""

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        if scope["type"] == "http":
            raise RuntimeError(f"could not reach {BAD_URL} with {API_KEY}")

    port = free_port()
    settings = Settings.from_env(
        bot_env(slack_url="http://127.0.0.1:1", heroku_url="http://127.0.0.1:1", redis_url="redis://127.0.0.1:1",
                port=port)
    )
    server = uvicorn.Server(server_config(app, settings))  # exactly the bot's uvicorn settings

    async def run() -> None:
        serving = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn.Server offers a flag, no event
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient() as client:
            await client.get(f"http://127.0.0.1:{port}/")
        server.should_exit = True
        await serving

    asyncio.run(run())


PATHS = {"exception": exception_with_a_database_url, "library": library_lines, "uvicorn": uvicorn_error_path}
# The secrets each path plants.
PLANTED = {
    "exception": {DB_PASSWORD},
    "library": {DRAIN_TOKEN, BOT_TOKEN, API_KEY, SIGNING_SECRET},
    "uvicorn": {DB_PASSWORD, API_KEY},
}


def main(path: str, mode: str) -> None:
    if mode == "off":
        # The scrubber removed: the filter passes records as they are, and scrubs nothing
        # where the formatter asks it to.
        logs.RedactingFilter.filter = lambda self, record: True  # type: ignore[method-assign]
        logs.RedactingFilter.scrub = lambda self, text: text  # type: ignore[method-assign]
    logs.configure_logging("DEBUG", CONFIGURED)
    PATHS[path]()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
