"""Two apps owned by two teams (PGCONN_APP_ROUTES): each app's alerts, budget warnings, notices,
buttons, `watch` and audit belong to its own team's channel and admins.

One bot process for the module, configured as a deployment shared by two teams:

- team one owns `my-app`: channel C0TEAMONE, admins UONEADMIN and the user group STEAMONE;
- team two owns `std-app`: channel C0TEAMTWO, admins the user group STEAMTWO (members read
  with usergroups.users.list);
- `bare-app` names nothing: PGCONN_ALERT_CHANNEL and PGCONN_ADMINS (ADMIN, GROUP), as today.

Every refusal is checked by its effect too: connections stay open, Heroku hears no change,
nothing is posted or audited.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from functools import partial

import httpx
import pytest
import redis

from emulators.heroku import HerokuEmulator
from emulators.slack import Message, SlackEmulator
from sandbox.servers import LocalRedis
from tests.bot.samples import fatal_line, frame
from tests.conftest import System
from tests.end_to_end.conftest import ALERT_ENV, WAIT_S, Alerts, blocks_of
from tests.end_to_end.test_budget_warnings import scale
from tests.harness import (
    ADMIN,
    ALERT_CHANNEL,
    GROUP_MEMBER,
    OPS_CHANNEL,
    PUBLIC_URL,
    STRANGER,
    BotProcess,
    bot_env,
    new_port,
    settled,
    start_bot,
)
from tests.hostile.helpers import destructive_heroku_calls
from tests.support import PAGERDUTY_KEY

TEAM_ONE, TEAM_TWO = "C0TEAMONE", "C0TEAMTWO"
ONE_ADMIN, ONE_GROUP, ONE_MEMBER = "UONEADMIN", "STEAMONE", "UONEGROUP"
TWO_GROUP, TWO_MEMBER = "STEAMTWO", "UTWOGROUP"
ROUTES = {
    "my-app": {"channel": TEAM_ONE, "admins": [ONE_ADMIN, ONE_GROUP]},
    # The routing key is a secret: the session's secret scan (tests/hostile/test_secrets.py) finds it
    # in no Slack message and no bot log.
    "std-app": {"channel": TEAM_TWO, "admins": [TWO_GROUP], "pagerduty_routing_key": PAGERDUTY_KEY},
}
ACTIONS = {
    "pgconn.kill_idle": "Kill idle",
    "pgconn.killall": "Kill all",
    "pgconn.restart": "Restart dynos",
    "pgconn.add_pgbouncer": "Add PgBouncer",
}


def teams_redis_url(redis_url: str) -> str:
    """Database 6 of the session's Redis: no other bot of the session (0-3) sees it."""
    return redis_url.rsplit("/", 1)[0] + "/6"


@pytest.fixture(scope="module")
def teams_bot(
    bot: BotProcess, slack: SlackEmulator, heroku: HerokuEmulator, redis_server: LocalRedis
) -> Iterator[BotProcess]:
    slack.add_channel(TEAM_ONE, "team-one-alerts")
    slack.add_channel(TEAM_TWO, "team-two-alerts")
    for user, name in ((ONE_ADMIN, "olivia"), (ONE_MEMBER, "oscar"), (TWO_MEMBER, "tara")):
        slack.add_user(user, name)
    slack.add_usergroup(ONE_GROUP, [ONE_MEMBER])
    slack.add_usergroup(TWO_GROUP, [TWO_MEMBER])
    process = start_bot(
        bot_env(
            slack_url=slack.url,
            heroku_url=heroku.url,
            redis_url=teams_redis_url(redis_server.url),
            port=new_port(),
            PGCONN_APP_ROUTES=json.dumps(ROUTES),
            **ALERT_ENV,
        )
    )
    yield process
    process.stop()


@pytest.fixture
async def teams(system: System, teams_bot: BotProcess, redis_server: LocalRedis) -> AsyncIterator[System]:
    redis.Redis.from_url(teams_redis_url(redis_server.url)).flushdb()
    system.slack.request_url = teams_bot.events_url
    system.heroku.webhooks.routes = {PUBLIC_URL: teams_bot.url}
    system.bot = teams_bot
    yield system
    # No incident left open for this bot's ticker to resolve into a later test's Slack.
    await settled(teams_bot)
    redis.Redis.from_url(teams_redis_url(redis_server.url)).flushdb()


