"""The running system under test: emulators in this process, the bot as real subprocesses.

The bot is started exactly as operators start it (`python -m bot` with environment
variables), so tests cover configuration, the ASGI server, Bolt's signature checks and
everything behind them. Its log goes to a file that tests can scan for secrets.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path

import httpx

from emulators.serve import free_port
from sandbox.process import ROOT, BotProcess
from sandbox.process import start_bot as start_process
from tests.support import API_KEY, BOT_TOKEN, DRAIN_TOKEN, SIGNING_SECRET

ALERT_CHANNEL = "C0ALERTS"
# Where the bot says it can be reached; the Heroku emulator routes it to the running bot.
PUBLIC_URL = "https://pgconn.example.com"
OPS_CHANNEL = "C0OPS"
ADMIN = "UADMIN01"
GROUP = "SOPSTEAM"
GROUP_MEMBER = "UGROUPMEM"
STRANGER = "USTRANGER"
# In the alert channel, admin of nothing: may see every app on the Home tab (bot.home).
CHANNEL_MEMBER = "UCHANMEM1"
APPS = ("my-app", "std-app", "bare-app")


def bot_env(
    *, slack_url: str, heroku_url: str, redis_url: str, port: int, **overrides: str
) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": f"{slack_url}/api/",
        "HEROKU_API_KEY": API_KEY,
        "HEROKU_API_URL": heroku_url,
        "HEROKU_DATA_API_URL": heroku_url,
        "REDIS_URL": redis_url,
        "PGCONN_APPS": ",".join(APPS),
        "PGCONN_ADMINS": f"{ADMIN},{GROUP}",
        "PGCONN_ALERT_CHANNEL": ALERT_CHANNEL,
        "PGCONN_DRAIN_TOKEN": DRAIN_TOKEN,
        "PGCONN_PUBLIC_URL": PUBLIC_URL,
        "PGCONN_HEROKU_TIMEOUT": "2",
        "PGCONN_RESTART_POLL": "0.1",
        "PGCONN_RESTART_TIMEOUT": "20",
        "PGCONN_RESOLVE_AFTER": "2",
        "PGCONN_RESERVE_INTERVAL": "3600",
        # Fresh idle connections count as idle in tests; the threshold itself is tested on the inspector.
        "PGCONN_KILL_IDLE_AFTER": "0",
        "PGCONN_LOG_LEVEL": "INFO",
        # The alerting tool the message-event tests post as (pgconn answers no other bot).
        "PGCONN_ALERT_BOTS": "B0DATADOG",
        # Other tests send bursts of 200 commands, many from one person about one app: the
        # throttle's own tests start a bot with low limits (tests/hostile/test_throttle.py).
        "PGCONN_USER_RATE": "100000",
        "PGCONN_APP_RATE": "100000",
        "PGCONN_MAX_IN_FLIGHT": "100000",
        # Tests inject 429s (RateLimit-Remaining: 0); the reserve has a test of its own.
        "PGCONN_HEROKU_RESERVE": "0",
        # A test stopping its bot does not wait 20 s for a restart still being followed.
        "PGCONN_SHUTDOWN_GRACE": "2",
        # Verifications and forecasts have their own bots (tests/end_to_end/test_verification.py,
        # test_forecast.py): elsewhere a verdict posted a minute later, or a warning about a test's
        # own ramp of connections, would land in a later test's Slack.
        "PGCONN_VERIFY_AFTER": "3600",
        "PGCONN_FORECAST_INTERVAL": "0",
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def start_bot(env: dict[str, str]) -> BotProcess:
    """The bot with its log in a file, so tests can read it (and scan it for secrets)."""
    return start_process(env, log_path=Path(tempfile.mkstemp(prefix="pgconn-bot-", suffix=".log")[1]))


def new_port() -> int:
    return free_port()


async def settled(bot: BotProcess, timeout: float = 20) -> None:
    """Wait until the bot has finished considering everything it acknowledged: /healthz says no
    listener, webhook or alert work is pending. The positive signal to wait for before checking
    that something did *not* happen (a fixed sleep passes when the bot is merely slow)."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=5) as client:
        while True:
            health = (await client.get(f"{bot.url}/healthz")).json()
            if health["pending"] == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the bot still had {health['pending']} pending after {timeout}s")
            await asyncio.sleep(0.02)
