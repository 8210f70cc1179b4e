"""Who may make pgconn do what, beyond the buttons: watch/unwatch, per-app drain passwords,
other workspaces and shared channels, and routes that must not list the watched apps."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import redis

from tests.bot.samples import app_line, frame
from tests.conftest import System
from tests.end_to_end.test_webhooks import deliver, event
from tests.harness import ADMIN, ALERT_CHANNEL, GROUP_MEMBER, OPS_CHANNEL, STRANGER
from tests.hostile.helpers import basic_auth, destructive_heroku_calls, post_drain
from tests.support import DRAIN_TOKEN


async def test_the_webhook_route_does_not_tell_which_apps_are_watched(system: System) -> None:
    """Before a signature verifies, a watched app, a configured one and a stranger's look alike."""
    body = event("formation", "update", quantity=6, type="web")
    answers = set()
    for app in ("my-app", "std-app", "not-ours", "someone-elses-app", "x" * 200, "MY-APP"):
        for secret, signature in ((None, None), ("0" * 64, None), (None, "garbage")):
            response = await deliver(system.bot, app, body, secret=secret, signature=signature)
            answers.add((response.status_code, response.text))
    assert answers == {(401, "unauthorised\n")}
    # A body over the route's bound is refused by its Content-Length, for every name alike.
    big = b"{" + b" " * (300 * 1024) + b"}"
    sizes = {(await deliver(system.bot, app, big, secret=None, signature="x")).status_code
             for app in ("my-app", "not-ours")}
    assert sizes == {413}
    # Nothing done (the keeper of reserved connections may read Heroku meanwhile: reads only).
    assert destructive_heroku_calls(system) == [] and system.slack.calls("chat.postMessage") == []


# --- watch / unwatch are admin actions (item 6) --------------------------------------------------


async def answer(system: System, text: str, user: str) -> str:
    before = len(system.slack.ephemerals)
    response = await system.slack.send_slash_command(text, user_id=user, channel_id=OPS_CHANNEL)
    assert response.status_code == 200
    found = await system.slack.wait_for(lambda: system.slack.ephemerals[before:], timeout=15)
    return str(found[-1].get("text", ""))


def audit(system: System, app: str = "my-app") -> list[dict[str, str]]:
    entries = redis.Redis.from_url(system.redis_url, decode_responses=True).xrange(f"pgconn:audit:{app}")
    return [{str(k): str(v) for k, v in (fields or {}).items()} for _, fields in entries or []]


@pytest.mark.parametrize("user", [STRANGER, "UGUEST01", "UADMIN0", "WADMIN01"])
async def test_only_admins_may_watch_or_unwatch(system: System, user: str) -> None:
    app = system.heroku.apps["my-app"]
    assert "now receives `my-app`'s logs" in await answer(system, "my-app watch", ADMIN)
    drains, hooks = list(app.log_drains), list(app.webhooks)
    since = len(system.heroku.requests)
    for verb in ("unwatch", "watch"):
        refused = await answer(system, f"my-app {verb}", user)
        assert refused == f":no_entry: Only pgconn admins may run `/pgconn my-app {verb}`. Nothing was done."
    # Alerts keep coming: the drain and the webhook subscription are untouched, Heroku heard nothing.
    assert (app.log_drains, app.webhooks) == (drains, hooks)
    assert destructive_heroku_calls(system, since) == []
    assert [r["action"] for r in audit(system)] == ["watch"]
    assert "not a pgconn admin" in system.bot.logs()
    # Everyone may still read.
    assert "`/pgconn APP watch`" in await answer(system, "help", user)


async def test_unwatch_by_an_admin_is_audited_and_announced_in_the_alert_channel(system: System) -> None:
    await answer(system, "my-app watch", ADMIN)
    removed = await answer(system, "my-app unwatch", GROUP_MEMBER)  # an admin through the user group
    assert removed.startswith("Removed pgconn's log drain and webhook subscription from `my-app`")
    assert system.heroku.apps["my-app"].log_drains == []
    assert [(r["action"], r["user"], r["ok"]) for r in audit(system)] == [
        ("watch", ADMIN, "1"), ("unwatch", GROUP_MEMBER, "1")
    ]
    notices = [m.text for m in system.slack.messages(ALERT_CHANNEL)]
    assert notices == [
        f":information_source: <@{ADMIN}> ran `/pgconn my-app watch`: pgconn now receives `my-app`'s logs "
        "and will open an alert thread when its database runs out of connections.",
        f":information_source: <@{GROUP_MEMBER}> ran `/pgconn my-app unwatch`: {removed}",
    ]


# --- each app its own drain password, rotated on watch (item 7) --------------------------------


def drain_of(system: System, app: str) -> tuple[str, str]:
    (drain,) = system.heroku.apps[app].log_drains
    parts = urlsplit(drain.url)
    assert parts.username and parts.password
    return parts.username, parts.password


async def drain_status(system: System, app: str, credentials: tuple[str, str]) -> int:
    body = frame([app_line("GET /health 200")])
    response = await post_drain(system.bot, app, body, authorization=basic_auth(*credentials))
    return response.status_code


async def test_each_app_has_its_own_drain_password_rotated_by_watch_and_retired_by_unwatch(
    system: System,
) -> None:
    await answer(system, "my-app watch", ADMIN)
    await answer(system, "std-app watch", ADMIN)
    first, other = drain_of(system, "my-app"), drain_of(system, "std-app")
    urls = [d.url for a in ("my-app", "std-app") for d in system.heroku.apps[a].log_drains]
    # What `heroku drains` shows every collaborator: no master secret, and a password per app.
    assert all(DRAIN_TOKEN not in url for url in urls)
    assert first[1] != other[1] and len(first[1]) >= 32
    assert await drain_status(system, "my-app", first) == 204
    assert await drain_status(system, "std-app", first) == 401  # my-app's password opens only my-app
    assert await drain_status(system, "my-app", ("x", DRAIN_TOKEN)) == 401  # nor does the master

    # watch rotates: the URL before stays valid for a minute (frames in flight), older ones not.
    await answer(system, "my-app watch", ADMIN)
    second = drain_of(system, "my-app")
    await answer(system, "my-app watch", ADMIN)
    third = drain_of(system, "my-app")
    assert len({first, second, third}) == 3 and len(system.heroku.apps["my-app"].log_drains) == 1
    assert [await drain_status(system, "my-app", c) for c in (first, second, third)] == [401, 204, 204]

    await answer(system, "my-app unwatch", ADMIN)
    assert [await drain_status(system, "my-app", c) for c in (second, third)] == [401, 401]
    assert await drain_status(system, "std-app", other) == 204  # the other app is untouched
    assert "refused a retired drain password" in system.bot.logs()
