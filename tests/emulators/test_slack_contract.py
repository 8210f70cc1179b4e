"""The Slack emulator holds to Slack's contract.

Web API side: the real slack_sdk AsyncWebClient talks to the emulator over HTTP and every
answer is validated against the response schema of that method in Slack's OpenAPI spec
(shared/contracts/slack-web-api.openapi.json), with the spec's known errata corrected in
one visible place (SPEC_ERRATA below). Request side: slash commands, clicks and events the
emulator sends reach a real slack_bolt AsyncApp, which verifies their signatures and routes
them to its listeners, so the payloads are shaped the way Bolt (and so Slack) expects.

IDs here are spec-shaped (the spec wants 8+ characters after the prefix for channel and
workspace ids); the emulator's defaults (C0ALERTS, T0PGCONN) are shorter, like the ids the
rest of the suite uses, and that is fine for everything but these pattern checks.
"""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from jsonschema import Draft4Validator
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from emulators.serve import serve_in_thread
from emulators.slack import SlackEmulator, slack_signature

# A vendored copy of ../shared/contracts (CI clones the repo alone); test_contracts_copy.py
# checks it still matches the shared original whenever that is present.
SPEC_PATH = Path(__file__).resolve().parent / "contracts" / "slack-web-api.openapi.json"

# Some calls here leave out ``text`` on purpose; slack_sdk warns about that, rightly.
pytestmark = pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")

TOKEN = "xoxb-contract-test-token"
SECRET = "contract-signing-secret"
TEAM = "T0PGCONN01"
CHANNEL = "C0PGALERTS"
ALICE = "U0ALICE001"
BOB = "U0BOB00001"
OPS = "S0OPSTEAM1"
TS_PATTERN = re.compile(r"^\d{10}\.\d{6}$")


# -- the spec, and its errata ----------------------------------------------------------


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text())


# Errors real Slack returns for these methods that the 2021 spec's enums leave out.
MISSING_ERRORS: dict[str, list[str]] = {
    "chat.postMessage": ["invalid_blocks", "invalid_blocks_format", "ratelimited"],
    "chat.update": ["invalid_blocks", "invalid_blocks_format", "ratelimited"],
    "chat.postEphemeral": ["invalid_blocks", "invalid_blocks_format", "ratelimited"],
    "usergroups.users.list": ["no_such_subteam"],
}


def apply_errata(method: str, ok: bool, schema: dict[str, Any], spec: dict[str, Any]) -> None:
    """Known mistakes in the spec, corrected so that real Slack answers would pass."""
    if not ok:
        # Methods the spec documents only loosely (views.publish) give no enum of errors.
        error = schema["properties"].get("error")
        if error is not None:
            error["enum"] = [*error["enum"], *MISSING_ERRORS.get(method, [])]
        # invalid_blocks answers carry the problems: "errors" and response_metadata.messages.
        schema["properties"]["errors"] = {"type": "array", "items": {"type": "string"}}
        schema["properties"]["response_metadata"] = {"type": "object"}
        return
    if method == "chat.update":
        # The spec types message.blocks as an object; Slack returns the blocks array.
        schema["properties"]["message"]["properties"]["blocks"] = {"$ref": "#/definitions/blocks"}
    if method == "conversations.replies":
        # The thread item schemas forbid fields every bot message has (blocks, bot_id,
        # bot_profile, ...): let them have what the spec's own message object allows.
        message_props = spec["definitions"]["objs_message"]["properties"]
        for item in schema["properties"]["messages"]["items"]["items"]:
            item["properties"] = {**message_props, **item["properties"]}


def assert_matches_spec(spec: dict[str, Any], method: str, body: dict[str, Any]) -> None:
    operation = next(iter(spec["paths"][f"/{method}"].values()))
    ok = body.get("ok") is True
    schema = copy.deepcopy(operation["responses"]["200" if ok else "default"]["schema"])
    apply_errata(method, ok, schema, spec)
    schema["definitions"] = spec["definitions"]
    errors = sorted(Draft4Validator(schema).iter_errors(body), key=lambda e: list(e.path))
    problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]
    assert not problems, f"{method} answer breaks the spec:\n" + "\n".join(problems)


