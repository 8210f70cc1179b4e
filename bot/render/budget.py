"""The connection budget in Slack: the full table (`/pgconn APP budget`) and a one-line verdict.

Pure. Every outside string (process types, commands, assumptions that quote them) goes
through `escape`/`code`; the output stays within Slack's 50 blocks and 3000 characters
per text whatever the size of the formation.
"""

from __future__ import annotations

from typing import Any

from bot.budget import Budget, BudgetLine
from bot.render.text import MAX_BLOCKS, MAX_TEXT, bar, code, escape, plural, truncate

Block = dict[str, Any]

# header, summary, divider, "… and N more", total, what would fit, notes, assumptions
_FIXED_BLOCKS = 8
MAX_LINE_SECTIONS = MAX_BLOCKS - _FIXED_BLOCKS
_VERDICT_PARTS = 4  # process types named in the one-line verdict before "+N more"
_MAX_FIT_TYPES = 12
_HEADER_MAX = 150  # Slack's limit for a header's plain_text


def verdict_line(budget: Budget) -> str:
    """One mrkdwn line for every report and alert, e.g.

    "Budget: *29* of 20 connections — over the limit by 9 (web 18, worker 8, headroom 3)".
    """
    text = f"Budget: *{budget.total}* of {budget.limit} connections — {_verdict_words(budget)}"
    parts = [f"{_name(ln.process_type, 40)} {ln.total}" for ln in _by_total(budget.lines)[:_VERDICT_PARTS]]
    hidden = len([ln for ln in budget.lines if ln.total > 0]) - len(parts)
    if hidden > 0:
        parts.append(f"+{hidden} more")
    if budget.headroom:
        parts.append(f"headroom {budget.headroom}")
    if parts:
        text += f" ({', '.join(parts)})"
    if budget.assumptions:
        text += f" · {plural(len(budget.assumptions), 'assumption')}"
    return truncate(text, MAX_TEXT)


def budget_blocks(app: str, budget: Budget) -> list[Block]:
    """The full budget table as Block Kit blocks."""
    blocks: list[Block] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": truncate(f"Connection budget — {app}", _HEADER_MAX)},
        },
        _section(_summary(budget)),
        {"type": "divider"},
    ]
    shown = budget.lines[:MAX_LINE_SECTIONS]
    blocks.extend(_section(_line_text(ln)) for ln in shown)
    rest = budget.lines[len(shown) :]
    if rest:
        blocks.append(
            _context(
                f"… and {plural(len(rest), 'more process type')} "
                f"({sum(ln.total for ln in rest)} connections, counted in the total)"
            )
        )
    blocks.append(_section(_total_text(budget)))
    blocks.append(_section(_fit_text(budget)))
    if budget.notes:
        blocks.append(_context("\n".join(escape(n) for n in budget.notes)))
    if budget.assumptions:
        blocks.append(_context(_assumptions_text(budget)))
    return blocks[:MAX_BLOCKS]


def budget_fallback_text(app: str, budget: Budget) -> str:
    """Plain text for notifications (the `text` beside the blocks)."""
    plain = verdict_line(budget).replace("*", "")
    return truncate(f"{app}: {plain}", MAX_TEXT)


# -- pieces ----------------------------------------------------------------------


def _verdict_words(budget: Budget) -> str:
    if budget.verdict == "over" or budget.limit <= 0:
        return f"over the limit by {budget.over_by}"
    percent = round(budget.share * 100)
    if budget.verdict == "tight":
        return f"tight, {percent}% of the limit"
    return f"fits, {percent}% of the limit"


def _summary(budget: Budget) -> str:
    head = {
        "over": "*Over the limit.*",
        "tight": "*Tight.*",
        "fits": "*Fits.*",
    }[budget.verdict]
    text = (
        f"{head} At full concurrency this app needs *{budget.total}* connections "
        f"({budget.app_total} from its dynos + {budget.headroom} headroom); the plan allows *{budget.limit}*"
    )
    if budget.verdict == "over":
        text += f", so {budget.over_by} would be refused with “too many connections”."
    elif budget.verdict == "tight":
        text += f": only {plural(budget.spare, 'connection')} to spare."
    else:
        text += f": {budget.spare} to spare."
    if budget.limit > 0:
        text += f"\n`{bar(min(budget.total, budget.limit), budget.limit)}` {round(budget.share * 100)}%"
    return text


