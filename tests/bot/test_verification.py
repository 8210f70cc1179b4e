"""Verification of fixes: the verdicts (pure), and the pending checks on a real Redis taken once
across processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.diagnosis import Cause
from bot.readings import Dyno
from bot.state import Redis, connect_redis
from bot.state.verification import DUE_KEY, PendingCheck, VerificationResult, VerificationStore, new_id
from bot.verification.verdicts import (
    ReleaseFacts,
    Verdict,
    elapsed,
    judge_kill,
    judge_pgbouncer,
    judge_restart,
    no_deploy,
)
from sandbox.servers import LocalRedis

IDLE_CAUSE = Cause("worker.2 holds 12 connections idle in transaction", "red", "idle_in_tx", "kill_idle")


def kill(**kw: Any) -> Verdict:
    args: dict[str, Any] = dict(
        action="killall", label="Kill all", before=20, just_after=1, after=3, limit=20, elapsed_s=60,
        warn_share=0.8,
    )
    args.update(kw)
    return judge_kill(**args)


def test_a_kill_that_held_is_verified_with_before_and_after() -> None:
    v = kill()
    assert v.kind == "verified" and v.remedy is None
    assert v.line == "verified: 20/20 → 3/20 a minute after *Kill all*"


def test_connections_climbing_back_after_a_kill_say_the_cause_is_still_there() -> None:
    v = kill(after=9, cause=IDLE_CAUSE)
    assert v.kind == "climbing"
    assert "20/20 → 9/20" in v.line and "up from 1 right after it" in v.line
    # The diagnosis's cause leads, with its button.
    assert "likely cause: worker.2 holds 12" in v.line and v.remedy == "kill_idle"
    # Without a cause: the next fix up the ladder.
    assert kill(after=9).remedy == "restart"
    # A gain under a tenth of the limit (at least 3) is a dyno reconnecting, not a climb.
    assert kill(after=3).kind == "verified" and kill(after=4).kind == "climbing"


def test_a_kill_that_left_the_role_near_its_limit_is_not_fixed() -> None:
    v = kill(action="kill_idle", label="Kill idle", after=19, just_after=18, elapsed_s=65)
    assert v.kind == "not_fixed" and v.remedy == "killall"
    assert v.line == "not fixed: 19/20 a minute after *Kill idle*"
    assert kill(after=None).kind == "not_verified"


def test_a_restart_needs_every_dyno_up_and_connections_under_the_limit() -> None:
    up = [Dyno("web.1", "web", "up"), Dyno("web.2", "web", "up")]
    common: dict[str, Any] = dict(before=20, limit=20, elapsed_s=240, warn_share=0.8)
    v = judge_restart(dynos=up, after=6, **common)
    assert v.kind == "verified"
    assert v.line == "verified: all 2 dynos up, 20/20 → 6/20 4 minutes after the restart"
    crashed = [Dyno("web.1", "web", "up"), Dyno("web.2", "web", "crashed")]
    v = judge_restart(dynos=crashed, after=6, **common)
    assert v.kind == "not_fixed" and "1/2 dynos up (crashed)" in v.line
    v = judge_restart(dynos=up, after=19, **common)
    assert v.kind == "not_fixed" and "back at 19/20" in v.line and v.remedy == "add_pgbouncer"


def test_add_pgbouncer_is_judged_by_its_release_then_by_connections_per_dyno() -> None:
    good = ReleaseFacts(12, ("heroku/pgbouncer", "heroku/python"))
    common: dict[str, Any] = dict(
        before=20, dynos_before=3, dynos_after=3, limit=20, elapsed_s=240, warn_share=0.8
    )
    v = judge_pgbouncer(release=good, after=6, **common)
    assert v.kind == "verified"
    assert v.line == "verified: 20/20 → 6/20 (6.7 → 2.0 per dyno) 4 minutes after release v12"
    v = judge_pgbouncer(release=ReleaseFacts(12, ("heroku/python",)), after=6, **common)
    assert v.kind == "not_fixed" and "built without heroku/pgbouncer" in v.line
    assert v.remedy == "add_pgbouncer"
    unwrapped = ReleaseFacts(12, good.buildpacks, ("worker",))
    v = judge_pgbouncer(release=unwrapped, after=6, **common)
    assert v.kind == "not_fixed" and "starts worker without `bin/start-pgbouncer`" in v.line
    v = judge_pgbouncer(release=good, after=20, **common)
    assert v.kind == "not_fixed"
    # An app idle before the deploy: more per dyno than before, but within the pool it was given.
    idle = {**common, "before": 1, "dynos_before": 4, "dynos_after": 4}
    v = judge_pgbouncer(release=good, after=9, pool_per_dyno=3, **idle)
    assert v.kind == "verified"
    assert v.line == (
        "verified: 9/20 (2.2 per dyno, within the pool of 3; 0.2 before) 4 minutes after release v12"
    )
    assert judge_pgbouncer(release=good, after=9, pool_per_dyno=2, **idle).kind == "not_fixed"
    assert no_deploy("my-app", 86400).kind == "not_verified"


def test_elapsed_reads_as_people_say_it() -> None:
    assert [elapsed(s) for s in (1, 12, 60, 89, 240, 3600, 7200)] == [
        "1 second", "12 seconds", "a minute", "a minute", "4 minutes", "an hour", "2 hours",
    ]


# -- the store, on a real Redis ------------------------------------------------------------------


@pytest.fixture
async def redises(redis_server: LocalRedis) -> AsyncIterator[list[Redis]]:
    clients = [connect_redis(redis_server.url) for _ in range(4)]
    await clients[0].delete(DUE_KEY)
    yield clients
    await clients[0].delete(DUE_KEY)
    for c in clients:
        await c.aclose()


def check(app: str = "my-app", phase: str = "settle") -> PendingCheck:
    return PendingCheck(
        id=new_id(), action="killall", app=app, user="UADMIN01", channel="C1", thread_ts="1.1",
        at=1000.0, before=20, limit=20, phase=phase,
    )


async def test_a_due_check_is_taken_by_exactly_one_of_several_processes(redises: list[Redis]) -> None:
    stores = [VerificationStore(r) for r in redises]
    mine = [check() for _ in range(30)]
    for c in mine:
        await stores[0].schedule(c, due_at=1000.0)
    later = check()
    await stores[0].schedule(later, due_at=5000.0)
    taken = await asyncio.gather(*(s.take_due(2000.0, limit=100) for s in stores))
    ids = [c.id for batch in taken for c in batch]
    assert sorted(ids) == sorted(c.id for c in mine)  # each once, none twice, the later one not yet
    # Taken means leased, not gone: a process that died with it leaves it due again later.
    assert await stores[1].take_due(2000.0 + 60) == []
    again = await stores[1].take_due(2000.0 + 121, limit=100)
    assert len(again) == 30
    # Saying the verdict is claimed once too.
    claims = await asyncio.gather(*(s.claim_saying(mine[0]) for s in stores))
    assert sorted(claims) == [False, False, False, True]


async def test_a_release_makes_only_the_apps_release_checks_due(redises: list[Redis]) -> None:
    store = VerificationStore(redises[0])
    waiting, other, settling = check(phase="release"), check("std-app", "release"), check()
    for c in (waiting, other, settling):
        await store.schedule(c, due_at=9e12)
    assert await store.nudge("my-app", now=100.0) == 1
    assert [c.id for c in await store.take_due(200.0)] == [waiting.id]


async def test_results_are_kept_with_the_thread_and_the_app(redises: list[Redis]) -> None:
    store = VerificationStore(redises[0])
    c = check()
    c.thread_ts = f"{new_id()}.1"
    await store.schedule(c, due_at=1.0)
    result = VerificationResult(
        id=c.id, action=c.action, app=c.app, user=c.user, channel=c.channel, thread_ts=c.thread_ts,
        acted_at=c.at, checked_at=c.at + 60, before=20, after=3, limit=20, verdict="verified",
        line="verified: 20/20 → 3/20 a minute after *Kill all*",
    )
    await store.finish(c, result)
    assert await store.for_thread("C1", c.thread_ts) == [result]
    assert (await store.for_app("my-app"))[-1] == result
    assert await store.take_due(2.0) == []  # finished: no longer pending
