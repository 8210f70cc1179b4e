"""Who may do what: the admin matrix for every destructive action, apps outside PGCONN_APPS,
and the drain's credentials.

Every refusal is checked by its effect, not just its words: the role's connections stay
open, Heroku receives no changing request, nothing lands in the thread or the audit log.
"""

from __future__ import annotations

import hmac

import pytest
import redis

from handlers.drain import authorised
from tests.bot.samples import fatal_line, frame
from tests.conftest import System
from tests.harness import ADMIN, ALERT_CHANNEL, GROUP, GROUP_MEMBER, OPS_CHANNEL, STRANGER
from tests.hostile.helpers import (
    basic_auth,
    click,
    click_payload,
    deliver_payload,
    destructive_heroku_calls,
    ephemeral,
    post_drain,
    post_report,
    thread_reply,
)
from tests.support import DRAIN_TOKEN, drain_credentials

ACTIONS = {
    "pgconn.kill_idle": "Kill idle",
    "pgconn.killall": "Kill all",
    "pgconn.restart": "Restart dynos",
    "pgconn.add_pgbouncer": "Add PgBouncer",
}
# Signed by Slack, but not an admin: a stranger, ids nobody configured, the user-group id
# itself posing as a user, and near-misses of the admin's id.
REFUSED = [STRANGER, "UFORGED99", GROUP, "UADMIN0", "UADMIN011", "uadmin01", "WADMIN01"]


def audit_records(system: System) -> int:
    return int(redis.Redis.from_url(system.redis_url).xlen("pgconn:audit:my-app"))


@pytest.mark.parametrize("user", [ADMIN, GROUP_MEMBER], ids=["admin", "group-member"])
@pytest.mark.parametrize("action_id", list(ACTIONS))
async def test_admins_and_group_members_may_run_every_action(
    system: System, user: str, action_id: str
) -> None:
    report = await post_report(system)
    system.load.open(3, "web.1")
    system.load.open(1, "worker.1", state="active")  # busy: Kill idle must leave it, Kill all must not
    since = len(system.heroku.requests)
    await click(system, report, action_id, user=user)
    reply = await thread_reply(system, report, ACTIONS[action_id])
    assert reply.text.startswith(f":white_check_mark: <@{user}> ran *{ACTIONS[action_id]}* on `my-app`")
    effects = {
        "pgconn.kill_idle": lambda: system.load.alive() == 1 and "terminated 3 idle of 4" in reply.text,
        "pgconn.killall": lambda: system.load.alive() == 0 and "terminated 4 of 4" in reply.text,
        "pgconn.restart": lambda: "DELETE /apps/my-app/dynos" in destructive_heroku_calls(system, since),
        "pgconn.add_pgbouncer": lambda: system.heroku.apps["my-app"].buildpacks[0] == "heroku/pgbouncer",
    }
    # The busy worker's thread notices its backend is gone a moment after pgconn said so.
    assert await system.slack.wait_for(effects[action_id], timeout=10)
    assert audit_records(system) == 1


@pytest.mark.parametrize("user", REFUSED)
async def test_everyone_else_is_refused_every_action_and_nothing_changes(system: System, user: str) -> None:
    log_start = len(system.bot.logs())
    report = await post_report(system)
    system.load.open(3, "web.1")
    since = len(system.heroku.requests)
    for action_id, label in ACTIONS.items():
        assert (await deliver_payload(system, click_payload(system, report, action_id, user=user))).is_success
        text = await ephemeral(system, f"run *{label}*")
        assert text == f":no_entry: Only pgconn admins may run *{label}* on `my-app`. Nothing was done."
    assert system.load.alive() == 3
    assert destructive_heroku_calls(system, since) == []
    assert system.heroku.apps["my-app"].buildpacks == ["heroku/python"]
    assert system.slack.thread(OPS_CHANNEL, report.ts) == []
    assert audit_records(system) == 0
    # Logged by this test's refusals (the session bot's log also holds earlier tests' lines).
    refusals = system.bot.logs()[log_start:]
    assert all(f"refused {a} on my-app: {user} is not an admin of the app" in refusals for a in ACTIONS)


