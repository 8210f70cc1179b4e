"""`python -m bench.forecast`: how early the forecast warns, and how often it is wrong.

The forecast's own code (bot.forecast.trend: fit and step, as the running bot calls them) on
synthetic series sampled every PGCONN_FORECAST_INTERVAL (15 s) with the production window (300 s)
and horizon (1800 s): rises of several slopes with noise, from a flat start, against a limit of 20
and of 120; and half-hour runs of flat noise, saw-tooth pools and steps, which must never warn.
Simulated time, not the wall clock: the figures are the method's, the same on any machine.
Prints a Markdown table (docs/performance.md, "Forecast").
"""

from __future__ import annotations

import random
from collections.abc import Callable
from statistics import median, quantiles

from bot.forecast.trend import ForecastPolicy, ForecastState, fit, step

EVERY_S = 15.0
POLICY = ForecastPolicy(window_s=300, horizon_s=1800)
SEEDS = 200
RISE_AT_S = 600.0  # flat for 10 minutes, then the rise


def warnings(series: Callable[[float], float], limit: int, minutes: float) -> list[tuple[float, float]]:
    """(time of the warning, time the series first reached the limit) per warning."""
    samples: list[tuple[float, int]] = []
    state = ForecastState()
    out: list[float] = []
    full = float("inf")
    t = 0.0
    while t <= minutes * 60:
        value = max(0, min(limit, round(series(t))))
        if value >= limit and full == float("inf"):
            full = t
        samples = [s for s in samples if s[0] >= t - POLICY.window_s] + [(t, value)]
        state, warn = step(state, fit(samples, limit, POLICY), limit, t, POLICY)
        if warn:
            out.append(t)
        t += EVERY_S
    return [(w, full) for w in out]


def noisy(rng: random.Random, amplitude: float) -> Callable[[float], float]:
    cache: dict[float, float] = {}
    return lambda t: cache.setdefault(t, rng.uniform(-amplitude, amplitude))


def rises(limit: int, per_minute: float, base: float) -> dict[str, float]:
    to_warning, before_limit, missed, twice = [], [], 0, 0
    for seed in range(SEEDS):
        jitter = noisy(random.Random(seed), 1.0 if limit <= 40 else 3.0)

        def series(t: float, j: Callable[[float], float] = jitter) -> float:
            return base + max(0.0, t - RISE_AT_S) / 60 * per_minute + j(t)

        minutes = RISE_AT_S / 60 + (limit - base) / per_minute + 10
        found = warnings(series, limit, minutes)
        if not found or found[0][0] >= found[0][1]:
            missed += 1
            continue
        twice += len(found) > 1
        at, full = found[0]
        to_warning.append(at - RISE_AT_S)
        before_limit.append(full - at)
    p90 = quantiles(to_warning, n=10)[-1] if len(to_warning) > 1 else float("nan")
    return {
        "to_warning_p50": median(to_warning) if to_warning else float("nan"),
        "to_warning_p90": p90,
        "before_limit_p50": median(before_limit) if before_limit else float("nan"),
        "before_limit_min": min(before_limit) if before_limit else float("nan"),
        "missed": missed,
        "twice": twice,
    }


def _flat(rng: random.Random, amplitude: float) -> Callable[[float], float]:
    jitter = noisy(rng, amplitude)
    return lambda t: 10 + jitter(t)


def _tooth(rng: random.Random, period: float, opening: float, noise: float) -> Callable[[float], float]:
    """A pool opening 10 connections over `opening` seconds, closing them, every `period`."""
    jitter, phase = noisy(rng, noise), rng.uniform(0, period)

    def series(t: float) -> float:
        into = (t + phase) % period
        return 5 + (10 * into / opening if into < opening else 0) + jitter(t)

    return series


def _step(rng: random.Random) -> Callable[[float], float]:
    jitter, at = noisy(rng, 1), rng.uniform(300, 1200)
    return lambda t: (5 if t < at else 14) + jitter(t)


def false_warnings() -> dict[str, int]:
    kinds: dict[str, Callable[[random.Random], Callable[[float], float]]] = {
        "flat ±2": lambda rng: _flat(rng, 2),
        "flat ±4": lambda rng: _flat(rng, 4),
        "saw-tooth: 10 opened over 40 s every 90 s": lambda rng: _tooth(rng, 90, 40, 1),
        "saw-tooth: 10 opened over 4 min, then closed": lambda rng: _tooth(rng, 240, 239, 1.5),
        "step +9 at a random time": _step,
    }
    return {
        name: sum(bool(warnings(make(random.Random(seed)), 20, 30)) for seed in range(SEEDS))
        for name, make in kinds.items()
    }


def main() -> None:
    print(f"Forecast, {SEEDS} series each, sampled every {EVERY_S:g} s, window {POLICY.window_s:g} s, "
          f"horizon {POLICY.horizon_s:g} s\n")
    print("| rise | limit | start → warning p50 / p90 | warning → limit p50 / min | missed | warned twice |")
    print("|---|---|---|---|---|---|")
    for limit, base, slopes in ((20, 4, (0.5, 1, 2, 4)), (120, 30, (2, 5, 10))):
        for per_minute in slopes:
            r = rises(limit, per_minute, base)
            print(
                f"| +{per_minute:g} a minute from {base} | {limit} | {r['to_warning_p50'] / 60:.1f} / "
                f"{r['to_warning_p90'] / 60:.1f} min | {r['before_limit_p50'] / 60:.1f} / "
                f"{r['before_limit_min'] / 60:.1f} min | {r['missed']} | {r['twice']} |"
            )
    print("\n| half-hour series that must not warn | runs that warned |")
    print("|---|---|")
    for name, n in false_warnings().items():
        print(f"| {name} | {n} of {SEEDS} |")


if __name__ == "__main__":
    main()
