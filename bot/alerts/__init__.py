"""Alert threads: drain signals in, one Slack thread per incident out.

- decisions.py — pure: `AlertPolicy`, `Observation`, `decide` and the folds of each Slack
  effect's outcome (`after_post`, `post_failed`, `update_failed`, `reply_failed`). No I/O,
  no clock: unit-tested with plain values.
- engine.py — `AlertEngine`, the thin I/O around them: drain signals coalesced per app,
  load → decide → compare-and-set → act, and a periodic check that resolves.

Why compare-and-set rather than locks: every process decides from the same stored
state and only one write per version wins, so exactly one process ever holds the
"post the parent" claim of an incident — however many processes and signals race.
"""

from typing import TYPE_CHECKING, Any

from bot.alerts.decisions import (
    AlertPolicy,
    Decision,
    Observation,
    after_post,
    assess,
    decide,
    post_failed,
    reply_failed,
    update_failed,
)

# The engine is imported when first asked for, not with the package: the pure modules here
# (ownership, decisions) are imported by renderers (bot.render.ownership), and the engine
# imports those renderers, so an eager import made `import bot.render.alert` fail on a
# half-initialised module whenever nothing had imported bot.alerts first
# (tests/bot/test_layers.py imports every module on its own).
if TYPE_CHECKING:
    from bot.alerts.engine import AlertEngine


def __getattr__(name: str) -> Any:
    if name == "AlertEngine":
        from bot.alerts.engine import AlertEngine

        return AlertEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AlertEngine",
    "AlertPolicy",
    "Decision",
    "Observation",
    "after_post",
    "assess",
    "decide",
    "post_failed",
    "reply_failed",
    "update_failed",
]