async def expect_error(spec: dict[str, Any], method: str, call: Any, error: str) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        await call
    body = caught.value.response.data
    assert isinstance(body, dict)
    assert body["error"] == error, body
    assert_matches_spec(spec, method, body)
    return caught.value


# -- fixtures ------------------------------------------------------------------------


@pytest.fixture
def emulator() -> Iterator[SlackEmulator]:
    em = SlackEmulator(bot_token=TOKEN, signing_secret=SECRET, team_id=TEAM)
    em.add_channel(CHANNEL, "pgconn-alerts-test")
    em.add_user(ALICE, "alice")
    em.add_user(BOB, "bob")
    em.add_usergroup(OPS, [ALICE])
    em.start()
    yield em
    em.stop()


@pytest.fixture
def client(emulator: SlackEmulator) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=emulator.api_url)


def button(action_id: str, value: str, *, confirm: bool = True) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "value": value,
        "style": "danger",
        "text": {"type": "plain_text", "text": "Kill idle connections"},
    }
    if confirm:
        element["confirm"] = {
            "title": {"type": "plain_text", "text": "Kill idle?"},
            "text": {"type": "mrkdwn", "text": "Terminates *idle* backends of `my-app`."},
            "confirm": {"type": "plain_text", "text": "Kill"},
            "deny": {"type": "plain_text", "text": "Cancel"},
        }
    return element


def report_blocks() -> list[dict[str, Any]]:
    return [
        {"type": "header", "text": {"type": "plain_text", "text": "my-app: 20/20 connections"}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "*Plan* essential-0"},
            "fields": [{"type": "mrkdwn", "text": f"*web.{i}* 3 idle"} for i in range(10)],
        },
        {"type": "divider"},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "pgconn"}]},
        {
            "type": "actions",
            "block_id": "pgconn.actions",
            "elements": [button("pgconn.kill_idle", "my-app"), button("pgconn.restart", "my-app")],
        },
    ]


# -- Web API: answers match the spec --------------------------------------------------


async def test_auth_test(spec: dict[str, Any], client: AsyncWebClient) -> None:
    answer = await client.auth_test()
    assert_matches_spec(spec, "auth.test", answer.data)  # type: ignore[arg-type]
    assert answer["user_id"] == "UBOTPGCONN" and answer["team_id"] == TEAM
    assert answer["bot_id"]


async def test_bad_or_missing_token(spec: dict[str, Any], emulator: SlackEmulator) -> None:
    wrong = AsyncWebClient(token="xoxb-wrong", base_url=emulator.api_url)
    await expect_error(spec, "auth.test", wrong.auth_test(), "invalid_auth")
    anonymous = AsyncWebClient(base_url=emulator.api_url)
    await expect_error(spec, "auth.test", anonymous.auth_test(), "not_authed")
    await expect_error(
        spec,
        "chat.postMessage",
        wrong.chat_postMessage(channel=CHANNEL, text="hi"),
        "invalid_auth",
    )
    assert emulator.messages(CHANNEL) == []


