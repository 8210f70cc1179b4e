"""The sandbox as a person starts it (`python -m bot --sandbox`), and a real browser to drive it.

The browser is Debian's Chromium, driven by Playwright's Python client (no downloaded
browser build). A bare CI machine gets Chromium and PgBouncer from apt-get here, once per
session; a machine where that is impossible fails with the command to run, never skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulators.serve import free_port
from sandbox.pgbouncer import find_binary

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "sandbox"
CHROMIUM = "/usr/bin/chromium"
EMOJI_FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _missing_packages() -> list[str]:
    missing = []
    if not os.access(CHROMIUM, os.X_OK):
        missing.append("chromium")
    if find_binary() is None:
        missing.append("pgbouncer")
    return missing


@pytest.fixture(scope="session")
def system_packages() -> None:
    """Chromium and PgBouncer from Debian, installed when missing (CI runs as root)."""
    missing = _missing_packages()
    # Only for the screenshots (emoji show as boxes without it): installed along, never required.
    extras = [] if Path(EMOJI_FONT).exists() else ["fonts-noto-color-emoji"]
    if not missing + extras:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        if missing:
            needed = " ".join(missing)
            pytest.fail(f"the sandbox tests need {needed}: run `sudo apt-get install -y {needed}`")
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Chromium's recommended packages bring the fonts pages are drawn with.
    install = ["apt-get", "install", "-y", "-q", *missing, *extras]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        # A fresh machine has no package lists yet.
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        done = subprocess.run(install, env=env, capture_output=True, text=True)
        if done.returncode != 0 and missing:
            pytest.fail(f"apt-get install {' '.join(missing)} failed:\n{done.stderr[-2000:]}")
    still = _missing_packages()
    if still:
        pytest.fail(f"apt-get ran but {' and '.join(still)} is still missing")


@dataclass
class RunningSandbox:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def state(self) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/sandbox/state", timeout=10)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="session")
def sandbox(system_packages: None) -> Iterator[RunningSandbox]:
    """`python -m bot --sandbox` on a free port, with no Slack or Heroku credential around.

    One for the session: every walk in tests/sandbox/ shares it (starting one costs seconds of
    the suite's budget), so a walk must not rely on what another left or take away what the
    story needs (modules run in name order; the story, test_sandbox_story.py, expects a demo-app
    with no report posted at the top of #ops and the web at 3 dynos)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log_path = ARTIFACTS / "sandbox.log"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "HEROKU_", "PGCONN_"))}
    env.update({"PORT": str(port), "HOST": "127.0.0.1", "PYTHONUNBUFFERED": "1"})
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "--sandbox"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    running = RunningSandbox(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"the sandbox exited at start:\n{running.logs()[-4000:]}")
            try:
                if httpx.get(f"{running.url}/sandbox/state", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the sandbox did not serve its page:\n{running.logs()[-4000:]}")
            time.sleep(0.1)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# Per module, unlike the sandbox: Playwright's sync API keeps an event loop running in this thread
# while it is open, and pytest-asyncio cannot run an async test of another module meanwhile.
@pytest.fixture(scope="module")
def browser(system_packages: None) -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the sandbox tests need the `playwright` Python package (pip install -e '.[test]')")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
