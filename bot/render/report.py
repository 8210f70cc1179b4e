"""The report: pg:info, top holders, budget verdict, buttons. Pure, always within Slack limits."""

from __future__ import annotations

from typing import Any

from bot.readings import Holders, HoldersUnavailable
from bot.render.budget import verdict_line
from bot.render.diagnosis import cause_block, checks_blocks
from bot.render.remediation import REMEDY_ACTIONS, remediation_actions, restart_type_menu
from bot.render.text import MAX_TEXT, bar, code, duration, escape, fit_lines, plural, section, truncate
from bot.report import Report

TOP_HOLDERS = 12
# pg:info rows shown as fields (Slack allows 10 per section); Connections gets its own line.
_SKIP_FIELDS = {"Connections"}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(text, MAX_TEXT)}]}


def connections_line(used: int | None, limit: int | None) -> str:
    if used is None:
        return "*Connections:* unknown"
    if not limit:
        return f"*Connections:* {used}"
    share = used / limit
    flag = " — *at the limit*" if used >= limit else (" — close to the limit" if share >= 0.8 else "")
    return f"*Connections:* *{used}/{limit}* `{bar(used, limit)}` {round(share * 100)}%{flag}"


def holders_text(holders: Holders, top: int = TOP_HOLDERS) -> str:
    s = holders.state_counts
    lines = [
        f"*Top holders* (role {code(holders.role, 40)}: {holders.role_connections}"
        + (f"/{holders.role_limit}" if holders.role_limit is not None else "")
        + f" · server: {holders.server_connections}/{holders.max_connections})",
        f"{s.get('active', 0)} active · {s.get('idle', 0)} idle · "
        f"{s.get('idle in transaction', 0)} idle in transaction"
        + (f" · {s['other']} other" if s.get("other") else "")
        + f" · oldest idle {duration(holders.oldest_idle_s)}"
        + f" · longest idle in transaction {duration(holders.longest_idle_in_tx_s)}",
    ]
    for g in holders.groups[:top]:
        states = [
            f"{g.active} active" if g.active else "",
            f"{g.idle} idle" if g.idle else "",
            f"{g.idle_in_transaction} idle in tx" if g.idle_in_transaction else "",
        ]
        ages = []
        if g.oldest_idle_s is not None:
            ages.append(f"idle {duration(g.oldest_idle_s)}")
        if g.longest_idle_in_tx_s is not None:
            ages.append(f"in tx {duration(g.longest_idle_in_tx_s)}")
        lines.append(
            f"• *{g.total}* {code(g.application_name or '(no application_name)', 40)} "
            f"{code(g.usename, 40)} @ {escape(g.client_addr)} — "
            + ", ".join(x for x in states if x)
            + (f" ({', '.join(ages)})" if ages else "")
        )
    rest = holders.groups[top:]
    if rest:
        lines.append(f"… and {plural(len(rest), 'more group')} holding {sum(g.total for g in rest)}")
    return fit_lines(lines)


def report_blocks(
    report: Report, *, idle_after_s: int = 60, with_actions: bool = True, checks: bool = False
) -> list[dict[str, Any]]:
    """The report, leading with the likely cause; `checks` adds every diagnosis check (`diagnose`)."""
    db = report.database
    cause = report.diagnosis.cause if report.diagnosis else None
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": truncate(f"{report.app} · {db.addon_name} ({db.attachment_name})", 150),
            },
        },
    ]
    if cause is not None:
        blocks.append(cause_block(cause))
    blocks.append(section(connections_line(report.connections_used, report.connections_limit)))
    if report.pg_info is not None:
        fields = [
            {"type": "mrkdwn", "text": truncate(f"*{escape(name)}*\n{escape(value)}", 2000)}
            for name, value in report.pg_info.fields
            if name not in _SKIP_FIELDS and value
        ][:10]
        if fields:
            blocks.append({"type": "section", "fields": fields})
    if report.budget is not None:
        blocks.append(section(verdict_line(report.budget)))
    blocks.append({"type": "divider"})
    held = report.holders
    if isinstance(held, Holders):
        blocks.append(section(holders_text(held)))
    else:
        blocks.append(
            section(
                f":warning: *Holders could not be read.* {escape(held.reason)}."
                + (
                    " pg:info above comes from the Heroku API; *Kill all* still works "
                    "through Heroku's connection reset."
                    if held.role_full
                    else ""
                )
            )
        )
    limit = report.limit
    notes = ([limit.describe()] if limit is not None else []) + list(report.notes)
    if notes:
        blocks.append(_context(" · ".join(escape(n) for n in notes)))
    if checks and report.diagnosis is not None:
        blocks.extend(checks_blocks(report.diagnosis))
    if with_actions:
        idle = None
        role_total = None
        if isinstance(held, Holders):
            idle = sum(g.idle + g.idle_in_transaction for g in held.groups if g.usename == held.role)
            role_total = held.role_connections
        elif report.pg_info is not None:
            role_total = report.pg_info.connections_used
        blocks.append(
            remediation_actions(
                report.app,
                role_connections=role_total,
                idle_connections=idle,
                idle_after_s=idle_after_s,
                dynos=sum(p.quantity for p in report.formation) if report.formation else None,
                pgbouncer_pool=report.budget.pgbouncer_pool_size if report.budget else None,
                lead=REMEDY_ACTIONS[cause.remedy] if cause and cause.remedy else None,
                lead_process_type=cause.process_type if cause else None,
            )
        )
        menu = restart_type_menu(
            report.app,
            [(p.type, p.quantity) for p in report.formation],
            # The restart button restarts one type then; the menu keeps "all" within reach.
            with_all=cause is not None and cause.remedy == "restart" and cause.process_type is not None,
        )
        if menu is not None:
            blocks.append(menu)
    return blocks


def report_fallback_text(report: Report) -> str:
    used, limit = report.connections_used, report.connections_limit
    conn = f"{used}/{limit}" if used is not None and limit else (str(used) if used is not None else "?")
    return f"pgconn report for {report.app}: {conn} connections"


__all__ = ["report_blocks", "report_fallback_text", "holders_text", "connections_line", "HoldersUnavailable"]