async def test_post_message_threads_and_history(
    spec: dict[str, Any], client: AsyncWebClient, emulator: SlackEmulator
) -> None:
    top = await client.chat_postMessage(channel=CHANNEL, text="my-app is full", blocks=report_blocks())
    assert_matches_spec(spec, "chat.postMessage", top.data)  # type: ignore[arg-type]
    assert top["channel"] == CHANNEL and TS_PATTERN.match(top["ts"])
    assert top["message"]["blocks"][4]["block_id"] == "pgconn.actions"

    reply = await client.chat_postMessage(channel=CHANNEL, text="terminated 18", thread_ts=top["ts"])
    assert_matches_spec(spec, "chat.postMessage", reply.data)  # type: ignore[arg-type]
    assert reply["message"]["thread_ts"] == top["ts"]
    loud = await client.chat_postMessage(
        channel=CHANNEL, text="resolved", thread_ts=top["ts"], reply_broadcast=True
    )
    # A reply to a reply lands in the parent's thread, as in Slack.
    nested = await client.chat_postMessage(channel=CHANNEL, text="again", thread_ts=reply["ts"])
    assert nested["message"]["thread_ts"] == top["ts"]

    stamps = [top["ts"], reply["ts"], loud["ts"], nested["ts"]]
    assert stamps == sorted(stamps, key=float) and len(set(stamps)) == 4

    replies = await client.conversations_replies(channel=CHANNEL, ts=top["ts"])
    assert_matches_spec(spec, "conversations.replies", replies.data)  # type: ignore[arg-type]
    assert [m["ts"] for m in replies["messages"]] == stamps
    parent = replies["messages"][0]
    assert parent["reply_count"] == 3 and parent["latest_reply"] == nested["ts"]

    history = await client.conversations_history(channel=CHANNEL)
    assert_matches_spec(spec, "conversations.history", history.data)  # type: ignore[arg-type]
    # Newest first; replies are not in history, broadcast replies are.
    assert [m["ts"] for m in history["messages"]] == [loud["ts"], top["ts"]]
    page = await client.conversations_history(channel=CHANNEL, limit=1)
    assert page["has_more"] is True
    rest = await client.conversations_history(
        channel=CHANNEL, limit=1, cursor=page["response_metadata"]["next_cursor"]
    )
    assert [m["ts"] for m in rest["messages"]] == [top["ts"]]

    assert [m.ts for m in emulator.messages(CHANNEL)] == stamps
    assert [m.text for m in emulator.thread(CHANNEL, top["ts"])] == [
        "terminated 18",
        "resolved",
        "again",
    ]
    stored = emulator.messages(CHANNEL)[0]
    assert stored.user == "UBOTPGCONN" and stored.bot_id == emulator.bot_id
    assert stored.thread_ts is None and emulator.messages(CHANNEL)[1].thread_ts == top["ts"]


async def test_form_encoded_and_get_requests(client: AsyncWebClient, emulator: SlackEmulator) -> None:
    # Form body with blocks as a JSON string, the other way slack_sdk (and curl) post.
    answer = await client.api_call(
        "chat.postMessage",
        data={"channel": "#pgconn-alerts-test", "text": "form", "blocks": json.dumps(report_blocks())},
    )
    assert answer["channel"] == CHANNEL  # a channel name resolves to its id
    assert emulator.calls("chat.postMessage")[0]["text"] == "form"
    assert emulator.messages(CHANNEL)[0].blocks[0]["type"] == "header"
    looked_up = await client.api_call("conversations.history", http_verb="GET", params={"channel": CHANNEL})
    assert looked_up["messages"][0]["text"] == "form"
    raw = emulator.received[0]
    assert raw.headers["authorization"] == f"Bearer {TOKEN}" and b"form" in raw.body
    assert "token" not in emulator.calls("chat.postMessage")[0]


async def test_update_keeps_history_of_edits(
    spec: dict[str, Any], client: AsyncWebClient, emulator: SlackEmulator
) -> None:
    posted = await client.chat_postMessage(channel=CHANNEL, text="v1", blocks=report_blocks())
    done = [{"type": "section", "text": {"type": "mrkdwn", "text": "done by <@U0ALICE001>"}}]
    updated = await client.chat_update(channel=CHANNEL, ts=posted["ts"], text="v2", blocks=done)
    assert_matches_spec(spec, "chat.update", updated.data)  # type: ignore[arg-type]
    assert updated["ts"] == posted["ts"] and updated["text"] == "v2"
    # Omitted blocks are kept, as the method's documentation says.
    await client.chat_update(channel=CHANNEL, ts=posted["ts"], text="v3")
    message = emulator.messages(CHANNEL)[0]
    assert (message.text, message.blocks[0]["text"]["text"]) == ("v3", "done by <@U0ALICE001>")
    assert [e["text"] for e in message.edits] == ["v1", "v2"]
    assert message.edits[0]["blocks"][0]["type"] == "header"
    # An empty list removes the blocks; a call with nothing to change is refused.
    await client.chat_update(channel=CHANNEL, ts=posted["ts"], blocks=[])
    assert emulator.messages(CHANNEL)[0].blocks == []
    await expect_error(spec, "chat.update", client.chat_update(channel=CHANNEL, ts=posted["ts"]), "no_text")

    await expect_error(
        spec,
        "chat.update",
        client.chat_update(channel=CHANNEL, ts="1.000001", text="x"),
        "message_not_found",
    )
    human = await emulator.post_as(CHANNEL, "hello", user=ALICE)
    await expect_error(
        spec,
        "chat.update",
        client.chat_update(channel=CHANNEL, ts=human.ts, text="x"),
        "cant_update_message",
    )


