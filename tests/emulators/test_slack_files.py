"""The Slack emulator's file upload flow, driven by slack-sdk's own client.

files.getUploadURLExternal → POST the bytes to the upload URL → files.completeUploadExternal,
as slack-sdk's `files_upload_v2` runs it (the flow Slack requires since it retired
files.upload; sources in emulators/slack_api.py). The emulator must refuse what Slack would:
a complete without the upload, bytes of another length than announced, an expired upload URL,
a token without files:write; and the file must then appear in the thread it was shared to.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from emulators.slack import SlackEmulator

TOKEN = "xoxb-files-test"
CHANNEL = "C0FILES01"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(200))


@pytest.fixture
def emulator() -> Iterator[SlackEmulator]:
    em = SlackEmulator(bot_token=TOKEN, signing_secret="s3cr3t")
    em.add_channel(CHANNEL, "incidents")
    em.start()
    yield em
    em.stop()


@pytest.fixture
def client(emulator: SlackEmulator) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=emulator.api_url)


async def _thread(client: AsyncWebClient) -> str:
    parent = await client.chat_postMessage(channel=CHANNEL, text="incident")
    return str(parent["ts"])


async def test_files_upload_v2_shares_the_file_in_the_thread(
    client: AsyncWebClient, emulator: SlackEmulator
) -> None:
    ts = await _thread(client)
    result = await client.files_upload_v2(
        content=PNG,
        filename="chart.png",
        title="Connections by holder",
        channel=CHANNEL,
        thread_ts=ts,
        initial_comment="The picture",
        alt_txt="stacked chart",
    )
    methods = [c.method for c in emulator.received]
    assert methods[-3:] == ["files.getUploadURLExternal", "upload", "files.completeUploadExternal"]
    assert emulator.calls("files.getUploadURLExternal")[0]["length"] in (len(PNG), str(len(PNG)))
    file = result["file"]
    assert file["title"] == "Connections by holder" and file["mimetype"] == "image/png"
    (reply,) = emulator.thread(CHANNEL, ts)
    assert reply.text == "The picture" and reply.files == [file["id"]]
    (shown,) = (await client.conversations_replies(channel=CHANNEL, ts=ts))["messages"][1]["files"]
    assert shown["id"] == file["id"] and shown["shares"]["public"][CHANNEL][0]["thread_ts"] == ts
    # url_private serves the bytes, to the bot token only.
    async with httpx.AsyncClient() as http:
        got = await http.get(shown["url_private"], headers={"Authorization": f"Bearer {TOKEN}"})
        assert got.status_code == 200 and got.content == PNG
        assert (await http.get(shown["url_private"])).status_code == 403
    assert emulator.files_in(CHANNEL, ts)[0].data == PNG


async def test_complete_without_the_upload_is_refused(
    client: AsyncWebClient, emulator: SlackEmulator
) -> None:
    ts = await _thread(client)
    ticket = await client.files_getUploadURLExternal(filename="chart.png", length=len(PNG))
    with pytest.raises(SlackApiError) as caught:
        await client.files_completeUploadExternal(
            files=[{"id": ticket["file_id"], "title": "t"}], channel_id=CHANNEL, thread_ts=ts
        )
    assert caught.value.response["error"] == "file_not_found"
    assert "no bytes were uploaded" in str(caught.value.response["response_metadata"])
    assert emulator.thread(CHANNEL, ts) == []


async def test_bytes_of_another_length_are_refused(client: AsyncWebClient, emulator: SlackEmulator) -> None:
    ts = await _thread(client)
    ticket = await client.files_getUploadURLExternal(filename="chart.png", length=len(PNG) + 1)
    async with httpx.AsyncClient() as http:
        answer = await http.post(ticket["upload_url"], content=PNG)
    assert answer.status_code == 400 and "length mismatch" in answer.text
    with pytest.raises(SlackApiError) as caught:
        await client.files_completeUploadExternal(files=[{"id": ticket["file_id"]}], channel_id=CHANNEL)
    assert caught.value.response["error"] == "file_not_found"
    assert emulator.thread(CHANNEL, ts) == []


async def test_an_expired_upload_url_is_refused(client: AsyncWebClient, emulator: SlackEmulator) -> None:
    ticket = await client.files_getUploadURLExternal(filename="chart.png", length=len(PNG))
    emulator.expire_upload_url(ticket["file_id"])
    async with httpx.AsyncClient() as http:
        answer = await http.post(ticket["upload_url"], content=PNG)
    assert answer.status_code == 404 and "expired" in answer.text
    with pytest.raises(SlackApiError) as caught:
        await client.files_completeUploadExternal(files=[{"id": ticket["file_id"]}], channel_id=CHANNEL)
    assert "expired" in str(caught.value.response["response_metadata"])


async def test_files_upload_v2_fails_on_a_refused_upload(
    client: AsyncWebClient, emulator: SlackEmulator
) -> None:
    emulator.inject("upload", error="internal error", status=500)
    with pytest.raises(SlackRequestError, match="status: 500"):
        await client.files_upload_v2(content=PNG, filename="chart.png", channel=CHANNEL)
    assert emulator.calls("files.completeUploadExternal") == []


async def test_a_token_without_files_write_is_refused(
    client: AsyncWebClient, emulator: SlackEmulator
) -> None:
    emulator.scopes.discard("files:write")
    with pytest.raises(SlackApiError) as caught:
        await client.files_upload_v2(content=PNG, filename="chart.png", channel=CHANNEL)
    assert caught.value.response["error"] == "missing_scope"
    assert caught.value.response["needed"] == "files:write"
    assert "files:write" not in caught.value.response["provided"]
    assert emulator.files == {}


def test_the_manifest_asks_for_files_write() -> None:
    manifest = (Path(__file__).resolve().parents[2] / "manifest.yml").read_text()
    assert "- files:write" in manifest
