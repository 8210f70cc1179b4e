"""`/pgconn APP audit`: recent actions, newest first. Pure."""

from __future__ import annotations

import time

from bot.render.ownership import INCIDENT_LABELS
from bot.render.remediation import ACTION_LABELS
from bot.render.text import escape, truncate
from bot.state.remediation import AuditRecord


def audit_text(app: str, records: list[AuditRecord]) -> str:
    if not records:
        return f"No pgconn actions recorded for `{app}` yet."
    lines = [f"*Recent pgconn actions on `{app}`* (newest first)"]
    for r in records:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(r.at))
        icon = ":white_check_mark:" if r.ok else ":x:"
        label = ACTION_LABELS.get(r.action) or INCIDENT_LABELS.get(r.action) or escape(r.action)
        # The result is pgconn's own mrkdwn, escaped where it quotes outside text when it was
        # written; escaping it again would show `&lt;` literally.
        lines.append(f"{icon} {when} — <@{escape(r.user)}> ran *{label}*: {truncate(r.result, 200)}")
    return "\n".join(lines)
