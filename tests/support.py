"""Constants and small helpers shared by tests (imported, unlike conftest fixtures)."""

from __future__ import annotations

from typing import Any

import psycopg

from sandbox.servers import LocalPostgres

# Recognisable secrets: tests scan everything Slack received and everything logged for these.
API_KEY = "HRKU-secret-apikey-0f1e2d3c4b5a"
DB_PASSWORD = "db-secret-pw-8c7b6a5d4e"
SIGNING_SECRET = "signing-secret-5a4b3c2d1e0f"
BOT_TOKEN = "xoxb-secret-bot-token-123456"
DRAIN_TOKEN = "drain-secret-token-9f8e7d"
SECRETS = (API_KEY, DB_PASSWORD, SIGNING_SECRET, BOT_TOKEN, DRAIN_TOKEN)

APP_ROLE = "app_role"
APP_DB = "appdb"
ROLE_LIMIT = 20


def terminate_role(pg: LocalPostgres, role: str = APP_ROLE) -> None:
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,)
        )


def role_backends(pg: LocalPostgres, role: str = APP_ROLE) -> int:
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (role,)
        ).fetchone()
    return int(row[0]) if row else 0


def blocks_text(blocks: list[dict[str, Any]]) -> str:
    """Every piece of text in Block Kit blocks, for assertions on what a person would read."""
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    out.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(blocks)
    return "\n".join(out)
