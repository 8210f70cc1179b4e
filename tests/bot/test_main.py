"""`python -m bot` refuses to start half-configured, with one line naming the variable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.harness import ROOT
from tests.support import API_KEY, BOT_TOKEN


@pytest.mark.parametrize(
    ("env", "named"),
    [
        (
            {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": "s", "HEROKU_API_KEY": API_KEY},
            "PGCONN_APPS",
        ),
        (
            {"SLACK_BOT_TOKEN": BOT_TOKEN, "HEROKU_API_KEY": API_KEY, "PGCONN_APPS": "a1"},
            "SLACK_SIGNING_SECRET",
        ),
        ({"HEROKU_API_KEY": API_KEY, "SLACK_SIGNING_SECRET": "s", "PGCONN_APPS": "a1"}, "SLACK_BOT_TOKEN"),
        (
            {
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_SIGNING_SECRET": "s",
                "HEROKU_API_KEY": API_KEY,
                "PGCONN_APPS": "a1",
                "PORT": "eighty",
            },
            "PORT",
        ),
    ],
)
def test_missing_or_malformed_variable_stops_start_up(env: dict[str, str], named: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot"],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"pgconn: {named}")
    assert API_KEY not in result.stderr and BOT_TOKEN not in result.stderr
