"""JVM servers: `java …` with HikariCP's pool. Pure.

Default: HikariCP `maximumPoolSize` 10 (HikariCP README, "Frequently used").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.budget.parts import _Env, _first_int, _Part, _Tok

if TYPE_CHECKING:
    from bot.budget.shell import _Reader


def _java(r: _Reader, args: Sequence[_Tok], env: _Env) -> _Part:
    notes: list[str] = []
    pool = _first_int(
        env,
        (
            "SPRING_DATASOURCE_HIKARI_MAXIMUM_POOL_SIZE",
            "HIKARI_MAXIMUM_POOL_SIZE",
            "DB_POOL_SIZE",
            "JDBC_POOL_SIZE",
        ),
    )
    if pool is not None:
        return _Part("java", "java", 1, pool[1], "JVM", "connection", f"{pool[0]}={pool[1]}")
    notes.append("Java: assumed HikariCP's default maximumPoolSize of 10")
    return _Part("java", "java", 1, 10, "JVM", "connection", notes=notes)
