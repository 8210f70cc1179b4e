"""Backends as the inspector reads them from pg_stat_activity, for the pure diagnosis tests."""

from __future__ import annotations

from typing import Any

from bot.readings import Backend


def backend(
    pid: int, name: str, state: str = "active", age: float = 0.0, query: str = "SELECT 1", **fields: Any
) -> Backend:
    """A backend of role u1 whose query, transaction and state all started `age` seconds ago."""
    row: dict[str, Any] = dict(
        pid=pid,
        application_name=name,
        usename="u1",
        client_addr="10.0.0.1",
        state=state,
        query_age_s=age,
        xact_age_s=age,
        state_age_s=age,
        blocked_by=(),
        waiting_for=None,
        query=query,
    )
    row.update(fields)
    return Backend(**row)
