"""The real Heroku CLI (npm package `heroku`, v11) against the emulator.

If the official client works against the emulator and prints what it prints for real
apps ("Connections: 20/20"), the emulator speaks Heroku. The CLI is installed once
into `.cache/heroku-cli` (git-ignored); without it — no node, no npm registry — these
tests fail with the reason, they do not skip: a silent skip would hide that the
emulator is no longer held to the real client.

The CLI gets a throwaway HOME and a minimal environment: no netrc or stored login,
no autoupdate, telemetry or version checks, its particleboard (account delinquency)
side request pointed at the emulator too, so nothing leaves the machine.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from emulators.heroku import EmulatedApp, HerokuEmulator
from emulators.heroku_cli import CLI_DIR, CliResult, HerokuCli, ensure_cli
from emulators.serve import RunningServer, serve_in_thread
from sandbox.load import ConnectionLoad
from sandbox.servers import LocalPostgres
from tests.support import API_KEY, APP_ROLE, ROLE_LIMIT, role_backends, terminate_role

APP = "shop-api"
FORMATION = [
    {"type": "web", "quantity": 3, "command": "gunicorn app:app -w 3", "size": "basic"},
    {"type": "worker", "quantity": 1, "command": "celery -A app worker -c 4", "size": "basic"},
]

Heroku = Callable[..., "CliResult"]  # cli("pg:info", "-a", APP) -> CliResult

# Wall-clock times of each CLI run, printed at the end of the module (pytest -s shows them).
TIMINGS: list[tuple[str, float]] = []


def install_cli(directory: Path) -> Path:
    """Install `heroku@11` into `directory` unless present; fails the test (never skips) when it cannot."""
    started = time.monotonic()
    executable, why = ensure_cli(directory)
    if executable is None:
        pytest.fail(f"The Heroku CLI tests need the real CLI and could not get it: {why}")
    TIMINGS.append(("npm install heroku@11 (or already installed)", time.monotonic() - started))
    return executable


@pytest.fixture(scope="session")
def heroku_cli() -> Path:
    """The CLI's executable, installed with npm on first use (~35 s) and reused after."""
    return install_cli(CLI_DIR)


@pytest.fixture(scope="module", autouse=True)
def _report_timings() -> Iterator[None]:
    yield
    if TIMINGS:
        print("\nHeroku CLI timings:")
        for what, seconds in TIMINGS:
            print(f"  {seconds:6.2f}s  {what}")


@pytest.fixture(scope="session")
def cli_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Shared across runs of the session so the CLI's first-run notices appear once.
    return tmp_path_factory.mktemp("heroku-cli-home")


@pytest.fixture
def emulator(pg: LocalPostgres, app_dsn: str) -> Iterator[HerokuEmulator]:
    terminate_role(pg)
    em = HerokuEmulator(admin_dsn=pg.dsn(), api_key=API_KEY, dyno_boot_seconds=60)
    em.add_app(
        APP,
        database_url=app_dsn.replace("postgresql://", "postgres://", 1),
        role=APP_ROLE,
        formation=FORMATION,
        buildpacks=["heroku/pgbouncer", "heroku/python"],
    )
    yield em
    terminate_role(pg)


@pytest.fixture
def server(emulator: HerokuEmulator) -> Iterator[RunningServer]:
    running = serve_in_thread(emulator.app)
    yield running
    running.stop()


@pytest.fixture
def app(emulator: HerokuEmulator) -> EmulatedApp:
    return emulator.apps[APP]


@pytest.fixture
def cli(heroku_cli: Path, server: RunningServer, cli_home: Path) -> Heroku:
    """Run `heroku ARGS...` against the emulator; returns a CliResult."""
    runner = HerokuCli(heroku_cli, server.url, API_KEY, home=cli_home)

    def run(*args: str) -> CliResult:
        result = runner.run(*args)
        TIMINGS.append((f"heroku {' '.join(args)}", result.seconds))
        return result

    return run


def ok(result: CliResult) -> CliResult:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def test_pg_info_shows_the_role_at_its_limit(
    cli: Heroku, app: EmulatedApp, load: ConnectionLoad, pg: LocalPostgres
) -> None:
    assert load.open(ROLE_LIMIT, "web.1") == ROLE_LIMIT
    out = ok(cli("pg:info", "-a", APP)).stdout
    assert out.startswith("=== DATABASE_URL")
    assert re.search(rf"^Connections:\s+{ROLE_LIMIT}/{ROLE_LIMIT}$", out, re.M), out
    assert re.search(r"^Plan:\s+Essential 0$", out, re.M)
    assert re.search(r"^Status:\s+Available$", out, re.M)
    # The server's own version: the suite's Postgres is the machine's (Debian 12: 15) or pgserver's (16).
    with psycopg.connect(pg.dsn()) as conn:
        version = str(conn.execute("SHOW server_version").fetchone()[0]).split()[0]  # type: ignore[index]
    assert re.search(rf"^PG Version:\s+{re.escape(version)}$", out, re.M), out
    assert re.search(r"^Data Size:\s+[\d.]+ \w+ / 1 GB \(\d+\.\d\d%\)$", out, re.M)
    assert re.search(r"^Tables:\s+\d+/4000 \(In compliance\)$", out, re.M)
    assert re.search(rf"^Add-on:\s+{app.addon.name}$", out, re.M)
    assert role_backends(pg) == ROLE_LIMIT


