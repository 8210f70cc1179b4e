"""A fix's verified effect, as its thread shows it: one line, and the button that fits. Pure."""

from __future__ import annotations

from typing import Any

from bot.render.remediation import one_action
from bot.render.text import section
from bot.verification.verdicts import Verdict

ICONS = {
    "verified": ":white_check_mark:",
    "climbing": ":chart_with_upwards_trend:",
    "not_fixed": ":x:",
    "not_verified": ":grey_question:",
}


def verdict_text(verdict: Verdict, who: str, label: str) -> str:
    """"✅ verified: 20/20 → 6/20 a minute after *Kill all* (<@U1>'s)"."""
    return f"{ICONS[verdict.kind]} {verdict.line} _(<@{who}>'s *{label}*, checked by pgconn)_"


def verdict_blocks(
    verdict: Verdict, *, app: str, who: str, label: str, connections: int | None, idle_after_s: int
) -> list[dict[str, Any]]:
    blocks = [section(verdict_text(verdict, who, label))]
    if verdict.remedy is not None:
        blocks.append(
            one_action(
                app,
                verdict.remedy,
                role_connections=connections,
                idle_after_s=idle_after_s,
                process_type=verdict.process_type,
            )
        )
    return blocks
