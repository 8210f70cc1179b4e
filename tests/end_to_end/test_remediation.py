"""Remediation buttons end to end: signed clicks → real bot → real Postgres / Heroku emulator."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis

from emulators.slack import Message
from tests.conftest import System
from tests.harness import ADMIN, GROUP_MEMBER, OPS_CHANNEL, STRANGER, BotProcess, new_port, start_bot
from tests.hostile.helpers import can_connect
from tests.support import ROLE_LIMIT, blocks_text, role_backends, terminate_role


async def post_report(system: System, app: str = "my-app") -> Message:
    before = len(system.slack.messages(OPS_CHANNEL))
    await system.slack.send_slash_command(app, user_id=ADMIN, channel_id=OPS_CHANNEL)
    return await system.slack.wait_for(
        lambda: next((m for m in system.slack.messages(OPS_CHANNEL)[before:] if m.blocks), None), timeout=10
    )


async def click(
    system: System, report: Message, action_id: str, user: str = ADMIN, value: str | None = None
) -> None:
    response = await system.slack.click(
        action_id=action_id,
        value=value or "my-app",
        user_id=user,
        channel_id=OPS_CHANNEL,
        message_ts=report.ts,
    )
    assert response.status_code == 200


async def thread_reply(system: System, report: Message, contains: str, count: int = 1) -> list[Message]:
    return await system.slack.wait_for(
        lambda: (
            found
            if len(found := [m for m in system.slack.thread(OPS_CHANNEL, report.ts) if contains in m.text])
            >= count
            else None
        ),
        timeout=15,
    )


async def ephemeral(system: System, contains: str) -> str:
    found = await system.slack.wait_for(
        lambda: next(
            (e["text"] for e in system.slack.ephemerals if contains in str(e.get("text", ""))), None
        ),
        timeout=10,
    )
    return str(found)


async def test_kill_all_on_a_full_role_frees_it_and_says_who_and_how_many(system: System) -> None:
    report = await post_report(system)  # pgconn's reserved connection is now open
    assert "Terminate" in blocks_text(report.blocks)
    assert system.load.open(ROLE_LIMIT, "web.1") == ROLE_LIMIT - 1
    assert not can_connect(system.app_dsn)
    await click(system, report, "pgconn.killall")
    (reply,) = await thread_reply(system, report, "Kill all")
    assert (
        f"<@{ADMIN}> ran *Kill all* on `my-app`: terminated {ROLE_LIMIT - 1} of {ROLE_LIMIT - 1} connections"
        in reply.text
    )
    assert system.load.alive() == 0
    assert can_connect(system.app_dsn)
    assert role_backends(system.pg) == 1  # only pgconn's reserved connection survives
    await system.slack.send_slash_command("my-app audit", user_id=ADMIN, channel_id=OPS_CHANNEL)
    audit = await ephemeral(system, "Recent pgconn actions")
    assert "*Kill all*" in audit and f"terminated {ROLE_LIMIT - 1}" in audit


async def test_kill_all_without_a_connection_goes_through_heroku_connection_reset(system: System) -> None:
    report = await post_report(system, "my-app")
    # Someone else took every slot, pgconn's reserved one included.
    terminate_role(system.pg)
    assert system.load.open(ROLE_LIMIT, "web.1") == ROLE_LIMIT
    await click(system, report, "pgconn.killall")
    (reply,) = await thread_reply(system, report, "Kill all")
    assert "reset all 20 connections through Heroku" in reply.text
    assert any(r.path.endswith("/connection_reset") for r in system.heroku.requests)
    assert system.load.alive() == 0
    assert can_connect(system.app_dsn)


async def test_kill_idle_terminates_only_idle_backends_never_pgconns_own(system: System) -> None:
    report = await post_report(system)
    system.load.open(5, "web.1")
    system.load.open(2, "worker.1", state="active")
    # PGCONN_KILL_IDLE_AFTER is 60 s by default; this bot runs with 0 so fresh idles count.
    await click(system, report, "pgconn.kill_idle")
    (reply,) = await thread_reply(system, report, "Kill idle")
    assert "terminated 5 idle of 7 connections" in reply.text
    assert system.load.alive() == 2
    assert role_backends(system.pg) == 3  # 2 busy + pgconn's reserved


async def test_restart_drops_the_apps_connections_and_follows_dynos_until_up(system: System) -> None:
    report = await post_report(system)
    system.load.open(6, "web.1")
    await click(system, report, "pgconn.restart")
    (reply,) = await thread_reply(system, report, "Restart dynos")
    assert "restarted 4 dynos" in reply.text
    assert system.load.alive() == 0
    final = await system.slack.wait_for(
        lambda: next(
            (m for m in system.slack.thread(OPS_CHANNEL, report.ts) if "All 4 dynos are up" in m.text), None
        ),
        timeout=15,
    )
    # The message was updated in place while dynos came back.
    assert any("starting" in str(edit.get("text", "")) for edit in final.edits)
    assert role_backends(system.pg) == 1  # pgconn's own connection is not a dyno's


async def test_add_pgbouncer_sets_buildpacks_config_vars_and_gives_instructions(system: System) -> None:
    report = await post_report(system)
    await click(system, report, "pgconn.add_pgbouncer")
    (reply,) = await thread_reply(system, report, "Add PgBouncer")
    app = system.heroku.apps["my-app"]
    assert app.buildpacks == ["heroku/pgbouncer", "heroku/python"]
    pool = int(app.config_vars["PGBOUNCER_DEFAULT_POOL_SIZE"])
    reserve = int(app.config_vars["PGBOUNCER_RESERVE_POOL_SIZE"])
    # 4 dynos × (pool + reserve) + 3 headroom must fit the 20-connection plan.
    assert 4 * (pool + reserve) + 3 <= ROLE_LIMIT and pool >= 1
    assert int(app.config_vars["PGBOUNCER_MAX_CLIENT_CONN"]) >= 6
    assert "DATABASE_URL" in app.config_vars
    assert "web: bin/start-pgbouncer gunicorn app.wsgi -w 3" in reply.text
    assert "worker: bin/start-pgbouncer celery -A app worker -c 4" in reply.text
    assert "Django" in reply.text or "psycopg" in reply.text


async def test_add_pgbouncer_twice_changes_nothing_the_second_time(system: System) -> None:
    report = await post_report(system)
    await click(system, report, "pgconn.add_pgbouncer")
    await thread_reply(system, report, "Add PgBouncer")
    second = await post_report(system)
    await click(system, second, "pgconn.add_pgbouncer")
    (reply,) = await thread_reply(system, second, "Add PgBouncer")
    assert "already installed" in reply.text and "changed nothing" in reply.text
    assert system.heroku.apps["my-app"].buildpacks == ["heroku/pgbouncer", "heroku/python"]


async def test_server_side_pooling_is_used_on_plans_that_support_it(system: System) -> None:
    report = await post_report(system, "std-app")
    await click(system, report, "pgconn.add_pgbouncer", value="std-app")
    (reply,) = await thread_reply(system, report, "Add PgBouncer")
    assert "connection pooling" in reply.text and "DATABASE_CONNECTION_POOL_URL" in reply.text
    assert system.heroku.apps["std-app"].buildpacks == ["heroku/ruby"]


@pytest.mark.parametrize("user", [STRANGER, "UFORGED99"])
async def test_non_admin_click_is_refused_and_nothing_changes(system: System, user: str) -> None:
    report = await post_report(system)
    system.load.open(5, "web.1")
    await click(system, report, "pgconn.killall", user=user)
    text = await ephemeral(system, "Only pgconn admins")
    assert "Nothing was done" in text
    assert system.load.alive() == 5
    assert system.slack.thread(OPS_CHANNEL, report.ts) == []


async def test_group_member_is_an_admin(system: System) -> None:
    report = await post_report(system)
    system.load.open(3, "web.1")
    await click(system, report, "pgconn.killall", user=GROUP_MEMBER)
    (reply,) = await thread_reply(system, report, "Kill all")
    assert f"<@{GROUP_MEMBER}>" in reply.text and system.load.alive() == 0


async def test_forged_app_in_button_value_does_nothing(system: System) -> None:
    report = await post_report(system)
    calls = len(system.heroku.requests)
    await click(system, report, "pgconn.restart", value="someone-elses-app")
    assert "not in PGCONN_APPS" in await ephemeral(system, "may not act on")
    assert not any("someone-elses-app" in r.path for r in system.heroku.requests[calls:])


@pytest.fixture(scope="module")
def second_bot(bot: BotProcess) -> Iterator[BotProcess]:
    """Another process of the same deployment (same Redis, same settings) as the session bot."""
    env = {**bot.env, "PORT": str(new_port())}
    process = start_bot(env)
    yield process
    process.stop()


def requests_to(system: System, method: str, path: str) -> int:
    return sum(1 for r in system.heroku.requests if r.method == method and r.path == path)


# What each action must have done exactly once after ten deliveries: its words and its effect.
ONCE = {
    "pgconn.killall": ("Kill all", "terminated 9 of 9", lambda s: s.load.alive() == 0),
    "pgconn.kill_idle": ("Kill idle", "terminated 8 idle of 9", lambda s: s.load.alive() == 1),
    "pgconn.restart": ("Restart dynos", "restarted 4 dynos",
                       lambda s: requests_to(s, "DELETE", "/apps/my-app/dynos") == 1),
    "pgconn.add_pgbouncer": ("Add PgBouncer", "heroku/pgbouncer", lambda s: (
        requests_to(s, "PUT", "/apps/my-app/buildpack-installations") == 1
        and requests_to(s, "PATCH", "/apps/my-app/config-vars") == 1
    )),
}


def audit_actions(system: System) -> list[bytes]:
    records: list[tuple[bytes, dict[bytes, bytes]]] = redis.Redis.from_url(  # type: ignore[assignment]
        system.redis_url
    ).xrange("pgconn:audit:my-app")
    return [fields.get(b"action", b"") for _, fields in records]


@pytest.mark.parametrize("action_id", list(ONCE))
async def test_same_click_ten_times_on_two_processes_runs_once(
    system: System, second_bot: BotProcess, action_id: str
) -> None:
    label, words, effect = ONCE[action_id]
    report = await post_report(system)
    system.load.open(8, "web.1")
    system.load.open(1, "worker.1", state="active")  # Kill idle must leave it; Kill all must not
    payload_urls = [system.bot.events_url, second_bot.events_url]

    async def deliver(i: int) -> None:
        system.slack.request_url = payload_urls[i % 2]
        await click(system, report, action_id)

    await asyncio.gather(*(deliver(i) for i in range(10)))
    (reply,) = await thread_reply(system, report, label)
    await system.slack.wait_for(
        lambda: sum("already" in str(e.get("text", "")) for e in system.slack.ephemerals) >= 9, timeout=15
    )
    assert effect(system), system.heroku.requests
    assert len([m for m in system.slack.thread(OPS_CHANNEL, report.ts) if label in m.text]) == 1
    assert words in reply.text, reply.text
    assert audit_actions(system) == [action_id.encode()]


async def test_two_different_actions_at_once_on_two_processes_run_one_at_a_time(
    system: System, second_bot: BotProcess
) -> None:
    """Restart and Add PgBouncer clicked together, each on its own process: different claims,
    one per-app lock. Both are held up at Heroku long enough to overlap; one runs, the other is
    refused with nothing done, and can be clicked again afterwards."""
    report = await post_report(system)
    for method, path in (("DELETE", "/apps/my-app/dynos"), ("PUT", "/buildpack-installations")):
        system.heroku.inject(path=path, method=method, status=200, delay=1.5)

    async def deliver(action_id: str, bot: BotProcess) -> None:
        system.slack.request_url = bot.events_url
        await click(system, report, action_id)

    await asyncio.gather(
        deliver("pgconn.restart", system.bot), deliver("pgconn.add_pgbouncer", second_bot)
    )
    busy = await ephemeral(system, "another pgconn action is still running on my-app")
    refused = "pgconn.restart" if "Restart dynos" in busy else "pgconn.add_pgbouncer"
    ran = ({"pgconn.restart", "pgconn.add_pgbouncer"} - {refused}).pop()
    (reply,) = await thread_reply(system, report, ONCE[ran][0])
    assert ONCE[ran][1] in reply.text
    # The refused one left no trace: no changing request of its own, no thread reply, no audit.
    if refused == "pgconn.restart":
        assert requests_to(system, "DELETE", "/apps/my-app/dynos") == 0
    else:
        assert requests_to(system, "PUT", "/apps/my-app/buildpack-installations") == 0
        assert system.heroku.apps["my-app"].buildpacks == ["heroku/python"]
    assert [m for m in system.slack.thread(OPS_CHANNEL, report.ts) if ONCE[refused][0] in m.text] == []
    assert audit_actions(system) == [ran.encode()]
    # Nothing ran, so its button works now.
    system.heroku.faults.clear()
    system.slack.request_url = system.bot.events_url
    await click(system, report, refused)
    (later,) = await thread_reply(system, report, ONCE[refused][0])
    assert ONCE[refused][1] in later.text


async def test_kill_idle_with_the_default_threshold_leaves_fresh_connections(system: System) -> None:
    """Every other end-to-end bot runs with PGCONN_KILL_IDLE_AFTER=0; this one has the 60 s
    default, which protects connections a dyno has just opened (the threshold's arithmetic is
    tested on the inspector, tests/bot/test_postgres.py)."""
    env = {k: v for k, v in system.bot.env.items() if k != "PGCONN_KILL_IDLE_AFTER"}
    default_bot = start_bot({**env, "PORT": str(new_port())})
    try:
        system.slack.request_url = default_bot.events_url
        report = await post_report(system)
        system.load.open(5, "web.1")
        await click(system, report, "pgconn.kill_idle")
        (reply,) = await thread_reply(system, report, "Kill idle")
        assert "terminated 0 idle of 5 connections" in reply.text, reply.text
        assert system.load.alive() == 5
    finally:
        system.slack.request_url = system.bot.events_url
        default_bot.stop()


async def test_restart_of_one_process_type_leaves_the_others_connected(system: System) -> None:
    report = await post_report(system)
    menu = next(b for b in report.blocks if b.get("block_id") == "pgconn.restart_type")
    values = [o["value"] for o in menu["accessory"]["options"]]
    assert values == ["my-app:web", "my-app:worker"]
    system.load.open(3, "web.1")
    system.load.open(2, "worker.1")
    await click(system, report, "pgconn.restart", value="my-app:worker")
    (reply,) = await thread_reply(system, report, "Restart dynos")
    assert "restarted 1 worker dyno" in reply.text
    assert system.load.alive() == 3
    assert [r.path for r in system.heroku.requests if r.method == "DELETE"] == ["/apps/my-app/dynos/worker"]


async def test_a_running_action_on_the_app_blocks_another_and_the_click_can_be_retried(
    system: System,
) -> None:
    store = redis.Redis.from_url(system.redis_url)
    store.set("pgconn:lock:my-app", "held-by-another-process", ex=60)
    report = await post_report(system)
    system.load.open(4, "web.1")
    await click(system, report, "pgconn.killall")
    assert "another pgconn action is still running on my-app" in await ephemeral(system, "not run")
    assert system.load.alive() == 4
    store.delete("pgconn:lock:my-app")
    # Nothing ran, so the same button works once the other action is done.
    await click(system, report, "pgconn.killall")
    (reply,) = await thread_reply(system, report, "Kill all")
    assert "terminated 4 of 4" in reply.text and system.load.alive() == 0
