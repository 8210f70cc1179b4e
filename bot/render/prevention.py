"""The budget warning thread: its parent (open and resolved) and its replies. Pure.

Everything outside pgconn's own words (who changed what, a release's description) is
escaped: it comes from a webhook body.
"""

from __future__ import annotations

from typing import Any

from bot.budget import Budget
from bot.prevention.decisions import Fixes
from bot.render.alert import when
from bot.render.budget import verdict_line
from bot.render.remediation import ADD_PGBOUNCER, remediation_actions
from bot.render.text import MAX_TEXT, code, escape, inert, truncate

Block = dict[str, Any]
WARNING_BLOCK_ID = "pgconn.budget-warning"


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, MAX_TEXT)}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(text, MAX_TEXT)}]}


def _header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": truncate(text, 150), "emoji": True}}


def _title(app: str, budget: Budget) -> str:
    if budget.verdict == "over":
        return f":warning: {app}: the connection budget no longer fits the plan"
    return f":warning: {app}: the connection budget is tight"


def warning_text(app: str, change: str, budget: Budget) -> str:
    """The notification text (and the fallback for clients without blocks)."""
    return truncate(f"{app}: {change} — budget {budget.total} of {budget.limit} ({budget.verdict})", 300)


def warning_blocks(app: str, change: str, budget: Budget, fixes: Fixes, *, at: float) -> list[Block]:
    why = (
        f"It can open *{budget.total}* connections against the plan's {budget.limit}: under load, "
        f"the {budget.over_by} that do not fit fail with `too many connections`."
        if budget.verdict == "over"
        else f"It can open *{budget.total}* of the plan's {budget.limit} connections: a deploy (old and "
        "new dynos overlap) or a few `heroku run` consoles can push it over."
    )
    blocks: list[Block] = [
        _header(_title(app, budget)),
        _section(f"*{escape(change)}* · {when(at)}\n{why} Nothing has failed yet."),
        _section(verdict_line(budget)),
    ]
    if fixes.items:
        lines = []
        for fix in fixes.items:
            # inert, not escape: a command copied from here must not carry zero-width spaces.
            line = f"• {inert(fix.text)}"
            if fix.command:
                line += f" — {code(fix.command, 200)}"
            lines.append(line)
        blocks.append(_section("*Ways back under the limit*\n" + "\n".join(lines)))
    if fixes.pgbouncer_pool is not None:
        # The same button as on every report, sized by the same budget.
        actions = remediation_actions(
            app,
            role_connections=None,
            idle_connections=None,
            idle_after_s=0,
            dynos=sum(ln.dynos for ln in budget.lines if not ln.transient) or None,
            pgbouncer_pool=fixes.pgbouncer_pool,
        )
        buttons = [e for e in actions["elements"] if e.get("action_id") == ADD_PGBOUNCER]
        blocks.append({"type": "actions", "block_id": WARNING_BLOCK_ID, "elements": buttons})
    blocks.append(
        _context(
            f"pgconn recomputed the budget when Heroku reported the change · `/pgconn {app} budget` "
            "shows every line · this thread says when it fits again"
        )
    )
    return blocks


def resolved_blocks(app: str, opened_by: str, resolved_by: str, budget: Budget, *, at: float) -> list[Block]:
    return [
        _header(f":white_check_mark: {app}: the connection budget fits again"),
        _section(
            f"Opened by *{escape(opened_by)}*.\nResolved by *{escape(resolved_by)}* · {when(at)}: "
            f"*{budget.total}* of {budget.limit} connections."
        ),
        _section(verdict_line(budget)),
    ]


def follow_up_reply(change: str, budget: Budget) -> str:
    state = f"over the limit by {budget.over_by}" if budget.verdict == "over" else "tight"
    return truncate(
        f"{escape(change)}: the budget is now *{budget.total}* of {budget.limit} connections — {state}.",
        MAX_TEXT,
    )


def resolved_reply(change: str, budget: Budget) -> str:
    return truncate(
        f":white_check_mark: {escape(change)}: back under the limit — *{budget.total}* of {budget.limit} "
        "connections. The budget fits again.",
        MAX_TEXT,
    )
