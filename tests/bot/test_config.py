"""Settings.from_env: every required variable is named when missing or malformed."""

from __future__ import annotations

import pytest

from bot.config import Settings, wants_sandbox
from bot.errors import ConfigError

GOOD = {
    "SLACK_BOT_TOKEN": "xoxb-1",
    "SLACK_SIGNING_SECRET": "s",
    "HEROKU_API_KEY": "k",
    "PGCONN_APPS": "my-app, other-app",
    "PGCONN_ADMINS": "U123,S456",
    "PGCONN_ALERT_CHANNEL": "C0ALERTS",
}


def test_good_environment_parses() -> None:
    s = Settings.from_env(GOOD)
    assert s.apps == ("my-app", "other-app")
    assert s.admin_users == {"U123"} and s.admin_groups == {"S456"}
    assert s.heroku_api_url == "https://api.heroku.com" and s.port == 3000
    assert s.http_mode


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"SLACK_BOT_TOKEN": ""}, "SLACK_BOT_TOKEN"),
        ({"SLACK_BOT_TOKEN": "xoxp-user"}, "SLACK_BOT_TOKEN"),
        ({"SLACK_SIGNING_SECRET": ""}, "SLACK_SIGNING_SECRET"),
        ({"HEROKU_API_KEY": ""}, "HEROKU_API_KEY"),
        ({"PGCONN_APPS": ""}, "PGCONN_APPS"),
        ({"PGCONN_APPS": "Bad_App"}, "PGCONN_APPS"),
        ({"PGCONN_ADMINS": "alice"}, "PGCONN_ADMINS"),
        ({"PGCONN_ALERT_CHANNEL": "#alerts"}, "PGCONN_ALERT_CHANNEL"),
        ({"HEROKU_API_URL": "ftp://x"}, "HEROKU_API_URL"),
        ({"PORT": "http"}, "PORT"),
        ({"SLACK_APP_TOKEN": "xoxb-wrong"}, "SLACK_APP_TOKEN"),
        ({"PGCONN_ALERT_WARN": "lots"}, "PGCONN_ALERT_WARN"),
        ({"PGCONN_PUBLIC_URL": "pgconn.example.com"}, "PGCONN_PUBLIC_URL"),
    ],
)
def test_bad_variable_is_named(change: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({**GOOD, **change})
    assert info.value.message.startswith(named)
    assert "\n" not in info.value.message


def test_socket_mode_does_not_need_signing_secret() -> None:
    s = Settings.from_env({**GOOD, "SLACK_SIGNING_SECRET": "", "SLACK_APP_TOKEN": "xapp-1"})
    assert not s.http_mode


def test_sandbox_only_when_no_credential_at_all() -> None:
    assert wants_sandbox({})
    assert wants_sandbox({"PGCONN_APPS": "x"})
    assert not wants_sandbox({"HEROKU_API_KEY": "k"})
    assert not wants_sandbox({"SLACK_BOT_TOKEN": "xoxb-1"})
