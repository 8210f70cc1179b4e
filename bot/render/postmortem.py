"""The post-mortem in Slack: its message in the incident's thread, and `/pgconn APP postmortem`. Pure."""

from __future__ import annotations

from typing import Any

from bot.postmortem.summary import PostMortem, to_markdown
from bot.render.alert import when
from bot.render.text import MAX_TEXT, duration, truncate

POSTMORTEM_BLOCK_ID = "pgconn.postmortem"
CHART_TITLE = "Connections by holder over the incident"


def _section(text: str, block_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, MAX_TEXT)}}
    if block_id:
        block["block_id"] = block_id
    return block


def postmortem_text(pm: PostMortem) -> str:
    """Notification / fallback text."""
    peak = f"peak {pm.peak}/{pm.limit}" if pm.peak is not None and pm.limit else "peak unknown"
    return f"Post-mortem: {pm.app} ({pm.database}), {duration(pm.lasted_s)}, {peak}"


def postmortem_blocks(pm: PostMortem) -> list[dict[str, Any]]:
    peak = (
        f"*{pm.peak}*{f' of {pm.limit}' if pm.limit else ''} at {when(pm.peak_at)}"
        if pm.peak is not None
        else "unknown"
    )
    head = (
        f"*{pm.app}* · {pm.database} · {when(pm.opened_at)} for *{duration(pm.lasted_s)}*\n"
        f"Peak {peak} · {pm.refused:,} refused connection{'s' if pm.refused != 1 else ''} · {pm.resolution}"
    )
    timeline = "\n".join(f"• {when(e.at)} {e.what}" for e in pm.timeline())
    before = pm.budget_before.text if pm.budget_before else "unknown"
    after = pm.budget_after.text if pm.budget_after else "unknown"
    return [
        {"type": "header", "text": {"type": "plain_text", "text": f"Post-mortem: {pm.app}", "emoji": True}},
        _section(head, POSTMORTEM_BLOCK_ID),
        _section(f"*Timeline*\n{timeline}"),
        _section(f"*Likely cause* (pgconn's diagnosis when the thread opened)\n{pm.cause}"),
        _section(f"*Connection budget*\nbefore: {before}\nafter: {after}"),
        _section("*What would keep it from coming back*\n" + "\n".join(pm.prevention)),
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": "The chart and this post-mortem as Markdown follow · "
                    f"`/pgconn {pm.app} postmortem` shows it again",
                }
            ],
        },
    ]


def markdown_blocks(pm: PostMortem) -> list[dict[str, Any]]:
    """The Markdown in code blocks (each under Slack's 3,000 characters), ready to copy."""
    md = to_markdown(pm)
    chunks: list[str] = []
    current = ""
    for line in md.splitlines(keepends=True):
        if len(current) + len(line) > MAX_TEXT - 20:
            chunks.append(current)
            current = ""
        current += line[: MAX_TEXT - 20]
    if current:
        chunks.append(current)
    fence = "`" * 3
    return [_section(fence + "\n" + c.replace(fence, "'" * 3) + fence) for c in chunks]


def again_blocks(pm: PostMortem, permalink: str | None) -> list[dict[str, Any]]:
    """`/pgconn APP postmortem`: the post-mortem, a link to its thread (with the chart), its Markdown."""
    where = f"<{permalink}|the incident's thread>" if permalink else "the incident's thread"
    blocks = postmortem_blocks(pm)[:-1]
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"The chart is in {where}. The Markdown, to copy:"}],
        }
    )
    return (blocks + markdown_blocks(pm))[:50]
