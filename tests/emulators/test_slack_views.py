"""The emulator's Home tab and message shortcuts, held to Slack's documented behaviour.

views.publish through the real slack_sdk client: a good view is stored and answered as the
spec shows; a view over Slack's limits (101 blocks, a 3001-character section, a 3001-character
private_metadata, an unknown user) is refused with `invalid_arguments` and Slack's
`[json-pointer:/view/…]` messages. The shortcut list is read from manifest.yml.
"""

from __future__ import annotations

import json
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from emulators.slack import SlackEmulator
from emulators.slack_surfaces import manifest_shortcuts
from emulators.slack_views import MAX_BLOCKS_VIEW, VIEW_MAX_BYTES, view_errors
from tests.emulators.test_slack_contract import (
    ALICE,
    assert_matches_spec,
    client,
    emulator,
    expect_error,
    spec,
)

__all__ = ["client", "emulator", "spec"]  # the contract tests' fixtures, used here


def home(blocks: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"type": "home", "blocks": blocks, **extra}


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


async def test_a_home_view_is_published_and_kept_per_user(
    spec: dict[str, Any], client: AsyncWebClient, emulator: SlackEmulator
) -> None:
    answer = await client.views_publish(user_id=ALICE, view=home([section("hello")], callback_id="x"))
    assert_matches_spec(spec, "views.publish", answer.data)  # type: ignore[arg-type]
    view = answer["view"]
    assert view["type"] == "home" and view["blocks"][0]["text"]["text"] == "hello"
    stored = emulator.home_view(ALICE)
    assert stored is not None and stored["id"] == view["id"]
    # A second publish replaces the view (same id), as Slack keeps one Home view per user.
    again = await client.views_publish(user_id=ALICE, view=home([section("bye")]))
    assert again["view"]["id"] == view["id"]
    assert emulator.home_view(ALICE)["blocks"][0]["text"]["text"] == "bye"  # type: ignore[index]


async def test_too_many_blocks_is_invalid_arguments_as_slack_says_it(
    spec: dict[str, Any], client: AsyncWebClient, emulator: SlackEmulator
) -> None:
    fits = [section(f"app {i}") for i in range(MAX_BLOCKS_VIEW)]
    await client.views_publish(user_id=ALICE, view=home(fits))
    error = await expect_error(
        spec,
        "views.publish",
        client.views_publish(user_id=ALICE, view=home([*fits, section("one more")])),
        "invalid_arguments",
    )
    messages = error.response["response_metadata"]["messages"]
    assert "[ERROR] no more than 100 items allowed [json-pointer:/view/blocks]" in messages
    # The refused view did not replace the one the user sees.
    assert len(emulator.home_view(ALICE)["blocks"]) == MAX_BLOCKS_VIEW  # type: ignore[index]


async def test_each_limit_of_a_view_is_enforced(spec: dict[str, Any], client: AsyncWebClient) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        (home([section("x" * 3001)]), "[json-pointer:/view/blocks/0/text/text]"),
        (home([section("x")], private_metadata="m" * 3001), "[json-pointer:/view/private_metadata]"),
        (home([section("x")], callback_id="c" * 256), "[json-pointer:/view/callback_id]"),
        ({"type": "modal", "blocks": [section("x")]}, "must be home [json-pointer:/view/type]"),
    ]
    for view, expected in cases:
        error = await expect_error(spec, "views.publish", client.views_publish(user_id=ALICE, view=view),
                                   "invalid_arguments")
        messages = error.response["response_metadata"]["messages"]
        assert any(expected in m for m in messages), (expected, messages)
    with_user = await expect_error(
        spec, "views.publish", client.views_publish(user_id="UNOBODY01", view=home([section("x")])),
        "invalid_arguments",
    )
    assert with_user.response["response_metadata"]["messages"] == ["[ERROR] invalid `user_id`"]


def test_the_size_bound_and_a_view_that_is_not_an_object() -> None:
    assert view_errors("[]")[0] == "failed to match all allowed schemas [json-pointer:/view]"
    assert view_errors(home([section("x")])) == []
    big = home([section("é" * 2900) for _ in range(MAX_BLOCKS_VIEW)])
    assert len(json.dumps(big).encode()) > VIEW_MAX_BYTES and view_errors(big) == []


async def test_an_oversized_view_is_refused(client: AsyncWebClient) -> None:
    big = home([section("é" * 2900) for _ in range(MAX_BLOCKS_VIEW)])
    try:
        await client.views_publish(user_id=ALICE, view=big)
    except SlackApiError as exc:
        assert exc.response["error"] == "invalid_arguments"
        assert "more than 250000" in exc.response["response_metadata"]["messages"][0]
    else:
        raise AssertionError("a view over 250 KB was accepted")


def test_the_manifest_declares_the_message_shortcut() -> None:
    shortcuts = manifest_shortcuts()
    assert shortcuts["diagnose_message"]["type"] == "message"
    assert shortcuts["diagnose_message"]["name"] == "Diagnose with pgconn"


def test_the_default_manifest_does_not_read_every_message() -> None:
    from emulators.slack_surfaces import MANIFEST

    live = [line.split("#")[0] for line in MANIFEST.read_text().splitlines()]
    requested = "\n".join(live)
    for wanted in ("app_home_opened", "commands", "home_tab_enabled: true"):
        assert wanted in requested
    for optional in ("channels:history", "groups:history", "message.channels", "message.groups"):
        assert optional not in requested, optional