async def test_ephemeral_permalink_reactions(
    spec: dict[str, Any], client: AsyncWebClient, emulator: SlackEmulator
) -> None:
    eph = await client.chat_postEphemeral(channel=CHANNEL, user=BOB, text="not allowed")
    assert_matches_spec(spec, "chat.postEphemeral", eph.data)  # type: ignore[arg-type]
    assert emulator.ephemerals[-1]["user"] == BOB
    assert emulator.ephemerals[-1]["via"] == "chat.postEphemeral"
    await expect_error(
        spec,
        "chat.postEphemeral",
        client.chat_postEphemeral(channel=CHANNEL, user="U0NOBODY01", text="x"),
        "user_not_in_channel",
    )

    posted = await client.chat_postMessage(channel=CHANNEL, text="report")
    link = await client.chat_getPermalink(channel=CHANNEL, message_ts=posted["ts"])
    assert_matches_spec(spec, "chat.getPermalink", link.data)  # type: ignore[arg-type]
    assert link["permalink"].endswith(f"/archives/{CHANNEL}/p{posted['ts'].replace('.', '')}")

    added = await client.reactions_add(channel=CHANNEL, timestamp=posted["ts"], name="white_check_mark")
    assert_matches_spec(spec, "reactions.add", added.data)  # type: ignore[arg-type]
    assert emulator.messages(CHANNEL)[0].reactions == {"white_check_mark": ["UBOTPGCONN"]}
    await expect_error(
        spec,
        "reactions.add",
        client.reactions_add(channel=CHANNEL, timestamp=posted["ts"], name="white_check_mark"),
        "already_reacted",
    )


async def test_users_groups_and_conversations(spec: dict[str, Any], client: AsyncWebClient) -> None:
    members = await client.usergroups_users_list(usergroup=OPS)
    assert_matches_spec(spec, "usergroups.users.list", members.data)  # type: ignore[arg-type]
    assert members["users"] == [ALICE]
    await expect_error(
        spec,
        "usergroups.users.list",
        client.usergroups_users_list(usergroup="S0NOPE0001"),
        "no_such_subteam",
    )
    user = await client.users_info(user=ALICE)
    assert_matches_spec(spec, "users.info", user.data)  # type: ignore[arg-type]
    assert user["user"]["name"] == "alice" and user["user"]["is_bot"] is False
    await expect_error(spec, "users.info", client.users_info(user="U0NOBODY01"), "user_not_found")
    info = await client.conversations_info(channel=CHANNEL)
    assert_matches_spec(spec, "conversations.info", info.data)  # type: ignore[arg-type]
    assert info["channel"]["name"] == "pgconn-alerts-test" and info["channel"]["is_member"]
    await expect_error(
        spec,
        "conversations.info",
        client.conversations_info(channel="C0MISSING01"),
        "channel_not_found",
    )


# -- Web API: validation like Slack's -------------------------------------------------


def confirm_without_deny() -> list[dict[str, Any]]:
    element = button("pgconn.killall", "my-app")
    del element["confirm"]["deny"]
    return [{"type": "actions", "elements": [element]}]


