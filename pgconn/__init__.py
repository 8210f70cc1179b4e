"""The running application, on top of everything else: what `python -m bot` starts.

- main.py — the process: settings from the environment (or the local sandbox when no
  credentials are set), logging, an embedded Redis off Heroku, uvicorn, Socket Mode.
- asgi.py — the ASGI app: Bolt at /slack/events (signature, size and shape checked on the
  raw bytes first), the listeners of handlers/ and the plain HTTP routes, and the lifespan.

The layers, each importing only those below it: pgconn/ → handlers/ (thin listeners) →
bot/ (the core). bot/ imports neither handlers/ nor the sandbox (tests/bot/test_layers.py).
"""
