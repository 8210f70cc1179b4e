"""The Heroku Postgres API's pg:info document, built from live facts about the real database.

Field names and value formats follow what `heroku pg:info` prints (heroku/cli
`commands/pg/info.ts` renders the `info` list verbatim; `lib/pg/types.ts` lists the
names). Essential-tier (multi-tenant) databases answer with a lean document whose
`plan` is a string; Standard and above answer with the dedicated-server document
whose `plan` is an object — clients have to cope with both, as with the real API.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from emulators.heroku_pg import DatabaseFacts, database_name
from emulators.heroku_state import (
    EmulatedApp,
    connection_limit,
    display_plan,
    is_essential_tier,
    iso,
    now,
    row_limit,
    storage_limit,
)

_ESSENTIAL_TABLE_LIMIT = 4000


def pretty_bytes(n: int) -> str:
    """"8.9 MB", "1 GB": one decimal, dropped when whole (Heroku prints limits as "1 GB")."""
    units = ["bytes", "kB", "MB", "GB", "TB"]
    value = float(n)
    unit = 0
    while value >= 1024 and unit < len(units) - 1:
        value /= 1024
        unit += 1
    if unit == 0:
        return f"{n} bytes"
    text = f"{value:.1f}"
    return f"{text.removesuffix('.0')} {units[unit]}"


def _info(name: str, *values: str) -> dict[str, Any]:
    return {"name": name, "values": list(values)}


def pg_info(app: EmulatedApp, facts: DatabaseFacts) -> dict[str, Any]:
    plan = app.plan
    limit = app.addon.connection_limit or connection_limit(plan)
    created = app.addon.created_at
    created_text = created.strftime("%Y-%m-%d %H:%M UTC")
    size = pretty_bytes(facts.size_bytes)
    storage = storage_limit(plan)
    if storage:
        size += f" / {pretty_bytes(storage)} ({facts.size_bytes / storage * 100:.2f}%)"
    common = {
        "addon_id": app.addon.id,
        "name": app.addon.name,
        "created_at": iso(created),
        "database_name": database_name(app.database_url),
        "database_user": app.role,
        "num_bytes": facts.size_bytes,
        "resource_url": app.database_url,
        "waiting?": False,
    }
    rows = row_limit(plan)
    if is_essential_tier(plan):
        info = [
            _info("Plan", display_plan(plan)),
            _info("Status", "Available"),
            _info("Connections", f"{facts.connections}/{limit}"),
            _info("PG Version", facts.version),
            _info("Created", created_text),
            _info("Data Size", size),
        ]
        if rows is not None:
            # Legacy hobby/mini/basic plans: limited by rows, tables shown as a bare count.
            info.append(_info("Tables", str(facts.tables)))
            compliance = "In compliance" if facts.rows <= rows else "Over limit"
            info.append(_info("Rows", f"{facts.rows}/{rows} ({compliance})"))
        else:
            compliance = "In compliance" if facts.tables <= _ESSENTIAL_TABLE_LIMIT else "Over limit"
            info.append(_info("Tables", f"{facts.tables}/{_ESSENTIAL_TABLE_LIMIT} ({compliance})"))
        info += [
            _info("Fork/Follow", "Unsupported"),
            _info("Rollback", "Unsupported"),
            _info("Continuous Protection", "Off"),
        ]
        return {**common, "plan": plan, "info": info}

    rollback_from = (now() - timedelta(days=4)).strftime("%Y-%m-%d %H:%M UTC")
    info = [
        _info("Plan", display_plan(plan)),
        _info("Status", "Available"),
        _info("Data Size", size),
        _info("Tables", str(facts.tables)),
        _info("PG Version", facts.version),
        _info("Connections", f"{facts.connections}/{limit}"),
        _info("Connection Pooling", "Available"),
        _info("Credentials", "1"),
        _info("Fork/Follow", "Available"),
        _info("Rollback", f"earliest from {rollback_from}"),
        _info("Created", created_text),
        _info("Region", "us"),
        _info("Data Encryption", "In Use"),
        _info("Continuous Protection", "On"),
        _info("Enhanced Certificates", "Off"),
        _info("Upgradable Extensions", "No"),
        _info("Maintenance", "not required"),
        _info("Maintenance window", "Thursdays 22:00 to Fridays 02:00 UTC"),
    ]
    return {
        **common,
        "plan": {"id": 1, "name": plan},
        "info": info,
        "available_for_ingress": True,
        "credentials": 1,
        "current_transaction": 1873,
        "forked_from": None,
        "heroku_resource_id": app.addon.id,
        "leader": None,
        "metaas_source": "heroku-postgres",
        "num_connections": facts.connections,
        "num_connections_waiting": 0,
        "num_tables": facts.tables,
        "port": 5432,
        "postgres_version": facts.version,
        "target_transaction": None,
    }
