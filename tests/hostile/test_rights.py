"""Who may make pgconn do what, beyond the buttons: watch/unwatch, per-app drain passwords,
other workspaces and shared channels, and routes that must not list the watched apps."""

from __future__ import annotations

from tests.conftest import System
from tests.handlers.test_webhooks import deliver, event


async def test_the_webhook_route_does_not_tell_which_apps_are_watched(system: System) -> None:
    """Before a signature verifies, a watched app, a configured one and a stranger's look alike."""
    body = event("formation", "update", quantity=6, type="web")
    answers = set()
    for app in ("my-app", "std-app", "not-ours", "someone-elses-app", "x" * 200, "MY-APP"):
        for secret, signature in ((None, None), ("0" * 64, None), (None, "garbage")):
            response = await deliver(system.bot, app, body, secret=secret, signature=signature)
            answers.add((response.status_code, response.text))
    assert answers == {(401, "unauthorised\n")}
    assert system.heroku.requests == [] and system.slack.received == []
