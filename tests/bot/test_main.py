"""`python -m bot` refuses to start half-configured, with one line naming the variable."""

from __future__ import annotations

import pytest

from tests.bot.test_hardening import run_bot as start
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
    result = start(env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"pgconn: {named}")
    assert API_KEY not in result.stderr and BOT_TOKEN not in result.stderr


@pytest.mark.parametrize(
    ("routes", "says"),
    [
        (
            '{"a1": {"channel": "alerts"}}',
            "PGCONN_APP_ROUTES: 'a1': channel must be a channel id (C…), got 'alerts'",
        ),
        (
            '{"a1": {"pagerduty_routing_key": "pd-secret-not-a-key"}}',
            "PGCONN_APP_ROUTES: 'a1': pagerduty_routing_key must be the 32-character integration key",
        ),
    ],
)
def test_a_malformed_app_route_stops_start_up_naming_the_entry(routes: str, says: str) -> None:
    """Through the real process start: one line, naming the app's entry, never the key's value."""
    result = start(
        {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": "s",
            "HEROKU_API_KEY": API_KEY,
            "PGCONN_APPS": "a1",
            "PGCONN_APP_ROUTES": routes,
        }
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"pgconn: {says}"), result.stderr
    assert "pd-secret" not in result.stderr
