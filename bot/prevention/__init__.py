"""Prevention: warn in the alert channel when a scale-up or a release breaks the connection
budget, before any connection fails.

- decisions.py — the pure half: budget snapshots, what changed and who changed it, the fixes
  with their numbers, and the decision (warn, follow up, resolve).
- watcher.py — the I/O half: a verified Heroku webhook → the app read afresh → the budget
  anew → the warning thread, under one evaluation per app at a time.
- Beside them, under the same name: bot/state/prevention.py (what is remembered between
  deliveries, in Redis) and bot/render/prevention.py (the warning thread's messages).

This package exports the pure half; import the watcher from bot.prevention.watcher.
"""

from bot.prevention.decisions import (
    BUDGET_VARS,
    BudgetSnapshot,
    OpenWarning,
    WatchState,
    decide,
    describe_change,
    fixes,
)

__all__ = ["BUDGET_VARS", "BudgetSnapshot", "OpenWarning", "WatchState", "decide", "describe_change", "fixes"]
