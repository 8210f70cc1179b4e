"""The remediation buttons, one record each: the public action id, the label, the confirm
dialog, who may press it and the fix it runs.

Rendering (bot/render/remediation.py), the click protocol (clicks.py), authorisation
(bot/authz.py), the audit view (bot/render/audit.py) and listener registration
(handlers/__init__.py) all read `BUTTONS`; adding a fix is adding one record here.
The action ids are public (DESIGN.md): they change only with a migration note.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.diagnosis import Remedy
from bot.remediation import fixes
from bot.remediation.fixes import Outcome, Progress
from bot.render.text import plural

if TYPE_CHECKING:
    from bot.authz import Who
    from bot.dependencies import Services


@dataclass(frozen=True)
class Facts:
    """What a confirm dialog states about the app right now, from the report when it has it."""

    app: str
    role_connections: int | None
    idle_connections: int | None
    idle_after_s: int
    dynos: int | None
    pgbouncer_pool: int | None
    process_type: str | None = None  # a restart of one process type


# The fix: (services, app, process type or None, progress) → what was and was not done; it tells
# `progress` before and after each change (bot.state.inflight, for a restart mid-action).
Fix = Callable[["Services", str, "str | None", Progress], Awaitable[Outcome]]


@dataclass(frozen=True)
class Button:
    id: str  # the public action_id
    remedy: Remedy  # what the diagnosis calls this fix (bot.diagnosis.Cause.remedy)
    label: str
    title: str  # the confirm dialog's title
    confirm: str  # its confirm button
    danger: bool  # styled red, in the button and in its dialog
    who: Who  # who may press it (bot.authz)
    explain: Callable[[Facts], str]  # the confirm dialog's text: exactly what happens to which app
    fix: Fix
    # With one process type: the label (`{type}` filled in) and a value `app:type` (clicks.py).
    label_for_type: str = ""


def _role(f: Facts) -> str:
    return f"{f.app}'s database role"


def _explain_kill_idle(f: Facts) -> str:
    idle_now = f" ({f.idle_connections} idle right now)" if f.idle_connections is not None else ""
    return (
        f"Terminate the connections of {_role(f)} that have been idle or idle in transaction "
        f"for over {f.idle_after_s}s{idle_now}. Active queries are left alone."
    )


def _explain_killall(f: Facts) -> str:
    what = plural(f.role_connections, "connection") if f.role_connections is not None else "all connections"
    return (
        f"Terminate {what} of {_role(f)}, active queries included (like heroku pg:killall). "
        "Open transactions are rolled back."
    )


def _explain_restart(f: Facts) -> str:
    if f.process_type:
        return (
            f"Restart every {f.process_type} dyno of {f.app} (like heroku ps:restart {f.process_type}). "
            "Their connections close and reopen as the dynos boot."
        )
    dynos = plural(f.dynos, "dyno") if f.dynos is not None else "all dynos"
    return (
        f"Restart {dynos} of {f.app} (like heroku ps:restart). Their connections close "
        "and reopen as the dynos boot."
    )


def _explain_add_pgbouncer(f: Facts) -> str:
    pool = f" with a pool of {f.pgbouncer_pool} server connections per dyno" if f.pgbouncer_pool else ""
    return (
        f"Put the heroku/pgbouncer buildpack first on {f.app} and set PGBOUNCER_* config "
        f"vars{pool}. Takes effect on the next deploy, after the Procfile change pgconn "
        "will show you."
    )


async def _kill_idle(s: Services, app: str, process_type: str | None, progress: Progress) -> Outcome:
    return await fixes.kill_idle(s.heroku, s.inspector, app, s.settings.kill_idle_after_s, progress)


async def _killall(s: Services, app: str, process_type: str | None, progress: Progress) -> Outcome:
    return await fixes.kill_all(s.heroku, s.inspector, app, progress)


async def _restart(s: Services, app: str, process_type: str | None, progress: Progress) -> Outcome:
    return await fixes.restart(s.heroku, app, process_type, progress)


async def _add_pgbouncer(s: Services, app: str, process_type: str | None, progress: Progress) -> Outcome:
    return await fixes.add_pgbouncer(s.heroku, app, s.settings.budget_headroom, progress)


KILL_IDLE = Button(
    id="pgconn.kill_idle",
    remedy="kill_idle",
    label="Kill idle",
    title="Kill idle connections?",
    confirm="Kill idle",
    danger=False,
    who="admin",
    explain=_explain_kill_idle,
    fix=_kill_idle,
)
KILLALL = Button(
    id="pgconn.killall",
    remedy="killall",
    label="Kill all",
    title="Kill all connections?",
    confirm="Kill all",
    danger=True,
    who="admin",
    explain=_explain_killall,
    fix=_killall,
)
RESTART = Button(
    id="pgconn.restart",
    remedy="restart",
    label="Restart dynos",
    title="Restart dynos?",
    confirm="Restart",
    danger=True,
    who="admin",
    explain=_explain_restart,
    fix=_restart,
    label_for_type="Restart {type} dynos",
)
ADD_PGBOUNCER = Button(
    id="pgconn.add_pgbouncer",
    remedy="add_pgbouncer",
    label="Add PgBouncer",
    title="Add PgBouncer?",
    confirm="Add PgBouncer",
    danger=False,
    who="admin",
    explain=_explain_add_pgbouncer,
    fix=_add_pgbouncer,
)

# In the order a report shows them.
BUTTONS: tuple[Button, ...] = (KILL_IDLE, KILLALL, RESTART, ADD_PGBOUNCER)
BY_ID: Mapping[str, Button] = {b.id: b for b in BUTTONS}
BY_REMEDY: Mapping[Remedy, Button] = {b.remedy: b for b in BUTTONS}
