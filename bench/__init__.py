"""pgconn's benchmarks: speed and cost of the real system, and the way people do it today.

`bench/run` (or `python -m bench`) starts real PostgreSQL and Redis, the Heroku and Slack
emulators (with injected Heroku latency) and the bot as `python -m bot`, runs the
scenarios, prints a table and writes bench/results/latest.json.
"""
