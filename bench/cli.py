"""The official Heroku CLI (npm `heroku`, v11), pointed at the emulator: the way people do it today.

It lives in `.cache/heroku-cli`, the directory tests/emulators/test_heroku_cli.py installs
it into; this installs it there the same way when it is missing (npm needed once).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support import API_KEY

CLI_DIR = Path(__file__).resolve().parent.parent / ".cache" / "heroku-cli"


@dataclass(frozen=True)
class CliRun:
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def _installed_major(directory: Path) -> str | None:
    package = directory / "node_modules" / "heroku" / "package.json"
    if not (package.exists() and (directory / "node_modules" / ".bin" / "heroku").exists()):
        return None
    return str(json.loads(package.read_text())["version"]).split(".")[0]


def ensure_cli(directory: Path = CLI_DIR) -> tuple[Path | None, str]:
    """(executable, "") when the CLI is there or could be installed; (None, why) otherwise."""
    executable = directory / "node_modules" / ".bin" / "heroku"
    if _installed_major(directory) == "11":
        return executable, ""
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        return None, "node/npm not on PATH"
    try:
        done = subprocess.run(
            [npm, "install", "--prefix", str(directory), "heroku@11", "--no-audit", "--no-fund",
             "--loglevel=error"],
            capture_output=True, text=True, timeout=600, check=False,
        )
    except subprocess.TimeoutExpired:
        return None, "npm install heroku@11 timed out"
    if done.returncode != 0 or _installed_major(directory) != "11":
        return None, f"npm install heroku@11 failed: {done.stderr.strip()[-200:]}"
    return executable, ""


class HerokuCli:
    """Runs `heroku ARGS` against the emulator with a throwaway HOME and no network egress."""

    def __init__(self, executable: Path, heroku_url: str) -> None:
        self.executable = executable
        self.home = Path(tempfile.mkdtemp(prefix="pgconn-bench-cli-"))
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "HEROKU_API_KEY": API_KEY,
            "HEROKU_HOST": heroku_url,
            # The data API host: the CLI keeps the Platform API's scheme and port for it.
            "HEROKU_DATA_HOST": "127.0.0.1",
            "HEROKU_PARTICLEBOARD_URL": heroku_url,
            "HEROKU_DISABLE_AUTOUPDATE": "1",
            "HEROKU_SKIP_NEW_VERSION_CHECK": "true",
            "HEROKU_SKIP_ANALYTICS": "1",
            "DISABLE_TELEMETRY": "true",
            "NO_COLOR": "1",
            "FORCE_COLOR": "0",
        }

    def run(self, *args: str) -> CliRun:
        started = time.perf_counter()
        done = subprocess.run(
            [str(self.executable), *args], env=self.env, capture_output=True, text=True, timeout=120,
            check=False,
        )
        return CliRun(done.returncode, done.stdout, done.stderr, time.perf_counter() - started)

    def close(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)
