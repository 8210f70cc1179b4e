"""Heroku Postgres plans: how many connections each plan allows. Pure.

Source: shared/contracts/README.md (from Heroku Dev Center "Choosing the Right Heroku
Postgres Plan" and the legacy-plans page): legacy hobby/mini/basic 20; Essential-0 20,
Essential-1 20, Essential-2 40; Standard-0 120, Standard-2 400, larger plans 500
(heroku/roadmap#158: "the largest plans support a maximum of 500"); Premium, Private and
Shield follow the Standard sizes. A third-party 2026 pricing table lists 200/500 for
*-0/*-2: when pg:info gives "Connections: n/limit", callers should prefer that number over
this table (bot/limits.py does).
"""

from __future__ import annotations

import re

_LEGACY_20 = frozenset(["hobby-dev", "hobby-basic", "hobby", "dev", "mini", "basic", "essential"])
_ESSENTIAL = {0: 20, 1: 20, 2: 40}


def plan_connection_limit(plan: str | None) -> int | None:
    """The connection limit of a Heroku Postgres plan, or None when the plan is unknown.

    Accepts "heroku-postgresql:essential-0", "essential-0", "Essential 0" (pg:info's
    spelling), "standard-2", "hobby-dev", "mini", "premium-4", "private-2", "shield-0".
    """
    if not isinstance(plan, str):
        return None
    name = plan.strip().lower().split(":", 1)[-1].strip()
    name = re.sub(r"[\s_]+", "-", name)
    if name in _LEGACY_20:
        return 20
    m = re.fullmatch(r"(essential|standard|premium|private|shield)-(\d{1,2})", name)
    if not m:
        return None
    tier, size = m.group(1), int(m.group(2))
    if tier == "essential":
        return _ESSENTIAL.get(size)
    if size == 0:
        return 120
    if size == 2:
        return 400
    if size >= 3:
        return 500
    return None  # there is no *-1 plan in the Standard/Premium/Private/Shield tiers
