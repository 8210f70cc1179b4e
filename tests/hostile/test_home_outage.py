"""The Home tab with Redis down (a bot and a Redis of the test's own): it still opens, lists the
apps the person may see, and says plainly that pgconn's stored numbers cannot be read; Refresh
then says it did not run rather than reading Heroku without its claim."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from bot.render.home import REFRESH_ACTION
from sandbox.servers import LocalRedis
from tests.conftest import System
from tests.harness import ADMIN, BotProcess, settled
from tests.hostile.helpers import dedicated_bot, post_report
from tests.support import blocks_text


@pytest.fixture
def own_bot(system: System, own_redis: LocalRedis) -> Iterator[BotProcess]:
    with dedicated_bot(system, redis_url=own_redis.url) as process:
        yield process


async def test_with_redis_down_the_home_tab_says_what_it_cannot_read(
    system: System, own_redis: LocalRedis, own_bot: BotProcess
) -> None:
    await post_report(system)  # my-app's numbers are kept while Redis is up
    own_redis.stop_server()
    await system.slack.open_home(ADMIN)
    view = await system.slack.wait_for(lambda: system.slack.home_view(ADMIN), timeout=20)
    text = blocks_text(view["blocks"])
    assert "pgconn's state store (Redis) is unreachable" in text
    assert "apps are listed without them" in text
    assert all(f"block_id': 'app:{a}'" in str(view["blocks"]) for a in ("my-app", "std-app", "bare-app"))
    before = len(system.heroku.requests)
    started = time.time()
    await system.slack.click_home(ADMIN, REFRESH_ACTION)
    refused = await system.slack.wait_for(
        lambda: (v := system.slack.home_view(ADMIN)) and v["published_at"] > started and v, timeout=20
    )
    assert "the refresh was not run" in blocks_text(refused["blocks"])
    await settled(own_bot)
    assert len(system.heroku.requests) == before
