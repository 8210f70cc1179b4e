"""Logplex framing: what parses, what is a 400 (MalformedFrame), and nothing else."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.drain import MAX_BODY_BYTES, LogLine, check_body_size, parse_frames
from bot.errors import MalformedFrame
from tests.bot.samples import (
    TS,
    app_line,
    fatal_line,
    frame,
    frame_bytes,
    metric_line,
    router_line,
)

HEROKU_DOC_BODY = (
    b"83 <40>1 2012-11-30T06:45:29+00:00 host app web.3 - State changed from starting to up\n"
    b"119 <40>1 2012-11-30T06:45:26+00:00 host app web.3 - Starting process with command "
    b"`bundle exec rackup config.ru -p 24405`\n"
)


def test_heroku_documentation_example() -> None:
    lines = parse_frames(HEROKU_DOC_BODY)
    assert lines == [
        LogLine("2012-11-30T06:45:29+00:00", "host", "app", "web.3",
                "State changed from starting to up"),
        LogLine("2012-11-30T06:45:26+00:00", "host", "app", "web.3",
                "Starting process with command `bundle exec rackup config.ru -p 24405`"),
    ]


def test_one_line_of_each_source() -> None:
    [app] = parse_frames(frame([app_line("hello world", proc="worker.2")]))
    assert (app.app_name, app.proc_id, app.message, app.timestamp) == (
        "app", "worker.2", "hello world", TS)
    [router] = parse_frames(frame([router_line()]))
    assert (router.app_name, router.proc_id) == ("heroku", "router")
    assert router.message.startswith("at=info method=GET")
    [metrics] = parse_frames(frame([metric_line(19)]))
    assert (metrics.app_name, metrics.proc_id) == ("app", "heroku-postgres")
    assert "sample#active-connections=19 " in metrics.message


@pytest.mark.parametrize("count", [1, 100, 1000])
def test_many_lines_keep_order(count: int) -> None:
    msgs = [f"line {i} " + "x" * (i % 37) for i in range(count)]
    lines = parse_frames(frame([app_line(m, proc=f"web.{i % 5 + 1}") for i, m in enumerate(msgs)]))
    assert [ln.message for ln in lines] == msgs
    assert [ln.proc_id for ln in lines] == [f"web.{i % 5 + 1}" for i in range(count)]


def test_message_that_looks_like_a_frame_header() -> None:
    # The count, not the content, says where the next frame starts.
    tricky = "83 <40>1 2012-11-30T06:45:29+00:00 host app web.3 - fake 12 34 "
    lines = parse_frames(frame([app_line(tricky), app_line("after")]))
    assert [ln.message for ln in lines] == [tricky, "after"]


def test_embedded_newlines_are_counted_and_kept() -> None:
    msg = "Traceback (most recent call last):\n  File \"x.py\", line 1\n42 <190>1 not a frame"
    [line] = parse_frames(frame([app_line(msg)]))
    assert line.message == msg


def test_only_one_trailing_newline_is_stripped() -> None:
    [a, b] = parse_frames(frame_bytes([
        app_line("no newline").encode(),
        app_line("two newlines\n").encode() + b"\n",
    ]))
    assert (a.message, b.message) == ("no newline", "two newlines\n")


def test_non_utf8_bytes_are_replaced_not_rejected() -> None:
    raw = app_line("caf").encode() + b"\xe9 \xff\xfe ok\n"
    [line] = parse_frames(frame_bytes([raw]))
    assert line.message == "caf\ufffd \ufffd\ufffd ok"
    assert line.proc_id == "web.1"


def test_multibyte_utf8_counts_bytes_not_characters() -> None:
    msg = "naïve ☃ 🐘 too many connections"
    [line] = parse_frames(frame([app_line(msg)]))
    assert line.message == msg


@pytest.mark.parametrize(
    "raw",
    [
        b"not a syslog header at all",
        b"<190> 2024-05-01T12:00:00+00:00 host app web.1 - version missing",
        b"<abc>1 2024-05-01T12:00:00+00:00 host app web.1 - bad pri",
        b"<190>1 too few fields",
        b"\x00\x01\x02",
    ],
)
def test_unparseable_header_keeps_the_raw_text(raw: bytes) -> None:
    # Framing decides a 400; a framed message with an odd header is still a line.
    [line] = parse_frames(frame_bytes([raw + b"\n"]))
    assert (line.app_name, line.proc_id, line.timestamp, line.hostname) == ("", "", "", "")
    assert line.message == raw.decode("utf-8", "replace")


def test_header_without_message() -> None:
    [line] = parse_frames(frame_bytes([b"<190>1 " + TS.encode() + b" host app web.1 -\n"]))
    assert (line.app_name, line.proc_id, line.message) == ("app", "web.1", "")
    [line] = parse_frames(frame([app_line("")]))
    assert (line.app_name, line.message) == ("app", "")


GOOD = frame([app_line("one"), app_line("two")])


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b"", "empty body"),
        (b"abc <190>1 x", "byte 0"),  # count not a number
        (b"12", "byte 0"),  # no space after the count
        (b" 12 <190>1 x", "byte 0"),  # missing count
        (b"-5 hello", "byte 0"),
        (b"+5 hello", "byte 0"),
        (b"0 ", "byte 0"),  # zero-length frame
        (b"05 hello", "byte 0"),  # leading zero
        (b"1_0 0123456789", "byte 0"),  # int() would accept this; the framing must not
        (b"\xd9\xa3 abc", "byte 0"),  # Arabic-Indic digit three: not an ASCII count
        (b"100 too short", "claims 100 bytes"),  # count runs past the end
        (GOOD + b"\n", f"byte {len(GOOD)}"),  # trailing garbage after the last frame
        (GOOD + b"5 abc", "claims 5 bytes"),
        (b"99999999 x", "byte 0"),  # more digits than any allowed body needs
    ],
)
def test_malformed_framing(body: bytes, where: str) -> None:
    with pytest.raises(MalformedFrame) as exc:
        parse_frames(body)
    assert where in exc.value.message


def test_count_too_long_or_too_short_is_malformed() -> None:
    first = (app_line("first") + "\n").encode()
    second = (app_line("second") + "\n").encode()
    correct = b"%d %s%d %s" % (len(first), first, len(second), second)
    assert len(parse_frames(correct)) == 2
    # Too long: the first message swallows the start of the second frame, so
    # the second frame's count runs past the end.
    too_long = b"%d %s%d %s" % (len(first) + 3, first, len(second), second)
    with pytest.raises(MalformedFrame):
        parse_frames(too_long)
    # Too short: the tail of the first message sits where a count should be.
    too_short = b"%d %s%d %s" % (len(first) - 4, first, len(second), second)
    with pytest.raises(MalformedFrame, match="byte"):
        parse_frames(too_short)


def test_body_size_limit() -> None:
    check_body_size(MAX_BODY_BYTES)
    with pytest.raises(MalformedFrame, match="exceeds"):
        check_body_size(MAX_BODY_BYTES + 1)
    big = app_line("x" * 1000) + "\n"
    body = frame([big] * (MAX_BODY_BYTES // 1000 + 1))
    assert len(body) > MAX_BODY_BYTES
    with pytest.raises(MalformedFrame, match="exceeds"):
        parse_frames(body)


def test_fatal_line_parses_with_its_quotes_and_double_space() -> None:
    [line] = parse_frames(frame([fatal_line(role="u1", form="rails")]))
    assert line.message == 'PG::ConnectionBad: FATAL:  too many connections for role "u1"'


def test_log_line_is_frozen_and_slotted() -> None:
    line = LogLine("t", "h", "app", "web.1", "m")
    assert not hasattr(line, "__dict__")
    with pytest.raises(AttributeError):
        line.message = "changed"  # type: ignore[misc]


# --- properties ---------------------------------------------------------------


@settings(max_examples=500)
@given(st.binary(max_size=400))
def test_any_bytes_give_lines_or_malformed_frame(body: bytes) -> None:
    try:
        lines = parse_frames(body)
    except MalformedFrame:
        return
    assert all(isinstance(ln, LogLine) for ln in lines)


# Bodies that are mostly well framed, then damaged: random bytes alone almost
# never get past the first count, so this reaches the message parser and the
# later-frame paths.
@st.composite
def damaged_bodies(draw: st.DrawFn) -> bytes:
    messages = draw(st.lists(st.binary(max_size=60), min_size=1, max_size=6))
    body = bytearray(frame_bytes(m + b"\n" for m in messages))
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if not body:
            break
        i = draw(st.integers(0, len(body) - 1))
        if action == "flip":
            body[i] = draw(st.integers(0, 255))
        elif action == "insert":
            body[i:i] = draw(st.binary(min_size=1, max_size=4))
        elif action == "delete":
            del body[i]
        else:
            del body[i:]
    return bytes(body)


@settings(max_examples=500)
@given(damaged_bodies())
def test_damaged_bodies_give_lines_or_malformed_frame(body: bytes) -> None:
    try:
        lines = parse_frames(body)
    except MalformedFrame as exc:
        assert "byte" in exc.message or exc.message == "empty body"
        return
    assert all(isinstance(ln, LogLine) for ln in lines)


@settings(max_examples=300)
@given(st.lists(st.text(), min_size=1, max_size=20))
def test_round_trip_messages(messages: list[str]) -> None:
    lines = parse_frames(frame([app_line(m) for m in messages]))
    assert [ln.message for ln in lines] == messages
    assert all((ln.app_name, ln.proc_id, ln.timestamp) == ("app", "web.1", TS) for ln in lines)


@settings(max_examples=200)
@given(st.lists(st.binary(), min_size=1, max_size=10))
def test_round_trip_raw_bytes(messages: list[bytes]) -> None:
    # Any framed bytes parse; each line is the replacement-decoded text.
    lines = parse_frames(frame_bytes(m + b"\n" for m in messages))
    assert len(lines) == len(messages)
    for line, raw in zip(lines, messages, strict=True):
        assert raw.decode("utf-8", "replace").endswith(line.message)
