"""The post-mortem's pure parts: the PNG writer, the stacked chart, the summary and its Markdown."""

from __future__ import annotations

import zlib

import pytest

from bot.postmortem.chart import (
    OTHER,
    OTHER_COLOUR,
    PALETTE,
    HolderSample,
    holders_chart,
    layout,
    series_order,
)
from bot.postmortem.png import Canvas, decode_png, encode_png
from bot.postmortem.summary import (
    NOT_VERIFIED,
    Action,
    BudgetFigure,
    PostMortem,
    Start,
    Verified,
    build_postmortem,
    plain,
    to_markdown,
    with_verification,
)
from bot.render.postmortem import again_blocks, markdown_blocks, postmortem_blocks

T0 = 1_780_000_000.0


def px(png: bytes, x: int, y: int) -> tuple[int, int, int]:
    width, _, rgb = decode_png(png)
    i = (y * width + x) * 3
    return rgb[i], rgb[i + 1], rgb[i + 2]


def test_png_round_trip_and_crc() -> None:
    canvas = Canvas(3, 2)
    canvas.fill(1, 0, 2, 1, (10, 20, 30))
    png = canvas.png()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height, rgb = decode_png(png)
    assert (width, height) == (3, 2)
    assert rgb[3:6] == bytes([10, 20, 30]) and rgb[0:3] == bytes([255, 255, 255])
    broken = bytearray(png)
    broken[-20] ^= 0xFF  # inside IDAT: its CRC no longer matches
    with pytest.raises((ValueError, zlib.error)):
        decode_png(bytes(broken))
    with pytest.raises(ValueError):
        encode_png(2, 2, b"\x00" * 5)


