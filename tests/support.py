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
# The drain master secret (PGCONN_DRAIN_TOKEN, at least 32 characters); each app's drain password
# is derived from it (bot.drain_auth).
DRAIN_TOKEN = "drain-secret-token-9f8e7d6c5b4a39281"
# A PagerDuty Events API v2 routing key (32 characters) in an app's PGCONN_APP_ROUTES entry.
PAGERDUTY_KEY = "pdsecretroutingkey0123456789abcd"
SECRETS = (API_KEY, DB_PASSWORD, SIGNING_SECRET, BOT_TOKEN, DRAIN_TOKEN, PAGERDUTY_KEY)



def drain_credentials(app: str, nonce: str = "0") -> tuple[str, str]:
    """(user, password) of a drain URL pgconn would make for `app`: valid until `watch` rotates it."""
    from bot.drain_auth import drain_password

    return nonce, drain_password(DRAIN_TOKEN, app, nonce)


def watched_drain_credentials(heroku: Any, app: str) -> tuple[str, str]:
    """The credentials of the drain URL `watch` registered on the emulated app (the current ones),
    or, when the app has none, a credential pgconn would take for an app it never rotated."""
    from urllib.parse import unquote, urlsplit

    emulated = heroku.apps.get(app)
    for drain in emulated.log_drains if emulated is not None else []:
        parts = urlsplit(drain.url)
        if parts.path.endswith(f"/drains/heroku/{app}") and parts.username:
            return unquote(parts.username), unquote(parts.password or "")
    return drain_credentials(app)


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
