"""Deployment: a clean clone built as Heroku's Python buildpack builds it; a clone in a private home."""