def incident_samples() -> list[HolderSample]:
    # web.1 climbs to 12 while worker.1 holds 6; after Kill all at +400 s both drop.
    out = []
    for k in range(60):
        web = min(12, 4 + k // 3) if k < 40 else 3
        worker = 6 if k < 40 else 2
        out.append(HolderSample(T0 + k * 10, {"web.1": web, "worker.1": worker, "pgconn-reserved": 1}))
    return out


def test_the_chart_stacks_holders_biggest_first_under_the_limit_line() -> None:
    samples = incident_samples()
    png = holders_chart(samples, 20, marks=[(T0 + 400, "Kill all")], end=T0 + 650)
    lay = layout(samples, 20, end=T0 + 650)
    assert lay.series == ("web.1", "worker.1", "pgconn-reserved")
    x = lay.x(T0 + 300)  # web.1 12, worker.1 6, pgconn-reserved 1: 19 in all
    assert px(png, x, lay.y(6)) == PALETTE[0]  # web.1 at the bottom
    assert px(png, x, lay.y(15)) == PALETTE[1]  # worker.1 on top of it (12..18)
    assert px(png, x, lay.y(18.5)) == PALETTE[2]  # then pgconn's own
    assert px(png, x, lay.y(19.5)) != PALETTE[2]  # nothing above the total
    later = lay.x(T0 + 500)  # after the fix: 3 + 2 + 1
    assert px(png, later, lay.y(2)) == PALETTE[0] and px(png, later, lay.y(4)) == PALETTE[1]
    assert px(png, later, lay.y(8)) != PALETTE[0]
    # The limit as a dashed red line, the action as a grey mark.
    assert (200, 0, 0) in {px(png, xx, lay.y(20)) for xx in range(lay.left, lay.left + 16)}
    mark = lay.x(T0 + 400)
    assert (90, 90, 90) in {px(png, mark, y) for y in range(lay.y(10), lay.y(10) + 6)}


def test_many_holders_fold_into_other() -> None:
    counts = {f"web.{i}": 10 - i for i in range(1, 10)}
    samples = [HolderSample(T0, counts), HolderSample(T0 + 60, counts)]
    names, folded = series_order(samples)
    assert len(names) == 7 and names[-1] == OTHER and folded == {"web.7", "web.8", "web.9"}
    png = holders_chart(samples, 60)
    lay = layout(samples, 60)
    x = lay.x(T0 + 30)
    top_of_named = sum(10 - i for i in range(1, 7))
    assert px(png, x, lay.y(top_of_named + 1)) == OTHER_COLOUR  # 3 + 2 + 1 on top


def test_no_samples_still_gives_a_picture() -> None:
    width, height, _ = decode_png(holders_chart([], 20))
    assert (width, height) == (900, 420)


def postmortem(**changes: object) -> PostMortem:
    kwargs: dict[str, object] = dict(
        app="my-app",
        database="postgresql-x-1",
        incident="my-app:postgresql-x-1:1",
        opened_at=T0,
        resolved_at=T0 + 650,
        resolved_by="",
        resolve_after_s=300.0,
        first_signal='`FATAL: too many connections for role "u1"` (logged by `web.1`)',
        limit=20,
        refused=7,
        samples=incident_samples(),
        counts=[(T0 + 5, 20)],
        actions=[Action(T0 + 400, "UALICE", "pgconn.killall", True, "terminated 18 connections")],
        start=Start(
            cause=":red_circle: *Likely cause:* web.1 holds 12 connections, the budget says 3 per web dyno",
            cause_check="leak",
            budget=BudgetFigure(14, 20, "fits"),
        ),
        budget_after=BudgetFigure(14, 20, "fits"),
        fixes=["Add PgBouncer with a pool of 1 server connection per dyno (+1 reserve): 10 of 20"],
    )
    kwargs.update(changes)
    return build_postmortem(**kwargs)  # type: ignore[arg-type]


def test_the_summary_tells_the_incident_in_order() -> None:
    pm = postmortem()
    assert (pm.peak, pm.peak_at) == (20, T0 + 5)  # the metric sample beats the holder samples' 19
    events = [e.what for e in pm.timeline()]
    assert events[0].startswith("First signal: `FATAL")
    assert events[1].startswith("Peak: 20 of 20 connections")
    assert events[2] == f"<@UALICE> ran Kill all: terminated 18 connections — {NOT_VERIFIED}"
    assert events[3].startswith(
        "Resolved: resolved by itself: connections stayed below the warning threshold for 5m"
    )
    assert pm.prevention[0].startswith("The budget fits (14 of 20), yet the role reached 20")
    assert pm.prevention[1].startswith("• Add PgBouncer with a pool of 1")
    assert "its connection pool leaks" in pm.prevention[2]
    by_hand = postmortem(resolved_by="UBOB")
    assert by_hand.timeline()[-1].what == "Resolved: resolved by hand by <@UBOB>"
    scaled_back = postmortem(start=Start(budget=BudgetFigure(23, 20, "over")))
    assert scaled_back.prevention[0].startswith(
        "When it ran out, the formation could open 23 connections against 20; now it is 14 of 20: fits."
    )
    over = postmortem(budget_after=BudgetFigure(23, 20, "over"), start=Start())
    assert over.prevention[0].startswith("The formation can open 23 connections against 20")
    assert over.cause == "pgconn's diagnosis named no single cause"
    assert PostMortem.from_dict(pm.to_dict()) == pm


def test_the_markdown_is_plain_markdown() -> None:
    md = to_markdown(postmortem(), chart_name="chart.png")
    assert md.startswith("# Post-mortem: my-app ran out of database connections\n")
    assert "- **Peak:** 20 of 20 connections at 2026-05-28" in md
    assert "- 20:33:20 — @UALICE ran Kill all: terminated 18 connections — not verified" in md
    assert "**Likely cause:** web.1 holds 12 connections" in md and ":red_circle:" not in md
    assert "- **Before:** 14 of 20: fits" in md
    assert "- Add PgBouncer with a pool of 1 server connection per dyno" in md
    assert "![Connections by holder over the incident](chart.png)" in md
    assert plain("a <@U1> *b* <https://x|y> &lt;c&gt;") == "a @U1 **b** y <c>"


def test_slack_blocks_stay_within_limits() -> None:
    pm = postmortem()
    blocks = postmortem_blocks(pm)
    assert blocks[0]["text"]["text"] == "Post-mortem: my-app"
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in blocks)
    long = postmortem(fixes=[f"fix number {i} " + "x" * 200 for i in range(40)])
    chunks = markdown_blocks(long)
    assert len(chunks) > 1 and all(len(b["text"]["text"]) <= 3000 for b in chunks)
    assert all(b["text"]["text"].startswith("```\n") for b in chunks)
    again = again_blocks(pm, "https://pgconn.slack.com/archives/C1/p1")
    assert "<https://pgconn.slack.com/archives/C1/p1|the incident's thread>" in str(again)
    assert len(again) <= 50


def test_each_action_gets_its_own_verification() -> None:
    kill = Action(T0 + 400, "UALICE", "pgconn.killall", True, "terminated 18 connections")
    again = Action(T0 + 500, "UALICE", "pgconn.killall", True, "terminated 4 connections")
    idle = Action(T0 + 450, "UBOB", "pgconn.kill_idle", True, "terminated 2 idle of 5 connections")
    checked = [
        Verified("pgconn.killall", "UALICE", T0 + 498, "not fixed: 17/20 a minute later, climbing back"),
        Verified("killall", "UALICE", T0 + 398, "verified: 20/20 → 3/20 a minute later"),
        Verified("pgconn.kill_idle", "UCAROL", T0 + 449, "verified: someone else's"),
    ]
    out = with_verification([again, idle, kill], checked)
    assert [(a.at, a.verified) for a in out] == [
        (T0 + 400, "verified: 20/20 → 3/20 a minute later"),
        (T0 + 450, NOT_VERIFIED),  # Carol's check is not Bob's
        (T0 + 500, "not fixed: 17/20 a minute later, climbing back"),
    ]
