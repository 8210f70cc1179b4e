"""pgconn as a child process, started exactly as operators start it: `python -m bot` + environment.

Used by the sandbox, the tests and the benchmarks, so all three exercise the real entry point.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class BotProcess:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path | None = None  # None: the child writes to this process's stdout/stderr
    env: dict[str, str] = field(default_factory=dict)

    @property
    def events_url(self) -> str:
        return f"{self.url}/slack/events"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

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


def start_bot(env: dict[str, str], log_path: Path | None = None, timeout_s: float = 30) -> BotProcess:
    """Start `python -m bot` and wait until GET /healthz answers 200."""
    if log_path is None:
        process = subprocess.Popen([sys.executable, "-m", "bot"], env=env, cwd=ROOT)
    else:
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "bot"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )
    bot = BotProcess(url=f"http://127.0.0.1:{env['PORT']}", process=process, log_path=log_path, env=env)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not bot.alive():
            raise RuntimeError(f"pgconn exited at start with status {process.returncode}:\n{bot.logs()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{bot.url}/healthz", timeout=1).status_code == 200:
                return bot
        time.sleep(0.05)
    bot.stop()
    raise RuntimeError(f"pgconn did not answer /healthz within {timeout_s:.0f} s:\n{bot.logs()}")