def test_pg_killall_frees_the_role(
    cli: Heroku, app: EmulatedApp, load: ConnectionLoad, pg: LocalPostgres
) -> None:
    load.open(ROLE_LIMIT, "web.2")
    result = ok(cli("pg:killall", "-a", APP))
    assert "Terminating connections for all credentials... done" in result.stderr
    assert role_backends(pg) == 0 and load.alive() == 0
    assert app.connection_resets == [ROLE_LIMIT]
    out = ok(cli("pg:info", "-a", APP)).stdout
    assert re.search(rf"^Connections:\s+0/{ROLE_LIMIT}$", out, re.M), out


def test_ps_lists_dynos_by_process_type(cli: Heroku) -> None:
    out = ok(cli("ps", "-a", APP)).stdout
    assert "=== web (basic): gunicorn app:app -w 3 (3)" in out
    assert "=== worker (basic): celery -A app worker -c 4 (1)" in out
    for dyno in ("web.1", "web.2", "web.3", "worker.1"):
        assert re.search(rf"^{re.escape(dyno)}: up ", out, re.M), out


def test_ps_restart_drops_connections_and_dynos_restart(
    cli: Heroku, app: EmulatedApp, load: ConnectionLoad, pg: LocalPostgres
) -> None:
    load.open(6, "web.1")
    load.open(4, "worker.1")
    result = ok(cli("ps:restart", "-a", APP))
    assert f"Restarting all dynos on {APP}... done" in result.stderr
    assert role_backends(pg) == 0 and load.alive() == 0
    assert app.restarts[-1].target == "all" and app.restarts[-1].terminated == 10
    out = ok(cli("ps", "-a", APP)).stdout
    assert re.search(r"^web\.1: starting ", out, re.M), out  # boot takes 60 s in this fixture


def test_ps_restart_one_process_type(cli: Heroku, app: EmulatedApp, load: ConnectionLoad) -> None:
    web = ConnectionLoad(load.dsn)
    try:
        web.open(3, "web.2")
        load.open(2, "worker.1")
        result = ok(cli("ps:restart", "-a", APP, "--process-type", "web"))
        assert f"Restarting all web dynos on {APP}... done" in result.stderr
        assert web.alive() == 0 and load.alive() == 2
        assert app.restarts[-1].target == "web"
        result = ok(cli("ps:restart", "-a", APP, "--dyno-name", "worker.1"))
        assert load.alive() == 0 and app.restarts[-1].target == "worker.1"
    finally:
        web.close()


def test_buildpacks_in_order(cli: Heroku) -> None:
    out = ok(cli("buildpacks", "-a", APP)).stdout
    assert f"=== {APP} Classic Buildpacks" in out
    assert "1. heroku/pgbouncer\n2. heroku/python\n" in out


def test_connection_pooling_attach_on_standard(cli: Heroku, emulator: HerokuEmulator, app_dsn: str) -> None:
    big = emulator.add_app(
        "shop-big",
        database_url=app_dsn.replace("postgresql:", "postgres:", 1),
        role=APP_ROLE,
        plan="standard-0",
    )
    before = big.current_release.version
    result = ok(cli("pg:connection-pooling:attach", "-a", "shop-big"))
    assert big.current_release.version == before + 1
    assert (
        f"Setting DATABASE_CONNECTION_POOL config vars and restarting shop-big... done, v{before + 1}"
    ) in result.stderr, result.stderr
    assert "DATABASE_CONNECTION_POOL_URL" in big.config_vars


def test_connection_pooling_refused_on_essential(cli: Heroku) -> None:
    result = cli("pg:connection-pooling:attach", "-a", APP)
    assert result.returncode != 0
    assert "You can't perform this operation on Essential-tier databases." in result.stderr


def test_cli_only_talked_to_the_emulator_with_the_key(cli: Heroku, emulator: HerokuEmulator) -> None:
    ok(cli("pg:info", "-a", APP))
    ok(cli("ps", "-a", APP))
    paths = [r.path for r in emulator.requests]
    assert any(p.startswith("/client/v11/databases/") for p in paths)  # data API: same server
    assert "/account" in paths  # ps, and its particleboard side request
    assert all(r.headers.get("authorization") == f"Bearer {API_KEY}" for r in emulator.requests)


def test_the_emulators_strictness_is_what_the_real_cli_already_satisfies(
    cli: Heroku, emulator: HerokuEmulator
) -> None:
    """The emulator refuses what the API refuses (no version 3 in Accept; Accept-Inclusion honoured
    only on version=3.sdk). The real CLI, the reference client, works against it: every request it
    sends names version 3, and it asks for inclusions only with the 3.sdk variant."""
    for command in (("pg:info",), ("pg:killall",), ("ps",), ("ps:restart",), ("buildpacks",)):
        ok(cli(*command, "-a", APP))
    sent = [
        (r.path, r.headers.get("accept", ""), r.headers.get("accept-inclusion")) for r in emulator.requests
    ]
    assert all("application/vnd.heroku+json; version=3" in accept for _, accept, _ in sent), sent
    including = [(path, accept) for path, accept, inclusion in sent if inclusion]
    assert including and all(accept.endswith("version=3.sdk") for _, accept in including), including
