"""The official Heroku CLI (npm `heroku`, v11) pointed at the Heroku emulator.

The emulator is held to it in tests, and the benchmarks time it as the baseline a person
would use instead of pgconn. Installed once into .cache/heroku-cli (about 35 s).
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

CLI_DIR = Path(__file__).resolve().parent.parent / ".cache" / "heroku-cli"


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def _installed_major(directory: Path) -> str | None:
    package = directory / "node_modules" / "heroku" / "package.json"
    if not (package.exists() and (directory / "node_modules" / ".bin" / "heroku").exists()):
        return None
    return str(json.loads(package.read_text())["version"]).split(".")[0]


def ensure_cli(directory: Path = CLI_DIR, timeout_s: float = 900) -> tuple[Path | None, str]:
    """(executable, "") when the CLI is there or could be installed; (None, why) otherwise."""
    executable = directory / "node_modules" / ".bin" / "heroku"
    if _installed_major(directory) == "11":
        return executable, ""
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        return None, "Node.js 20+ and npm must be on PATH to install the Heroku CLI (npm package `heroku`)"
    try:
        done = subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(directory),
                "heroku@11",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
            ],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return (
            None,
            f"`npm install heroku@11` did not finish in {timeout_s:.0f} s (is the npm registry reachable?)",
        )
    if done.returncode != 0 or _installed_major(directory) != "11":
        why = f"failed (exit {done.returncode}): {done.stderr.strip()[-3000:]}"
        return None, f"`npm install heroku@11` {why}"
    return executable, ""


def cli_env(heroku_url: str, api_key: str, home: Path) -> dict[str, str]:
    """Everything the CLI needs to talk only to the emulator, and nothing else."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        # The CLI writes a git credential helper into ~/.gitconfig: keep it out of the real HOME.
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "HEROKU_API_KEY": api_key,
        "HEROKU_HOST": heroku_url,
        # The data API host: the CLI keeps the Platform API's scheme and port for it.
        "HEROKU_DATA_HOST": "127.0.0.1",
        # Without it `ps` sends a side request, with the API key, to particleboard.heroku.com.
        "HEROKU_PARTICLEBOARD_URL": heroku_url,
        "HEROKU_DISABLE_AUTOUPDATE": "1",
        "HEROKU_SKIP_NEW_VERSION_CHECK": "true",
        "HEROKU_SKIP_ANALYTICS": "1",
        "DISABLE_TELEMETRY": "true",
        "NO_COLOR": "1",
        "FORCE_COLOR": "0",
    }


class HerokuCli:
    """Runs `heroku ARGS` against the emulator with a throwaway HOME."""

    def __init__(self, executable: Path, heroku_url: str, api_key: str, home: Path | None = None) -> None:
        self.executable = executable
        self._own_home = home is None
        self.home = home or Path(tempfile.mkdtemp(prefix="pgconn-heroku-cli-"))
        self.env = cli_env(heroku_url, api_key, self.home)

    def run(self, *args: str) -> CliResult:
        started = time.perf_counter()
        done = subprocess.run(
            [str(self.executable), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return CliResult(done.returncode, done.stdout, done.stderr, time.perf_counter() - started)

    def close(self) -> None:
        if self._own_home:
            shutil.rmtree(self.home, ignore_errors=True)
