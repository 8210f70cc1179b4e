"""The test servers work from any checkout location: as root, in a clone inside a mode-700
directory (as /root is), where the unprivileged account that runs postgres cannot reach
anything inside the clone (it failed there with exit 126, "permission denied", on initdb)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pgserver
import pytest

from sandbox.servers import DEBIAN_POSTGRES

ROOT = Path(__file__).resolve().parents[2]
START_AND_QUERY = """
import psycopg, pgserver
from sandbox.servers import LocalPostgres, _pg_bindir
print("bin", _pg_bindir(), "wheel", pgserver.__file__)
pg = LocalPostgres.start()
try:
    with psycopg.connect(pg.dsn(), connect_timeout=5) as conn:
        print("server", conn.execute("show server_version").fetchone()[0])
finally:
    pg.stop()
"""


@pytest.fixture
def private_clone(tmp_path: Path) -> Path:
    """A clone in a private home, with the pgserver wheel installed inside it too (as a
    `.venv/` in the clone has it)."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    home.chmod(0o700)
    clone = home / "pgconn"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    wheel = Path(pgserver.__file__).parent
    shutil.copytree(wheel, clone / ".venv-site" / "pgserver", symlinks=True)
    shutil.copytree(wheel.parent / "pgserver.libs", clone / ".venv-site" / "pgserver.libs", symlinks=True)
    return clone


@pytest.mark.parametrize("which", ["wheel", "system"])
def test_postgres_starts_from_a_clone_in_a_private_home(private_clone: Path, which: str) -> None:
    if which == "system" and not any(DEBIAN_POSTGRES.glob("*/bin/initdb")):
        from sandbox import debian

        debian.ensure("postgresql", "initdb", [str(p) for p in DEBIAN_POSTGRES.glob("*/bin/initdb")])
    env = {
        **os.environ,
        "PYTHONPATH": f"{private_clone / '.venv-site'}:{private_clone}",
        "PGCONN_LOCAL_POSTGRES": which if which == "wheel" else "",
    }
    result = subprocess.run(
        [sys.executable, "-c", START_AND_QUERY],
        cwd=private_clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"wheel {private_clone}" in result.stdout  # the wheel inside the private home was the one imported
    if which == "wheel":
        assert "/usr/lib/postgresql" not in result.stdout and "server 16" in result.stdout
    else:
        assert "bin /usr/lib/postgresql/" in result.stdout
