"""/pgconn text parsing: pure."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.commands import AppCommand, Command, CommandError, HelpCommand, parse_command

APPS = ("my-app", "my-app-staging")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", HelpCommand()),
        ("help", HelpCommand()),
        ("my-app", AppCommand("report", "my-app")),
        ("  MY-APP  ", AppCommand("report", "my-app")),
        ("my-app budget", AppCommand("budget", "my-app")),
        ("my-app-staging watch", AppCommand("watch", "my-app-staging")),
        ("my-app unwatch", AppCommand("unwatch", "my-app")),
        ("my-app audit", AppCommand("audit", "my-app")),
        ("my-app diagnose", AppCommand("diagnose", "my-app")),
    ],
)
def test_parses(text: str, expected: Command) -> None:
    assert parse_command(text, APPS) == expected


def test_single_app_is_the_default() -> None:
    assert parse_command("", ("only-app",)) == AppCommand("report", "only-app")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("nope", "does not watch an app named `nope`"),
        ("my-app explode", "does not understand `explode`"),
        ("my-app budget now", "does not understand"),
        ("<!channel>", "&lt;!channel&gt;"),
        ("x" * 500, "too long"),
    ],
)
def test_errors_are_specific(text: str, fragment: str) -> None:
    with pytest.raises(CommandError) as info:
        parse_command(text, APPS)
    assert fragment in info.value.message


@given(st.text(max_size=300))
def test_any_text_gives_a_command_or_a_clear_error(text: str) -> None:
    try:
        cmd = parse_command(text, APPS)
    except CommandError as exc:
        assert exc.message
        assert "<!" not in exc.message
    else:
        assert cmd.app in (None, *APPS)
