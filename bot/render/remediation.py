"""The remediation buttons in Block Kit with their confirm dialogs (bot.remediation.buttons). Pure."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bot.remediation import buttons
from bot.remediation.buttons import BUTTONS, Facts
from bot.render.text import plural, truncate

# The public action ids and labels, as the rest of the code names them (records: bot.remediation.buttons).
KILL_IDLE = buttons.KILL_IDLE.id
KILLALL = buttons.KILLALL.id
RESTART = buttons.RESTART.id
ADD_PGBOUNCER = buttons.ADD_PGBOUNCER.id
ACTION_IDS = tuple(b.id for b in BUTTONS)
ACTION_LABELS = {b.id: b.label for b in BUTTONS}
ACTIONS_BLOCK_ID = "pgconn.actions"
# What the diagnosis calls each fix (bot.diagnosis.Remedy) → its public action id.
REMEDY_ACTIONS = {b.remedy: b.id for b in BUTTONS}


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": truncate(text, limit), "emoji": False}


def _button(
    action_id: str,
    label: str,
    value: str,
    title: str,
    text: str,
    confirm: str,
    danger: bool,
    lead: bool = False,
) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "text": _plain(label, 75),
        "value": value,
        "confirm": {
            "title": _plain(title, 100),
            "text": {"type": "plain_text", "text": truncate(text, 300)},
            "confirm": _plain(confirm, 30),
            "deny": _plain("Cancel", 30),
        },
    }
    if danger:
        button["style"] = "danger"
        button["confirm"]["style"] = "danger"
    if lead:
        # The fix for the likely cause: first and green, its confirm dialog still as careful.
        button["style"] = "primary"
    return button


def remediation_actions(
    app: str,
    *,
    role_connections: int | None,
    idle_connections: int | None,
    idle_after_s: int,
    dynos: int | None,
    pgbouncer_pool: int | None,
    lead: str | None = None,
    lead_process_type: str | None = None,
) -> dict[str, Any]:
    """One actions block; each confirm says exactly what will happen to which app.

    `lead` (an action id) is the fix for the report's likely cause: it goes first, styled
    primary. A lead restart with `lead_process_type` restarts only that process type.
    """
    one_type = lead_process_type if lead == RESTART else None
    facts = Facts(app, role_connections, idle_connections, idle_after_s, dynos, pgbouncer_pool)
    elements = []
    for b in BUTTONS:
        typed = one_type if b.label_for_type else None
        elements.append(
            _button(
                b.id,
                b.label_for_type.format(type=typed) if typed else b.label,
                # The value a click carries: `app:type` acts on one process type (bot.remediation.clicks).
                f"{app}:{typed}" if typed else app,
                b.title,
                b.explain(replace(facts, process_type=typed)),
                b.confirm,
                danger=b.danger,
                lead=lead == b.id,
            )
        )
    elements.sort(key=lambda e: e["action_id"] != lead)  # stable: the others keep their order
    return {"type": "actions", "block_id": ACTIONS_BLOCK_ID, "elements": elements}


def one_action(
    app: str, remedy: str, *, role_connections: int | None, idle_after_s: int, process_type: str | None = None
) -> dict[str, Any]:
    """An actions block with the one button that fits (a verification that did not hold: the
    same record, confirm and click protocol as on every report)."""
    button = buttons.BY_REMEDY[remedy]  # type: ignore[index]
    typed = process_type if button.label_for_type else None
    facts = Facts(app, role_connections, None, idle_after_s, None, None, process_type=typed)
    element = _button(
        button.id,
        button.label_for_type.format(type=typed) if typed else button.label,
        f"{app}:{typed}" if typed else app,
        button.title,
        button.explain(facts),
        button.confirm,
        danger=button.danger,
        lead=True,
    )
    return {"type": "actions", "block_id": ACTIONS_BLOCK_ID, "elements": [element]}


def restart_type_menu(
    app: str, process_types: list[tuple[str, int]], *, with_all: bool = False
) -> dict[str, Any] | None:
    """Restart one process type: an overflow menu on the same public action id.

    Slack's overflow takes 2–5 options; with a single process type "Restart dynos" already
    is that restart, so no menu. `with_all` adds "restart all" (value `app`), for when the
    restart button itself restarts one type.
    """
    every = [(t, n) for t, n in process_types if n > 0]
    running = every[: 4 if with_all else 5]
    if len(running) < 2:
        return None
    return {
        "type": "section",
        "block_id": "pgconn.restart_type",
        "text": {
            "type": "mrkdwn",
            "text": "Restart another process type, or all dynos:"
            if with_all
            else "Restart only one process type:",
        },
        "accessory": {
            "type": "overflow",
            "action_id": RESTART,
            "options": [
                {"text": _plain(f"Restart {t} ({plural(n, 'dyno')})", 75), "value": f"{app}:{t}"}
                for t, n in running
            ]
            + (
                [
                    {
                        "text": _plain(f"Restart all ({plural(sum(n for _, n in every), 'dyno')})", 75),
                        "value": app,
                    }
                ]
                if with_all
                else []
            ),
            "confirm": {
                "title": _plain("Restart dynos?", 100),
                "text": {
                    "type": "plain_text",
                    "text": f"Restart the chosen process type of {app}. "
                    "Its connections close and reopen as the dynos boot.",
                },
                "confirm": _plain("Restart", 30),
                "deny": _plain("Cancel", 30),
                "style": "danger",
            },
        },
    }