def confirm_with_mrkdwn_title() -> list[dict[str, Any]]:
    element = button("pgconn.killall", "my-app")
    element["confirm"]["title"] = {"type": "mrkdwn", "text": "*Kill*"}
    return [{"type": "actions", "elements": [element]}]


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def actions(*elements: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"type": "actions", "elements": list(elements)}]


def long_button_text() -> list[dict[str, Any]]:
    element = button("a", "v")
    element["text"] = {"type": "plain_text", "text": "b" * 76}
    return actions(element)


def misspelt_key() -> list[dict[str, Any]]:
    element = button("a", "v")
    element["acton_id"] = element.pop("action_id")
    return actions(element)


# case -> (blocks, where Slack's error points)
INVALID_BLOCKS: dict[str, tuple[Any, str]] = {
    "51 blocks": (lambda: [{"type": "divider"}] * 51, "/blocks]"),
    "3001-char section": (lambda: [section("x" * 3001)], "/blocks/0/text/text]"),
    "confirm without deny": (confirm_without_deny, "/blocks/0/elements/0/confirm]"),
    "confirm with mrkdwn title": (
        confirm_with_mrkdwn_title,
        "/blocks/0/elements/0/confirm/title/type]",
    ),
    "11 fields": (
        lambda: [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}],
        "/blocks/0/fields]",
    ),
    "2001-char field": (
        lambda: [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}],
        "/blocks/0/fields/0/text]",
    ),
    "26 buttons": (
        lambda: actions(*[button(f"a{i}", "v", confirm=False) for i in range(26)]),
        "/blocks/0/elements]",
    ),
    "76-char button text": (long_button_text, "/blocks/0/elements/0/text/text]"),
    "256-char action_id": (
        lambda: actions(button("a" * 256, "v")),
        "/blocks/0/elements/0/action_id]",
    ),
    "2001-char value": (lambda: actions(button("a", "v" * 2001)), "/blocks/0/elements/0/value]"),
    "duplicate action_id": (
        lambda: actions(button("a", "1"), button("a", "2")),
        "/blocks/0/elements/1/action_id]",
    ),
    "unknown block type": (
        lambda: [{"type": "sectoin", "text": {"type": "mrkdwn", "text": "x"}}],
        "/blocks/0/type]",
    ),
    "misspelt key": (misspelt_key, "/blocks/0/elements/0/acton_id]"),
    "empty text": (lambda: [section("")], "/blocks/0/text/text]"),
}


@pytest.mark.parametrize("case", sorted(INVALID_BLOCKS))
async def test_invalid_blocks_are_refused(
    case: str, spec: dict[str, Any], client: AsyncWebClient, emulator: SlackEmulator
) -> None:
    build, pointer = INVALID_BLOCKS[case]
    blocks = build()
    failure = await expect_error(
        spec,
        "chat.postMessage",
        client.chat_postMessage(channel=CHANNEL, text="t", blocks=blocks),
        "invalid_blocks",
    )
    errors = failure.response["errors"]
    assert any(e.endswith(f"[json-pointer:{pointer}") for e in errors), errors
    messages = failure.response["response_metadata"]["messages"]
    assert messages == [f"[ERROR] {e}" for e in errors]
    assert emulator.messages(CHANNEL) == []


async def test_limits_are_inclusive(client: AsyncWebClient, emulator: SlackEmulator) -> None:
    await client.chat_postMessage(channel=CHANNEL, text="t", blocks=[{"type": "divider"}] * 50)
    await client.chat_postMessage(channel=CHANNEL, text="t", blocks=[section("x" * 3000)])
    await client.chat_postMessage(
        channel=CHANNEL,
        text="t",
        blocks=[{"type": "actions", "elements": [button(f"a{i}", "v" * 2000) for i in range(25)]}],
    )
    await client.chat_postMessage(channel=CHANNEL, text="x" * 40_000)
    assert len(emulator.messages(CHANNEL)) == 4


async def test_message_errors(spec: dict[str, Any], client: AsyncWebClient) -> None:
    method = "chat.postMessage"
    await expect_error(
        spec, method, client.chat_postMessage(channel=CHANNEL, text="x" * 40_001), "msg_too_long"
    )
    await expect_error(spec, method, client.chat_postMessage(channel=CHANNEL), "no_text")
    await expect_error(
        spec, method, client.chat_postMessage(channel="C0MISSING01", text="x"), "channel_not_found"
    )


