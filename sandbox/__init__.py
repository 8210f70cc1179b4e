"""The local sandbox: real Postgres, Redis (and PgBouncer), emulated Slack and Heroku."""
