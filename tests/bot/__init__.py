"""The core (bot/): pure functions with plain values, and its thin I/O parts against the real
Postgres and Redis the suite starts and the emulators."""
