"""The remediation buttons (public action ids) with their confirm dialogs. Pure."""

from __future__ import annotations

from typing import Any

from bot.render.text import plural, truncate

KILL_IDLE = "pgconn.kill_idle"
KILLALL = "pgconn.killall"
RESTART = "pgconn.restart"
ADD_PGBOUNCER = "pgconn.add_pgbouncer"
ACTION_IDS = (KILL_IDLE, KILLALL, RESTART, ADD_PGBOUNCER)
ACTION_LABELS = {
    KILL_IDLE: "Kill idle",
    KILLALL: "Kill all",
    RESTART: "Restart dynos",
    ADD_PGBOUNCER: "Add PgBouncer",
}
ACTIONS_BLOCK_ID = "pgconn.actions"
# What the diagnosis calls each fix (bot.diagnosis.Remedy) → its public action id.
REMEDY_ACTIONS = {
    "kill_idle": KILL_IDLE,
    "killall": KILLALL,
    "restart": RESTART,
    "add_pgbouncer": ADD_PGBOUNCER,
}


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
    role = f"{app}'s database role"
    idle_now = f" ({idle_connections} idle right now)" if idle_connections is not None else ""
    all_what = plural(role_connections, "connection") if role_connections is not None else "all connections"
    dyno_what = plural(dynos, "dyno") if dynos is not None else "all dynos"
    pool = f" with a pool of {pgbouncer_pool} server connections per dyno" if pgbouncer_pool else ""
    one_type = lead_process_type if lead == RESTART else None
    buttons = [
        _button(
            KILL_IDLE,
            "Kill idle",
            app,
            "Kill idle connections?",
            f"Terminate the connections of {role} that have been idle or idle in transaction "
            f"for over {idle_after_s}s{idle_now}. Active queries are left alone.",
            "Kill idle",
            danger=False,
            lead=lead == KILL_IDLE,
        ),
        _button(
            KILLALL,
            "Kill all",
            app,
            "Kill all connections?",
            f"Terminate {all_what} of {role}, active queries included (like heroku pg:killall). "
            "Open transactions are rolled back.",
            "Kill all",
            danger=True,
            lead=lead == KILLALL,
        ),
        _button(
            RESTART,
            f"Restart {one_type} dynos" if one_type else "Restart dynos",
            # The value a click carries: `app:type` restarts one process type (bot.clicks).
            f"{app}:{one_type}" if one_type else app,
            "Restart dynos?",
            (
                f"Restart every {one_type} dyno of {app} (like heroku ps:restart {one_type}). Their "
                "connections close and reopen as the dynos boot."
                if one_type
                else f"Restart {dyno_what} of {app} (like heroku ps:restart). Their connections close "
                "and reopen as the dynos boot."
            ),
            "Restart",
            danger=True,
            lead=lead == RESTART,
        ),
        _button(
            ADD_PGBOUNCER,
            "Add PgBouncer",
            app,
            "Add PgBouncer?",
            f"Put the heroku/pgbouncer buildpack first on {app} and set PGBOUNCER_* config "
            f"vars{pool}. Takes effect on the next deploy, after the Procfile change pgconn "
            "will show you.",
            "Add PgBouncer",
            danger=False,
            lead=lead == ADD_PGBOUNCER,
        ),
    ]
    buttons.sort(key=lambda b: b["action_id"] != lead)  # stable: the others keep their order
    return {"type": "actions", "block_id": ACTIONS_BLOCK_ID, "elements": buttons}


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
