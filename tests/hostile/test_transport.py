"""Transport (issue 20, item 10): pgconn's own database connections are encrypted whatever the
app's DATABASE_URL says (the test Postgres serves TLS with a certificate the suite makes)."""

from __future__ import annotations

import psycopg

from tests.conftest import System
from tests.hostile.helpers import post_report


async def test_pgconn_connects_with_tls_even_when_the_url_says_sslmode_disable(system: System) -> None:
    app = system.heroku.apps["my-app"]
    app.config_vars["DATABASE_URL"] = system.app_dsn + "?sslmode=disable"
    # A plain client honouring the URL really does connect without TLS to this server.
    with psycopg.connect(system.app_dsn + "?sslmode=disable") as plain:
        row = plain.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
        assert row == (False,)
    await post_report(system)
    with psycopg.connect(system.pg.dsn(), autocommit=True) as admin:
        rows = admin.execute(
            "SELECT a.application_name, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) "
            "WHERE a.application_name IN ('pgconn', 'pgconn-reserved')"
        ).fetchall()
    assert rows and all(ssl for _, ssl in rows), rows
