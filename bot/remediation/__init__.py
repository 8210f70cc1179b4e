"""Remediation: the four fixes behind the report's buttons, pressed safely.

- buttons.py — one record per button: public action id, label, confirm dialog, who may press
  it and the fix; everything below reads it.
- clicks.py — the protocol every click goes through: re-validate, authorise, claim once,
  lock the app, run, post the result in the thread, audit.
- fixes.py — the fixes themselves, through real APIs (kill idle, kill all, restart, add
  PgBouncer); each returns an Outcome saying what was and was not done.
- Beside them, under the same name: bot/render/remediation.py (the buttons in Block Kit)
  and bot/state/remediation.py (click claims, the per-app lock, the audit stream).

This package exports the fixes (`from bot import remediation; remediation.kill_idle(…)`).
"""

from bot.remediation.fixes import (
    PGBOUNCER_BUILDPACK,
    PGBOUNCER_START,
    PREPARED_STATEMENTS_ADVICE,
    Outcome,
    add_pgbouncer,
    dyno_progress,
    kill_all,
    kill_idle,
    procfile_lines,
    restart,
    supports_server_pooling,
    wait_for_dynos,
)

__all__ = [
    "PGBOUNCER_BUILDPACK",
    "PGBOUNCER_START",
    "PREPARED_STATEMENTS_ADVICE",
    "Outcome",
    "add_pgbouncer",
    "dyno_progress",
    "kill_all",
    "kill_idle",
    "procfile_lines",
    "restart",
    "supports_server_pooling",
    "wait_for_dynos",
]