# -- faults ------------------------------------------------------------------------------


async def test_rate_limit_fault(
    spec: dict[str, Any], client: AsyncWebClient, emulator: SlackEmulator
) -> None:
    emulator.inject("chat.postMessage", error="ratelimited", status=429, retry_after=1)
    failure = await expect_error(
        spec, "chat.postMessage", client.chat_postMessage(channel=CHANNEL, text="hi"), "ratelimited"
    )
    assert failure.response.status_code == 429
    headers = {k.lower(): v for k, v in failure.response.headers.items()}
    retry_after = headers["retry-after"]
    assert (retry_after[0] if isinstance(retry_after, list) else retry_after) == "1"
    # One shot: the retry goes through.
    await client.chat_postMessage(channel=CHANNEL, text="hi")
    assert [m.text for m in emulator.messages(CHANNEL)] == ["hi"]
    assert [c.status for c in emulator.received if c.method == "chat.postMessage"] == [429, 200]

    emulator.inject("chat.postMessage", error="channel_not_found", times=2)
    for _ in range(2):
        failure = await expect_error(
            spec,
            "chat.postMessage",
            client.chat_postMessage(channel=CHANNEL, text="x"),
            "channel_not_found",
        )
        assert failure.response.status_code == 200
    await client.chat_postMessage(channel=CHANNEL, text="x")
    emulator.inject("*", error="fatal_error", status=500)
    emulator.clear_faults()
    await client.auth_test()


async def test_wait_for_reports_what_it_saw(client: AsyncWebClient, emulator: SlackEmulator) -> None:
    await client.chat_postMessage(channel=CHANNEL, text="something else")
    found = await emulator.wait_for(lambda: emulator.messages(CHANNEL)[0], timeout=1)
    assert found.text == "something else"
    with pytest.raises(AssertionError, match="something else"):
        await emulator.wait_for(lambda: emulator.messages(CHANNEL)[1], timeout=0.2)


# -- response URLs ---------------------------------------------------------------------


async def test_response_urls(client: AsyncWebClient, emulator: SlackEmulator) -> None:
    posted = await client.chat_postMessage(channel=CHANNEL, text="report", blocks=report_blocks())
    url = emulator.new_response_url(channel=CHANNEL, user=ALICE, message_ts=posted["ts"])
    async with httpx.AsyncClient() as http:
        answer = await http.post(url, json={"response_type": "ephemeral", "text": "working on it"})
        assert (answer.status_code, answer.text) == (200, "ok")
        assert emulator.ephemerals[-1]["user"] == ALICE
        assert emulator.ephemerals[-1]["via"] == "response_url"

        answer = await http.post(
            url, json={"replace_original": True, "text": "done", "blocks": [section("done")]}
        )
        assert answer.status_code == 200
        message = emulator.messages(CHANNEL)[0]
        assert message.text == "done" and [e["text"] for e in message.edits] == ["report"]

        answer = await http.post(
            url, json={"response_type": "in_channel", "text": "killed 18", "thread_ts": posted["ts"]}
        )
        assert answer.status_code == 200
        assert emulator.thread(CHANNEL, posted["ts"])[0].text == "killed 18"

        bad = await http.post(url, json={"blocks": [section("x" * 3001)]})
        assert (bad.status_code, bad.text) == (400, "invalid_blocks")
        empty = await http.post(url, json={"response_type": "ephemeral"})
        assert (empty.status_code, empty.text) == (400, "no_text")

        assert len(emulator.responses) == 3  # only accepted posts
        await http.post(url, json={"text": "4"})
        await http.post(url, json={"text": "5"})
        used = await http.post(url, json={"text": "6"})
        assert (used.status_code, used.text) == (404, "used_url")

        other = emulator.new_response_url(channel=CHANNEL, user=ALICE)
        emulator.expire_response_url(other)
        expired = await http.post(other, json={"text": "late"})
        assert (expired.status_code, expired.text) == (404, "expired_url")
        unknown = await http.post(f"{emulator.url}/response/nope", json={"text": "x"})
        assert unknown.status_code == 404

        third = emulator.new_response_url(channel=CHANNEL, user=ALICE, message_ts=posted["ts"])
        deleted = await http.post(third, json={"delete_original": True})
        assert deleted.status_code == 200
        assert posted["ts"] not in [m.ts for m in emulator.messages(CHANNEL)]