def audit_of(system: System, app: str) -> list[dict[str, str]]:
    entries = redis.Redis.from_url(teams_redis_url(system.redis_url), decode_responses=True).xrange(
        f"pgconn:audit:{app}"
    )
    return [{str(k): str(v) for k, v in (fields or {}).items()} for _, fields in entries or []]


def pgconn_posts(system: System, channel: str) -> list[Message]:
    return [m for m in system.slack.top_level(channel) if m.bot_id == system.slack.bot_id]


async def report(system: System, app: str) -> Message:
    """`/pgconn APP` in the ops channel (anyone may read): the report with the app's buttons."""
    before = len(system.slack.messages(OPS_CHANNEL))
    await system.slack.send_slash_command(app, user_id=STRANGER, channel_id=OPS_CHANNEL)
    return await system.slack.wait_for(
        lambda: next((m for m in system.slack.messages(OPS_CHANNEL)[before:] if m.blocks), None),
        timeout=WAIT_S,
    )


async def answer(system: System, text: str, user: str, channel: str = OPS_CHANNEL) -> str:
    """The ephemeral answer to `/pgconn TEXT` from `user` in `channel`."""
    before = len(system.slack.ephemerals)
    assert (await system.slack.send_slash_command(text, user_id=user, channel_id=channel)).status_code == 200
    found = await system.slack.wait_for(lambda: system.slack.ephemerals[before:], timeout=WAIT_S)
    return str(found[-1].get("text", ""))


async def click(system: System, message: Message, action_id: str, app: str, user: str) -> str:
    """A signed click on `message`'s button; the ephemeral or thread answer it got."""
    before = len(system.slack.ephemerals)
    response = await system.slack.click(
        action_id=action_id, value=app, user_id=user, channel_id=message.channel, message_ts=message.ts
    )
    assert response.status_code == 200
    await settled(system.bot)
    said = [str(e.get("text", "")) for e in system.slack.ephemerals[before:]]
    return said[-1] if said else ""


async def test_an_exhaustion_on_each_app_goes_to_its_own_teams_channel_only(teams: System) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        alerts = Alerts(system=teams, bot=teams.bot, http=http)
        for app in ("my-app", "std-app", "bare-app"):
            assert (await alerts.drain(frame([fatal_line()] * 5), app=app, count=5)).status_code == 204
        await settled(teams.bot)
        threads = {
            channel: await teams.slack.wait_for(partial(pgconn_posts, teams, channel), timeout=WAIT_S)
            for channel in (TEAM_ONE, TEAM_TWO, ALERT_CHANNEL)
        }
    owner = {TEAM_ONE: "my-app", TEAM_TWO: "std-app", ALERT_CHANNEL: "bare-app"}
    for channel, posts in threads.items():
        # One thread per channel, about its own app, and no word of the other teams' apps.
        assert len(posts) == 1, (channel, [m.text for m in posts])
        assert posts[0].text.startswith(f"{owner[channel]} ("), posts[0].text
        others = set(owner.values()) - {owner[channel]}
        assert not any(f"`{o}`" in blocks_of(posts[0]) or posts[0].text.startswith(o) for o in others)
    assert pgconn_posts(teams, OPS_CHANNEL) == []


@pytest.mark.parametrize(
    ("app", "users"),
    [
        # Team one's admin (listed, and through its group), and the deployment's default admins
        # (std-app names its own), on team two's app: each refused as the stranger is.
        ("std-app", [ONE_ADMIN, ONE_MEMBER, ADMIN, GROUP_MEMBER, STRANGER]),
        ("my-app", [TWO_MEMBER, ADMIN, STRANGER]),
    ],
)
async def test_an_admin_of_one_app_is_refused_on_another_apps_buttons_like_a_stranger(
    teams: System, app: str, users: list[str]
) -> None:
    message = await report(teams, app)
    teams.load.open(3, "web.1")
    since, buildpacks = len(teams.heroku.requests), list(teams.heroku.apps[app].buildpacks)
    for action_id, label in ACTIONS.items():
        answers = {user: await click(teams, message, action_id, app, user) for user in users}
        assert set(answers.values()) == {
            f":no_entry: Only pgconn admins may run *{label}* on `{app}`. Nothing was done."
        }, answers
    assert teams.load.alive() == 3
    assert destructive_heroku_calls(teams, since) == []
    assert teams.heroku.apps[app].buildpacks == buildpacks
    assert teams.slack.thread(OPS_CHANNEL, message.ts) == []
    assert audit_of(teams, app) == []


