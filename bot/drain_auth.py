"""Per-app log-drain credentials, derived from one master secret. Pure: no I/O.

A drain URL is visible to every collaborator of the app (`heroku drains`), so it must not
carry a password that opens every app's drain. Each drain URL carries its own:

    https://NONCE:PASSWORD@host/drains/heroku/APP
    PASSWORD = base64url(HMAC-SHA256(PGCONN_DRAIN_TOKEN, "pgconn-drain:APP:NONCE"))

The nonce is the Basic-auth user name, so a request proves itself without any stored state:
only someone holding the master secret can make a password that verifies for an app. `watch`
rotates the nonce (bot.state.drains keeps the current one), which retires the old URL: a
collaborator who copied it before gets 401 once the rotation's grace period is over.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

# Heroku Basic auth user names are free text; pgconn's nonces are short lowercase hex.
_NONCE = re.compile(r"^[0-9a-f]{1,32}$")
# The least length of PGCONN_DRAIN_TOKEN (checked at start-up): 32 characters.
MIN_MASTER_CHARS = 32


def new_nonce() -> str:
    return secrets.token_hex(8)


def drain_password(master: str, app: str, nonce: str) -> str:
    """43 URL-safe characters (256 bits): the password of `app`'s drain URL with `nonce`."""
    mac = hmac.new(master.encode(), f"pgconn-drain:{app}:{nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def credentials_valid(master: str | None, app: str, user: str | None, password: str | None) -> bool:
    """Whether (user, password) is a drain credential pgconn made for `app`, in constant time."""
    if not master or user is None or password is None or not _NONCE.match(user):
        return False
    expected = drain_password(master, app, user)
    return hmac.compare_digest(password.encode(), expected.encode())