@pytest.mark.parametrize(
    "value",
    ["evil-app", "someone-elses-app:web", "my-app-2", "bare", "../my-app", "my-app/../x", "", ":web",
     "\u00e9"],
)
async def test_a_payload_naming_an_app_outside_pgconn_apps_does_nothing(system: System, value: str) -> None:
    report = await post_report(system)
    system.load.open(3, "web.1")
    since = len(system.heroku.requests)
    for action_id in ACTIONS:
        await click(system, report, action_id, value=value)
    await system.slack.wait_for(
        lambda: sum("is not in PGCONN_APPS" in str(e.get("text")) for e in system.slack.ephemerals) == 4
    )
    # Not one request to Heroku after the click, read-only or not: the app was never looked up.
    assert system.heroku.requests[since:] == []
    assert system.load.alive() == 3
    assert system.slack.thread(OPS_CHANNEL, report.ts) == []
    assert audit_records(system) == 0


async def test_a_restart_of_an_unknown_process_type_changes_nothing(system: System) -> None:
    report = await post_report(system)
    since = len(system.heroku.requests)
    await click(system, report, "pgconn.restart", value="my-app:<!channel>")
    reply = await thread_reply(system, report, "Restart dynos")
    assert "has no" in reply.text and "<!channel>" not in reply.text
    assert destructive_heroku_calls(system, since) == []


# --- the drain route ------------------------------------------------------------------------------


DRAIN_REFUSED = {
    "none": None,
    "empty": "",
    "bearer": f"Bearer {DRAIN_TOKEN}",
    "token-as-user": basic_auth(DRAIN_TOKEN, ""),
    "no-colon": "Basic " + __import__("base64").b64encode(DRAIN_TOKEN.encode()).decode(),
    "wrong": basic_auth("x", "guess"),
    "empty-password": basic_auth("x", ""),
    "prefix": basic_auth("x", DRAIN_TOKEN[:-1]),
    "longer": basic_auth("x", DRAIN_TOKEN + "0"),
    "case": basic_auth("x", DRAIN_TOKEN.upper()),
    "not-base64": "Basic %%%",
}


@pytest.mark.parametrize("name", list(DRAIN_REFUSED))
async def test_drain_without_the_right_password_is_401_and_nothing_happens(system: System, name: str) -> None:
    body = frame([fatal_line()])
    for app in ("my-app", "not-ours"):  # the same answer either way: no way to learn app names
        response = await post_drain(system.bot, app, body, authorization=DRAIN_REFUSED[name])
        assert response.status_code == 401, app
        assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert system.slack.messages(ALERT_CHANNEL) == []


async def test_drain_with_the_password_but_an_app_outside_pgconn_apps_is_404_and_does_nothing(
    system: System,
) -> None:
    body = frame([fatal_line()])
    for app in ("not-ours", "MY-APP", "my-app.evil"):
        # A credential pgconn made for that name: only the master secret's holder has one.
        response = await post_drain(system.bot, app, body, authorization=basic_auth(*drain_credentials(app)))
        assert response.status_code == 404, app
    accepted = await post_drain(
        system.bot, "my-app", body, authorization=basic_auth(*drain_credentials("my-app"))
    )
    assert accepted.status_code == 204
    parent = await system.slack.wait_for(lambda: system.slack.messages(ALERT_CHANNEL)[0], timeout=15)
    assert "my-app" in parent.text
    assert all("not-ours" not in r.path for r in system.heroku.requests)


@pytest.mark.parametrize(
    "guess",
    ["", "x", DRAIN_TOKEN[:-1], DRAIN_TOKEN[:-1] + "X", "Z" + DRAIN_TOKEN[1:], DRAIN_TOKEN + "x", "é" * 30,
     DRAIN_TOKEN],
)
def test_drain_credentials_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch, guess: str) -> None:
    """Every guess, whatever its length or how much of it is right, goes through one
    hmac.compare_digest against the app's whole password: nothing returns early on a prefix."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    nonce, password = drain_credentials("my-app")
    guess = password if guess == DRAIN_TOKEN else guess
    assert authorised(basic_auth(nonce, guess), DRAIN_TOKEN, "my-app") is (guess == password)
    assert calls == [(guess.encode(), password.encode())]
