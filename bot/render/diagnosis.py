"""The likely cause (top of every report and alert) and every check (`/pgconn APP diagnose`). Pure.

Everything the diagnosis says about holders and queries is outside text: escaped here.
Query text arrives shortened and is shown as inline code, never in full.
"""

from __future__ import annotations

from typing import Any

from bot.diagnosis import QUERY_SHOWN, Cause, Check, Diagnosis, Status
from bot.render.text import code, escape, fit_lines, section

CAUSE_BLOCK_ID = "pgconn.cause"
STATUS_EMOJI: dict[Status, str] = {
    "red": ":red_circle:",
    "yellow": ":large_yellow_circle:",
    "green": ":large_green_circle:",
    "unknown": ":white_circle:",
}


def cause_line(cause: Cause) -> str:
    return f"{STATUS_EMOJI[cause.status]} *Likely cause:* {escape(cause.text)}"


def cause_block(cause: Cause) -> dict[str, Any]:
    return section(cause_line(cause), block_id=CAUSE_BLOCK_ID)


def check_text(check: Check) -> str:
    lines = [f"{STATUS_EMOJI[check.status]} *{check.name}* — {escape(check.summary)}"]
    for evidence in check.evidence:
        query = f" {code(evidence.query, QUERY_SHOWN)}" if evidence.query else ""
        lines.append(f"• {escape(evidence.text)}{query}")
    if check.hint and check.status in ("yellow", "red"):
        lines.append(f"→ {check.hint}")
    return fit_lines(lines)


def checks_blocks(diagnosis: Diagnosis) -> list[dict[str, Any]]:
    """A title with the tally, then one section per check (6 blocks: well within Slack's 50)."""
    tally = [
        f"{n} {status}"
        for status in ("red", "yellow", "green", "unknown")
        if (n := sum(1 for c in diagnosis.checks if c.status == status))
    ]
    return [
        {"type": "divider"},
        section(f"*Checks* ({', '.join(tally)}) — query text is shortened; it may contain data"),
        *(section(check_text(check)) for check in diagnosis.checks),
    ]
