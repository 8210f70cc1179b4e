"""The alert thread: its parent message (open and resolved forms) and its replies. Pure.

The parent is redrawn by `chat.update` as signals arrive, so everything here is a
function of the stored Incident, the recent samples and the report blocks stored when
the thread opened — nothing that needs Heroku or Postgres again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.detect import Severity
from bot.render.diagnosis import CAUSE_BLOCK_ID
from bot.render.ownership import ownership_blocks
from bot.render.remediation import ACTIONS_BLOCK_ID
from bot.render.report import connections_line
from bot.render.text import MAX_BLOCKS, MAX_TEXT, code, duration, escape, plural, sparkline, truncate, when
from bot.state.incidents import Incident

SPARK_POINTS = 40
_TITLE = {
    Severity.CRITICAL: ":rotating_light: {target}: out of database connections",
    Severity.WARN: ":warning: {target}: close to the connection limit",
    Severity.OK: ":information_source: {target}: connections",
}


def _target(incident: Incident) -> str:
    return f"{incident.app} · {incident.database}"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, MAX_TEXT)}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(text, MAX_TEXT)}]}


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": truncate(text, 150), "emoji": True}}


def downsample(values: Sequence[int], points: int = SPARK_POINTS) -> list[int]:
    """At most `points` values, keeping each bucket's maximum: a spike must not vanish."""
    if len(values) <= points:
        return list(values)
    out = []
    for i in range(points):
        lo = i * len(values) // points
        hi = (i + 1) * len(values) // points
        out.append(max(values[lo:hi]))
    return out


def trend_line(values: Sequence[int], limit: int | None) -> str | None:
    if not values:
        return None
    points = downsample(values)
    # Pinned to 0..limit so a full bar means "at the limit", not "the highest value seen".
    spark = sparkline(points, lo=0, hi=limit) if limit else sparkline(points, lo=0)
    scale = f" of {limit}" if limit else ""
    return (
        f"*Last 30 min:* `{spark}`  low {min(values)} · high {max(values)}{scale} · "
        f"now {values[-1]} ({plural(len(values), 'sample')})"
    )


def _counts(incident: Incident) -> str:
    parts = [f"{incident.signals:,} signal{'s' if incident.signals != 1 else ''}"]
    if incident.fatal:
        parts.append(f"{incident.fatal:,} refused connection{'s' if incident.fatal != 1 else ''}")
    return " · ".join(parts)


def _summary(incident: Incident, now: float, resolve_after_s: float) -> str:
    lines = []
    if incident.status == "resolved":
        lasted = (incident.resolved_at or now) - incident.opened_at
        how = (
            f"resolved by hand by <@{incident.resolved_by}>"
            if incident.resolved_by
            else f"connections stayed below the warning threshold for {duration(resolve_after_s)}"
        )
        lines.append(f"*Resolved* after {duration(lasted)}: {how}. Peak: *{incident.peak.value}*.")
    else:
        lines.append(f"*{incident.severity.value.capitalize()}*")
        if incident.ok_since is not None:
            lines[-1] += (
                f" · recovering: below the warning threshold since {when(incident.ok_since)}; "
                f"resolves after {duration(resolve_after_s)} without a new signal"
            )
    lines.append(
        f"{_counts(incident)} · first seen {when(incident.opened_at)} · last seen {when(incident.last_seen)}"
    )
    return "\n".join(lines)


def _report_part(report: Sequence[dict[str, Any]], *, with_actions: bool) -> list[dict[str, Any]]:
    # The report's own header and connections line repeat ours; a resolved incident's
    # buttons would act on a state that no longer exists, so they go (the slash command
    # gives fresh ones).
    out = []
    for block in report:
        if block.get("type") == "header":
            continue
        if str((block.get("text") or {}).get("text", "")).startswith("*Connections:*"):
            continue  # the parent's own line above is live; the report's is from the first post
        if not with_actions and block.get("block_id") == ACTIONS_BLOCK_ID:
            continue
        if not with_actions and block.get("type") == "actions":
            continue
        if not with_actions and (block.get("accessory") or {}).get("type") not in (None, "image"):
            continue  # e.g. "Restart only one process type:" with its menu
        out.append(block)
    return out


