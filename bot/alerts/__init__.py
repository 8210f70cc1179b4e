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
from bot.alerts.engine import AlertEngine

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