# -- signing ---------------------------------------------------------------------------


def test_signature_verifies_with_slack_sdk() -> None:
    em = SlackEmulator(bot_token=TOKEN, signing_secret=SECRET)
    body = urlencode({"command": "/pgconn", "text": "my-app"}).encode()
    now = int(time.time())
    headers = em.sign(body, now)
    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid(body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"])
    assert verifier.is_valid_request(body, headers)
    assert headers["X-Slack-Signature"] == slack_signature(SECRET, str(now), body)
    assert not SignatureVerifier("another-secret").is_valid(body, str(now), headers["X-Slack-Signature"])


# -- requests to a real Bolt app ---------------------------------------------------------


class BoltProbe:
    """A tiny real Bolt app recording what reached its listeners."""

    def __init__(self, emulator: SlackEmulator) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []
        bolt = AsyncApp(
            signing_secret=SECRET,
            client=AsyncWebClient(token=TOKEN, base_url=emulator.api_url),
        )

        @bolt.command("/pgconn")
        async def command(ack: Any, body: dict[str, Any], respond: Any) -> None:
            await ack()
            self.seen.append(("command", body))
            await respond(text=f"report for {body['text']}")

        @bolt.action("pgconn.kill_idle")
        async def kill_idle(ack: Any, body: dict[str, Any], respond: Any) -> None:
            await ack()
            self.seen.append(("action", body))
            await respond(replace_original=True, text="killed idle connections")

        @bolt.event("message")
        async def message(event: dict[str, Any], say: Any) -> None:
            self.seen.append(("message", event))
            await say(text="seen", thread_ts=event["ts"])

        @bolt.event("app_mention")
        async def mention(event: dict[str, Any]) -> None:
            self.seen.append(("app_mention", event))

        handler = AsyncSlackRequestHandler(bolt)

        async def events(request: Request) -> Response:
            return await handler.handle(request)

        self.app = Starlette(routes=[Route("/slack/events", events, methods=["POST"])])

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.seen]


@pytest.fixture
async def bolt(emulator: SlackEmulator) -> AsyncIterator[BoltProbe]:
    probe = BoltProbe(emulator)
    running = serve_in_thread(probe.app)
    emulator.request_url = f"{running.url}/slack/events"
    yield probe
    running.stop()


async def test_bolt_gets_slash_commands(emulator: SlackEmulator, bolt: BoltProbe) -> None:
    answer = await emulator.send_slash_command("my-app", user_id=ALICE, channel_id=CHANNEL)
    assert answer.status_code == 200
    await emulator.wait_for(lambda: emulator.responses)
    kind, body = bolt.seen[0]
    assert kind == "command"
    assert (body["user_id"], body["channel_id"], body["text"]) == (ALICE, CHANNEL, "my-app")
    assert body["team_id"] == TEAM and body["channel_name"] == "pgconn-alerts-test"
    assert emulator.ephemerals[-1]["text"] == "report for my-app"
    assert emulator.ephemerals[-1]["user"] == ALICE
    assert emulator.deliveries[-1].kind == "slash_command" and not emulator.deliveries[-1].late


