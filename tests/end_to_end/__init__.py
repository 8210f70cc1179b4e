"""End-to-end runs of the whole bot: `python -m bot` as a subprocess (tests/harness.py), signed
Slack requests, drains and webhooks over HTTP, and what the Slack and Heroku emulators saw."""