async def test_the_owning_teams_admin_runs_the_apps_buttons(teams: System) -> None:
    """The other side of the refusals: a member of team two's user group kills std-app's
    connections; the click is announced in the thread and audited under std-app only."""
    message = await report(teams, "std-app")
    teams.load.open(3, "web.1")
    await click(teams, message, "pgconn.killall", "std-app", TWO_MEMBER)
    reply = await teams.slack.wait_for(
        lambda: next((m for m in teams.slack.thread(OPS_CHANNEL, message.ts) if "Kill all" in m.text), None),
        timeout=WAIT_S,
    )
    assert reply.text.startswith(f":white_check_mark: <@{TWO_MEMBER}> ran *Kill all* on `std-app`")
    assert teams.load.alive() == 0
    assert [(r["action"], r["user"]) for r in audit_of(teams, "std-app")] == [("pgconn.killall", TWO_MEMBER)]
    assert audit_of(teams, "my-app") == []


async def test_watch_is_the_owning_teams_and_its_notices_and_warnings_go_to_its_channel(
    teams: System,
) -> None:
    app = teams.heroku.apps["std-app"]
    for user in (ONE_ADMIN, ADMIN, STRANGER):
        refused = await answer(teams, "std-app watch", user)
        assert refused == ":no_entry: Only pgconn admins may run `/pgconn std-app watch`. Nothing was done."
    assert app.log_drains == [] and app.webhooks == []

    done = await answer(teams, "std-app watch", TWO_MEMBER)
    assert "now receives `std-app`'s logs" in done and f"<#{TEAM_TWO}>" in done, done
    assert [m.text for m in pgconn_posts(teams, TEAM_TWO)] == [
        f":information_source: <@{TWO_MEMBER}> ran `/pgconn std-app watch`: {done.splitlines()[0]}"
    ]
    # A scale-up past the plan's 120 (30 puma dynos × 5 threads): warned in team two's channel.
    await scale(teams, "std-app", "web", 30)
    warning = await teams.slack.wait_for(
        lambda: next((m for m in pgconn_posts(teams, TEAM_TWO) if m.blocks), None), timeout=WAIT_S
    )
    assert "std-app" in warning.text and "no longer fits" in blocks_of(warning)
    await settled(teams.bot)
    assert pgconn_posts(teams, TEAM_ONE) == [] and pgconn_posts(teams, ALERT_CHANNEL) == []


async def test_the_audit_of_an_app_covers_that_app_only_and_is_its_teams_to_read(teams: System) -> None:
    mine, theirs = await report(teams, "my-app"), await report(teams, "std-app")
    await click(teams, mine, "pgconn.kill_idle", "my-app", ONE_ADMIN)
    await click(teams, theirs, "pgconn.kill_idle", "std-app", TWO_MEMBER)
    assert len(audit_of(teams, "my-app")) == len(audit_of(teams, "std-app")) == 1

    refusal = (
        ":no_entry: Only pgconn admins, or people in the app's alert channel, may run "
        "`/pgconn std-app audit`. Nothing was done."
    )
    # Team one's admin, anywhere but std-app's channel (its own channel included), and a stranger
    # outside it: refused alike.
    for user, channel in ((ONE_ADMIN, OPS_CHANNEL), (ONE_ADMIN, TEAM_ONE), (STRANGER, OPS_CHANNEL)):
        assert await answer(teams, "std-app audit", user, channel) == refusal
    # Team two's admin anywhere, and anyone in team two's channel: std-app's actions only.
    for user, channel in ((TWO_MEMBER, OPS_CHANNEL), (STRANGER, TEAM_TWO)):
        shown = await answer(teams, "std-app audit", user, channel)
        assert "Recent pgconn actions" in shown and f"<@{TWO_MEMBER}>" in shown, shown
        assert f"<@{ONE_ADMIN}>" not in shown and "my-app" not in shown