def _line_text(ln: BudgetLine) -> str:
    title = f"*{_name(ln.process_type, 80)}*"
    if ln.command:
        title += f" · {code(ln.command, 120)}"
    tags = []
    if ln.behind_pgbouncer:
        tags.append("behind PgBouncer")
    if ln.transient:
        tags.append("only while deploying")
    if ln.dynos == 0 and not ln.transient:
        tags.append("scaled to 0")
    if tags:
        title += f" _({', '.join(tags)})_"
    body = f"{escape(truncate(ln.explanation, 600))} = *{ln.total}*"
    return truncate(f"{title}\n{body}", MAX_TEXT)


def _total_text(budget: Budget) -> str:
    items = " + ".join(f"{_name(i.label, 100)} {i.connections}" for i in budget.headroom_items)
    lines = []
    if budget.headroom_items:
        lines.append(f"*Headroom* (not in the formation): {items} = *{budget.headroom}*")
    lines.append(
        f"*Total:* {budget.app_total} from the formation + {budget.headroom} headroom = "
        f"*{budget.total}* of *{budget.limit}*"
    )
    return truncate("\n".join(lines), MAX_TEXT)


def _fit_text(budget: Budget) -> str:
    out = ["*What would fit*"]
    by_type = {ln.process_type: ln for ln in budget.lines}
    fits = list(budget.max_dynos.items())
    for ptype, most in fits[:_MAX_FIT_TYPES]:
        now = by_type[ptype].dynos if ptype in by_type else 0
        name = _name(ptype, 60)
        if most == 0:
            out.append(f"• {name}: no dyno fits while the rest stays as it is (now {now})")
        else:
            out.append(f"• {name}: up to {plural(most, 'dyno')} at its current settings (now {now})")
    if len(fits) > _MAX_FIT_TYPES:
        out.append(f"• … and {plural(len(fits) - _MAX_FIT_TYPES, 'more process type')}")
    pool = budget.pgbouncer_pool_size
    if pool is not None and budget.pgbouncer_total is not None:
        reserve = budget.pgbouncer_reserve_pool_size
        dynos = sum(ln.dynos for ln in budget.lines if not ln.transient)
        release = sum(ln.total for ln in budget.lines if ln.transient)
        rest = f"{budget.headroom} headroom" + (f" + {release} release" if release else "")
        out.append(
            f"• With PgBouncer on every dyno (*Add PgBouncer*): `PGBOUNCER_DEFAULT_POOL_SIZE={pool}`"
            + (f" with the default reserve of {reserve}" if reserve else ", `PGBOUNCER_RESERVE_POOL_SIZE=0`")
            + f", `PGBOUNCER_MAX_CLIENT_CONN={budget.pgbouncer_max_client_conn}` → "
            f"{plural(dynos, 'dyno')} × {pool + reserve} + {rest} = *{budget.pgbouncer_total}* "
            f"of {budget.limit}"
        )
    elif not any(ln.dynos for ln in budget.lines if not ln.transient):
        out.append("• No dynos are running, so there is no PgBouncer pool to size")
    return truncate("\n".join(out), MAX_TEXT)


def _assumptions_text(budget: Budget) -> str:
    rows = [f"• {_name(t, 60)}: {escape(truncate(a, 300))}" for t, a in budget.assumptions]
    text = "*Assumptions*"
    for i, row in enumerate(rows):
        more = f"\n• … and {plural(len(rows) - i, 'more assumption')}"
        if len(text) + 1 + len(row) + len(more) > MAX_TEXT:
            return text + more
        text += "\n" + row
    return text


def _name(text: str, limit: int) -> str:
    """A process type name on one line, escaped."""
    return escape(truncate(" ".join(text.split()) or "?", limit))


def _by_total(lines: tuple[BudgetLine, ...]) -> list[BudgetLine]:
    return sorted((ln for ln in lines if ln.total > 0), key=lambda ln: -ln.total)


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, MAX_TEXT)}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(text, MAX_TEXT)}]}
