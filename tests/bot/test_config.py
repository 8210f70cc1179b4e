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


def test_diagnosis_thresholds_default_and_read_yellow_red_pairs() -> None:
    default = Settings.from_env(GOOD).diagnosis_thresholds
    assert (default.idle_in_transaction_s.yellow, default.idle_in_transaction_s.red) == (60, 300)
    assert (default.connections.yellow, default.connections.red) == (0.80, 0.95)
    s = Settings.from_env(
        {
            **GOOD,
            "PGCONN_DIAG_LONG_QUERY_S": "10, 120",
            "PGCONN_DIAG_LONG_TX_S": "30,30",
            "PGCONN_DIAG_IDLE_IN_TX_S": "15",  # one number: red from there, no yellow stage
            "PGCONN_DIAG_BLOCKED_S": "1,2.5",
            "PGCONN_DIAG_LEAK_FACTOR": "3",
            "PGCONN_ALERT_WARN": "0.7",
            "PGCONN_ALERT_CRITICAL": "0.9",
        }
    ).diagnosis_thresholds
    assert (s.long_query_s.yellow, s.long_query_s.red) == (10, 120)
    assert (s.long_transaction_s.yellow, s.long_transaction_s.red) == (30, 30)
    assert (s.idle_in_transaction_s.yellow, s.idle_in_transaction_s.red) == (15, 15)
    assert (s.blocked_s.yellow, s.blocked_s.red) == (1, 2.5)
    assert s.leak_factor == 3
    assert (s.connections.yellow, s.connections.red) == (0.7, 0.9)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PGCONN_DIAG_LONG_QUERY_S", "soon"),
        ("PGCONN_DIAG_LONG_TX_S", "300,60"),
        ("PGCONN_DIAG_IDLE_IN_TX_S", "1,2,3"),
        ("PGCONN_DIAG_BLOCKED_S", "-1,5"),
        ("PGCONN_DIAG_LEAK_FACTOR", "0.5"),
    ],
)
def test_bad_diagnosis_threshold_is_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({**GOOD, name: value})
    assert name in info.value.message