async def test_bolt_gets_clicks(emulator: SlackEmulator, bolt: BoltProbe, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(
        channel=CHANNEL, text="report", blocks=report_blocks(), thread_ts=None
    )
    answer = await emulator.click(
        action_id="pgconn.kill_idle",
        value="my-app",
        user_id=BOB,
        channel_id=CHANNEL,
        message_ts=posted["ts"],
    )
    assert answer.status_code == 200
    await emulator.wait_for(lambda: emulator.messages(CHANNEL)[0].edits)
    kind, body = bolt.seen[0]
    assert kind == "action"
    assert body["type"] == "block_actions" and body["user"]["id"] == BOB
    assert body["container"] == {
        "type": "message",
        "channel_id": CHANNEL,
        "is_ephemeral": False,
        "message_ts": posted["ts"],
    }
    assert body["message"]["ts"] == posted["ts"] and body["message"]["blocks"][4]["elements"]
    action = body["actions"][0]
    assert (action["action_id"], action["block_id"], action["value"]) == (
        "pgconn.kill_idle",
        "pgconn.actions",
        "my-app",
    )
    assert action["text"]["text"] == "Kill idle connections" and action["style"] == "danger"
    assert emulator.messages(CHANNEL)[0].text == "killed idle connections"

    # A double click racing the bot's edit: the second payload carries the version of the
    # message the user still saw, buttons included. Slack does not deduplicate; the bot must.
    await emulator.click(
        action_id="pgconn.kill_idle", value="my-app", user_id=BOB, channel_id=CHANNEL, message_ts=posted["ts"]
    )
    await emulator.wait_for(lambda: len(bolt.seen) == 2)
    assert bolt.seen[1][1]["message"]["blocks"][4]["block_id"] == "pgconn.actions"

    # Buttons in an ephemeral: no "message" in the payload (Slack keeps no copy of it).
    eph = await client.chat_postEphemeral(channel=CHANNEL, user=BOB, text="pick", blocks=report_blocks())
    await emulator.click(
        action_id="pgconn.kill_idle",
        value="my-app",
        user_id=BOB,
        channel_id=CHANNEL,
        message_ts=eph["message_ts"],
    )
    await emulator.wait_for(lambda: emulator.ephemerals[-1]["text"] == "killed idle connections")
    body = bolt.seen[2][1]
    assert "message" not in body and body["container"]["is_ephemeral"] is True

    # A click can only be on a button that exists.
    with pytest.raises(ValueError, match="no element"):
        await emulator.click(
            action_id="pgconn.nope", value="x", user_id=BOB, channel_id=CHANNEL, message_ts=posted["ts"]
        )


async def test_bolt_gets_events(emulator: SlackEmulator, bolt: BoltProbe) -> None:
    alert = await emulator.post_as(
        CHANNEL,
        "FATAL: too many connections for role on my-app",
        bot_id="B0DATADOG01",
        username="Datadog",
    )
    await emulator.wait_for(lambda: emulator.thread(CHANNEL, alert.ts))
    kind, event = bolt.seen[0]
    assert kind == "message" and event["subtype"] == "bot_message"
    assert (event["bot_id"], event["ts"], event["channel"]) == ("B0DATADOG01", alert.ts, CHANNEL)

    await emulator.post_as(CHANNEL, "<@UBOTPGCONN> status?", user=ALICE)
    await emulator.wait_for(lambda: "app_mention" in bolt.kinds())
    assert bolt.kinds().count("message") == 2

    custom = await emulator.send_event(
        {"type": "app_mention", "user": ALICE, "text": "hi", "ts": "1700000000.000100", "channel": CHANNEL}
    )
    assert custom.status_code == 200
    await emulator.wait_for(lambda: bolt.kinds().count("app_mention") == 2)

    challenge = await emulator.verify_url()
    assert challenge.status_code == 200
    assert json.loads(emulator.deliveries[-1].body)["challenge"] in challenge.text


async def test_bolt_refuses_bad_signatures(emulator: SlackEmulator, bolt: BoltProbe) -> None:
    body = urlencode({"command": "/pgconn", "text": "my-app", "user_id": ALICE}).encode()
    forged = await emulator.deliver(body, signature="v0=" + "0" * 64)
    assert forged.status_code == 401
    stale = await emulator.send_slash_command("my-app", user_id=ALICE, timestamp=int(time.time()) - 600)
    assert stale.status_code == 401
    assert bolt.seen == []
