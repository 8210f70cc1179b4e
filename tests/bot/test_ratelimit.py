"""Pacing against Heroku's token pool (bot.ratelimit): pure, with a hand-moved clock."""

from __future__ import annotations

import pytest

from bot.ratelimit import PACE_BELOW, REFILL_PER_S, TokenEstimate


def test_nothing_is_held_back_before_heroku_said_anything() -> None:
    assert TokenEstimate().take(0.0, max_wait_s=5) == 0.0


def test_plenty_left_goes_at_once_and_the_refill_counts() -> None:
    est = TokenEstimate()
    est.observe(4000, now=0.0)
    assert [est.take(0.0, 5) for _ in range(10)] == [0.0] * 10
    assert est.level(0.0) == 3990
    assert est.level(60.0) == pytest.approx(3990 + 75)  # 75 a minute
    assert est.level(10_000.0) == 4500  # never above the pool


def test_below_the_pacing_level_requests_go_one_per_token_refilled() -> None:
    est = TokenEstimate()
    est.observe(PACE_BELOW - 10, now=0.0)
    waits = [est.take(0.0, 5) for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.8, 1.6, 2.4])


def test_an_empty_pool_refuses_what_would_wait_too_long_and_says_how_long() -> None:
    est = TokenEstimate()
    est.observe(0, now=0.0)
    assert est.take(0.0, 5) == pytest.approx(1 / REFILL_PER_S)  # one token's refill: worth waiting
    taken = est.level(0.0)
    while est.take(0.0, 5) is not None:
        pass
    before = est.level(0.0)
    assert est.take(0.0, 5) is None and est.level(0.0) == before  # refused: nothing taken
    assert est.wait(0.0) > 5
    # What it says is true: after that wait a token is there (at the refill rate).
    wait = est.wait(0.0)
    level = est.level(wait)
    assert level is not None and level >= 1 - 1e-9 and before is not None and taken is not None


def test_in_flight_requests_are_counted_against_what_heroku_reports() -> None:
    est = TokenEstimate()
    est.observe(10, now=0.0, in_flight=4)
    assert est.level(0.0) == 6
