"""The forecast's trend (pure): only real rises warn, once per rise, before the limit.

Each series is sampled every 15 s (pgconn's default count on Essential plans) against a limit of
20, and the forecast is stepped at every sample as the running bot does: a 5-minute window, a
30-minute horizon. Times are the series' own, never the wall clock.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from bot.forecast.trend import ForecastPolicy, ForecastState, fit, kendall_tau, rate_text, step, theil_sen

LIMIT = 20
EVERY_S = 15.0
POLICY = ForecastPolicy(window_s=300, horizon_s=1800)


def run(series: Callable[[float], float], minutes: float = 30) -> list[tuple[float, float, float]]:
    """(time, level, eta) of every warning while sampling `series` for `minutes`; capped at the
    limit (Postgres refuses beyond it) and at 0."""
    samples: list[tuple[float, int]] = []
    state = ForecastState()
    warnings = []
    t = 0.0
    while t <= minutes * 60:
        samples.append((t, max(0, min(LIMIT, round(series(t))))))
        samples = [s for s in samples if s[0] >= t - POLICY.window_s]
        trend = fit(samples, LIMIT, POLICY)
        state, warn = step(state, trend, LIMIT, t, POLICY)
        if warn:
            assert trend.eta_s is not None
            warnings.append((t, trend.level, trend.eta_s))
        t += EVERY_S
    return warnings


def noise(amplitude: float, seed: int) -> Callable[[float], float]:
    rng = random.Random(seed)
    cache: dict[float, float] = {}
    return lambda t: cache.setdefault(t, rng.uniform(-amplitude, amplitude))


def test_a_flat_series_never_warns() -> None:
    assert run(lambda t: 8) == []
    jitter = noise(1, seed=1)
    assert run(lambda t: 8 + jitter(t)) == []


def test_noise_never_warns() -> None:
    for seed in range(20):
        jitter = noise(4, seed)
        assert run(lambda t, j=jitter: 10 + j(t)) == [], seed  # type: ignore[misc]


def test_a_saw_tooth_pool_that_opens_and_closes_never_warns() -> None:
    # A worker pool opening 10 connections over 40 s, then closing them, every 90 s.
    def tooth(t: float) -> float:
        phase = t % 90
        return 5 + (10 * phase / 40 if phase < 40 else 0)

    assert run(tooth) == []
    # And with a slower pool (a 4-minute cycle) and noise on top.
    jitter = noise(1.5, seed=7)
    assert run(lambda t: 4 + 8 * ((t % 240) / 240) + jitter(t)) == []


def test_a_step_is_not_a_trend() -> None:
    # A pool opened at once (a deploy): the role jumped and stays; nothing keeps climbing.
    assert run(lambda t: 5 if t < 600 else 14) == []
    # Even on top of a slow creep (+0.5 a minute, 30 minutes from the limit), which puts the
    # samples in order: two flat levels explain them better than a line.
    assert run(lambda t: (4 if t < 600 else 12) + t / 120) == []


def test_a_real_rise_warns_once_before_the_limit_with_the_time_to_it() -> None:
    jitter = noise(1, seed=3)
    rising = lambda t: 4 + 2 * t / 60 + jitter(t)  # noqa: E731 - +2 a minute from 4: 20 at 8 min
    warnings = run(rising, minutes=20)
    assert len(warnings) == 1
    at, level, eta = warnings[0]
    assert at < 8 * 60  # before the first refusal
    # The estimate is the truth within a minute: the series reaches 20 at 8 minutes.
    assert abs((at + eta) - 8 * 60) < 60
    trend = fit([(t, round(rising(t))) for t in range(0, int(at) + 1, 15)], LIMIT, POLICY)
    assert rate_text(trend.per_minute) == "+2 a minute"


def test_a_rise_with_a_spike_and_a_missed_sample_still_warns_once() -> None:
    def rising(t: float) -> float:
        if 120 <= t < 135:
            return 19  # one spike (a cron job's burst)
        return 3 + 1.5 * t / 60

    warnings = run(rising, minutes=15)
    assert len(warnings) == 1 and warnings[0][0] < (20 - 3) / 1.5 * 60


def test_a_second_rise_after_the_first_has_clearly_ended_warns_again() -> None:
    # Up +2/min to 14, down to 6 and flat for 10 minutes, then up again.
    def twice(t: float) -> float:
        m = t / 60
        if m < 5:
            return 4 + 2 * m
        if m < 6:
            return 6
        if m < 16:
            return 6
        return 6 + 2 * (m - 16)

    warnings = run(twice, minutes=24)
    assert len(warnings) == 2
    assert warnings[0][0] < 5 * 60 and warnings[1][0] > 16 * 60


def test_a_pause_within_a_rise_does_not_rearm() -> None:
    # +2/min, a 2-minute pause, then +2/min again: one rise, one warning.
    def paused(t: float) -> float:
        m = t / 60
        if m < 3:
            return 2 + 2 * m
        if m < 5:
            return 8
        return 8 + 2 * (m - 5)

    assert len(run(paused, minutes=15)) == 1


def test_the_estimators_are_robust() -> None:
    line = [(float(t), 2.0 * t + 1) for t in range(10)]
    assert theil_sen(line) == (2.0, 1.0)
    spiked = line[:5] + [(5.0, 100.0)] + line[6:]
    assert math.isclose(theil_sen(spiked)[0], 2.0)
    assert kendall_tau(line) == 1.0 and kendall_tau(list(reversed(line))) == 1.0
    assert kendall_tau([(float(t), float(t % 2)) for t in range(10)]) < 0.2
