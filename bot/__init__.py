"""pgconn core: everything that knows about Heroku, Postgres, Redis and Block Kit.

Importable without Slack; handlers/ is the thin layer that turns Slack and HTTP
requests into calls on this package.
"""
