"""The running system under test: emulators in this process, the bot as real subprocesses.

The bot is started exactly as operators start it (`python -m bot` with environment
variables), so tests cover configuration, the ASGI server, Bolt's signature checks and
everything behind them. Its log goes to a file that tests can scan for secrets.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from emulators.serve import free_port
from tests.support import API_KEY, BOT_TOKEN, DRAIN_TOKEN, SIGNING_SECRET

ROOT = Path(__file__).resolve().parent.parent

ALERT_CHANNEL = "C0ALERTS"
OPS_CHANNEL = "C0OPS"
ADMIN = "UADMIN01"
GROUP = "SOPSTEAM"
GROUP_MEMBER = "UGROUPMEM"
STRANGER = "USTRANGER"
APPS = ("my-app", "std-app", "bare-app")


@dataclass
class BotProcess:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def events_url(self) -> str:
        return f"{self.url}/slack/events"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


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
        "PGCONN_PUBLIC_URL": "https://pgconn.example.com",
        "PGCONN_HEROKU_TIMEOUT": "2",
        "PGCONN_RESTART_POLL": "0.1",
        "PGCONN_RESTART_TIMEOUT": "20",
        "PGCONN_RESOLVE_AFTER": "2",
        "PGCONN_RESERVE_INTERVAL": "3600",
        # Fresh idle connections count as idle in tests; the threshold itself is tested on the inspector.
        "PGCONN_KILL_IDLE_AFTER": "0",
        "PGCONN_LOG_LEVEL": "INFO",
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def start_bot(env: dict[str, str]) -> BotProcess:
    log_path = Path(tempfile.mkstemp(prefix="pgconn-bot-", suffix=".log")[1])
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    bot = BotProcess(url=f"http://127.0.0.1:{env['PORT']}", process=process, log_path=log_path, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not bot.alive():
            raise RuntimeError(f"bot exited at start:\n{bot.logs()}")
        try:
            if httpx.get(f"{bot.url}/healthz", timeout=1).status_code == 200:
                return bot
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    bot.stop()
    raise RuntimeError(f"bot did not become healthy:\n{bot.logs()}")


def new_port() -> int:
    return free_port()
