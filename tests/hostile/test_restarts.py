"""Heroku restarts every dyno at least daily and on each deploy: SIGTERM, then SIGKILL 30 s later.

Each test SIGTERMs a bot in the middle of a slow action, and starts another process on the same
Redis (the dyno that comes up): the thread then says what was done and what was not, a restart
is followed to the end, and the button works again when nothing was done.
"""

from __future__ import annotations

import signal
from contextlib import AbstractContextManager

import pytest

from emulators.slack import Message
from tests.conftest import System
from tests.harness import OPS_CHANNEL, BotProcess
from tests.hostile.helpers import click, dedicated_bot, post_report, thread_reply

GRACE = "0.5"  # PGCONN_SHUTDOWN_GRACE: short, so the tests reach "stopped mid-way" quickly


def start(system: System) -> AbstractContextManager[BotProcess]:
    return dedicated_bot(system, PGCONN_SHUTDOWN_GRACE=GRACE, PGCONN_RESTART_POLL="0.2")


def sigterm(bot: BotProcess) -> None:
    bot.process.send_signal(signal.SIGTERM)
    # Well inside Heroku's 30 s; uvicorn re-raises the signal once it has shut down.
    assert bot.process.wait(timeout=20) in (0, -signal.SIGTERM)
    assert "Traceback" not in bot.logs()


async def in_thread(system: System, report: Message, contains: str, timeout: float = 30) -> Message:
    return await thread_reply(system, report, contains, timeout=timeout)


async def test_sigterm_while_a_restart_is_followed_the_next_process_follows_it_to_the_end(
    system: System,
) -> None:
    system.heroku.apps["my-app"].boot_seconds = 6.0  # dynos take a while to come back
    with start(system) as first:
        report = await post_report(system)
        await click(system, report, "pgconn.restart")
        result = await in_thread(system, report, "restarted 4 dynos")
        await system.slack.wait_for(lambda: "0/4 dynos up" in result.text, timeout=15)
        sigterm(first)
    assert "All 4 dynos are up" not in result.text  # the first process did not see them up
    with start(system):  # the dyno that replaces it
        await system.slack.wait_for(lambda: "All 4 dynos are up" in result.text, timeout=40)
    assert "followed to the end by another pgconn process" in result.text
    assert [m.ts for m in system.slack.thread(OPS_CHANNEL, report.ts)] == [result.ts]  # one message


async def test_sigterm_while_add_pgbouncer_is_half_done_says_what_was_and_was_not_done(
    system: System,
) -> None:
    # The config-vars PATCH is slow: the process stops with the buildpacks set and it in flight.
    system.heroku.inject(path="/apps/my-app/config-vars", method="PATCH", status=200, delay=4.0)
    with start(system) as first:
        report = await post_report(system)
        await click(system, report, "pgconn.add_pgbouncer")
        await system.slack.wait_for(lambda: patched(system), timeout=15)
        sigterm(first)
    with start(system):
        told = await in_thread(system, report, "in the middle of *Add PgBouncer*")
    assert "• done: buildpacks are now heroku/pgbouncer, heroku/python" in told.text
    assert "*may or may not have been done*: config vars PGBOUNCER_DEFAULT_POOL_SIZE=" in told.text
    assert len(system.slack.thread(OPS_CHANNEL, report.ts)) == 1
    # Heroku did apply it after all ("may or may not" was the truth): wait for it, so that the
    # restart its config change causes does not land in the next test.
    await system.slack.wait_for(
        lambda: "PGBOUNCER_DEFAULT_POOL_SIZE" in system.heroku.apps["my-app"].config_vars, timeout=15
    )


@pytest.mark.parametrize("action", ["pgconn.restart", "pgconn.killall"])
async def test_sigterm_before_anything_was_sent_frees_the_button(system: System, action: str) -> None:
    # Reading the app is slow: the process stops before it sent anything.
    path = "/apps/my-app/formation" if action == "pgconn.restart" else "/apps/my-app/config-vars"
    system.load.open(2, "web.1")
    with start(system) as first:
        report = await post_report(system)
        system.heroku.inject(path=path, method="GET", status=200, delay=4.0)
        before = reads(system, path)
        await click(system, report, action)
        await system.slack.wait_for(lambda: reads(system, path) > before, timeout=15)
        sigterm(first)
    with start(system):
        told = await in_thread(system, report, "*nothing was done*")
        assert "The button works again" in told.text
        assert system.load.alive() == 2
        # The same button on the same message runs now.
        await click(system, report, action)
        await in_thread(system, report, "restarted 4 dynos" if action == "pgconn.restart" else "terminated 2")


def patched(system: System) -> bool:
    return any(r.method == "PATCH" and r.path.endswith("/config-vars") for r in system.heroku.requests)


def reads(system: System, path: str) -> int:
    return sum(1 for r in system.heroku.requests if r.method == "GET" and r.path == path)