def alert_blocks(
    incident: Incident,
    *,
    samples: Sequence[int],
    report: Sequence[dict[str, Any]],
    now: float,
    resolve_after_s: float,
) -> list[dict[str, Any]]:
    """The parent message of an incident's thread."""
    resolved = incident.status == "resolved"
    title = (
        f":white_check_mark: Resolved: {_target(incident)}"
        if resolved
        else _TITLE[incident.severity].format(target=_target(incident))
    )
    blocks: list[dict[str, Any]] = [
        _header(title),
        _section(_summary(incident, now, resolve_after_s)),
        _section(connections_line(incident.current, incident.limit)),
    ]
    trend = trend_line(samples, incident.limit)
    if trend:
        blocks.append(_section(trend))
    if incident.excerpt:
        role = f" (role {code(incident.role, 40)})" if incident.role else ""
        excerpt = code(incident.excerpt, 300)
        blocks.append(_context(f"Latest refusal{role}: {excerpt}{_source(incident.source)}"))
    if incident.last_error and not incident.posted:
        blocks.append(_context(f"Posted late: Slack refused earlier ({escape(incident.last_error)})"))
    # Who owns it, its snooze and escalation, and the Acknowledge / Resolve / Snooze controls.
    blocks.extend(ownership_blocks(incident, now))
    part = _report_part(report, with_actions=not resolved)
    # The report's likely cause leads the alert too, right under what is happening.
    cause = [b for b in part if b.get("block_id") == CAUSE_BLOCK_ID]
    part = [b for b in part if b.get("block_id") != CAUSE_BLOCK_ID]
    blocks[2:2] = cause
    if part:
        blocks.append({"type": "divider"})
        blocks.extend(part)
    return blocks[:MAX_BLOCKS]


def alert_text(incident: Incident) -> str:
    """Notification / fallback text of the parent (also what screen readers read)."""
    conn = (
        f"{incident.current}/{incident.limit}"
        if incident.current is not None and incident.limit
        else str(incident.current if incident.current is not None else "?")
    )
    if incident.status == "resolved" and incident.resolved_by:
        return f"Resolved by hand: {incident.app} ({incident.database}) database connections"
    if incident.status == "resolved":
        return f"Resolved: {incident.app} ({incident.database}) database connections back to normal"
    word = "out of" if incident.severity is Severity.CRITICAL else "close to the limit of"
    return f"{incident.app} ({incident.database}) is {word} database connections: {conn}"


def severity_reply(incident: Incident) -> str:
    conn = connections_line(incident.current, incident.limit).removeprefix("*Connections:* ")
    if incident.severity is Severity.CRITICAL:
        return f":rotating_light: Now *critical*: {conn}."
    return f":warning: Now *warning*: {conn}."


def resolved_reply(incident: Incident, resolve_after_s: float) -> str:
    lasted = (incident.resolved_at or incident.last_seen) - incident.opened_at
    conn = (
        f" Connections now {incident.current}/{incident.limit}."
        if incident.current is not None and incident.limit
        else ""
    )
    how = (
        f"resolved by hand by <@{incident.resolved_by}>"
        if incident.resolved_by
        else f"below the warning threshold for {duration(resolve_after_s)}"
    )
    return f":white_check_mark: Resolved after {duration(lasted)}: {how}.{conn} {_counts(incident)} in all."


def _source(proc: str) -> str:
    """Who logged the refusal. The app's own output can say anything (an app that logs request
    parameters lets any visitor write "too many connections" into it); Postgres's log and
    Heroku's metrics cannot be written by the app. The connection count above is pgconn's own."""
    if not proc or proc.startswith(("postgres", "heroku-postgres")):
        return ""
    return (
        f" — logged by the app itself ({code(proc, 20)}): any text the app logs can read like this, "
        "so trust the connection count above, which pgconn reads itself"
    )
