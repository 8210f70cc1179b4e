"""Emulators of the outside services pgconn talks to (Slack Web API, Heroku APIs).

They follow the official contracts in ../shared/contracts/ and model effects on the
real Postgres they are given. Used by the tests, the benchmarks and the sandbox.
"""
