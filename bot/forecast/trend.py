"""Is the role's connection count rising towards its limit, and when will it get there? Pure.

The method, and why (a warning people learn to ignore is worse than none):

- **Theil–Sen slope** over the last PGCONN_FORECAST_WINDOW seconds: the median of the slopes
  between every pair of samples. Unlike least squares, one spike (a deploy's burst, a cron job)
  or a dropped sample moves it hardly at all: it tolerates up to ~29% outliers. The level "now"
  is the Theil–Sen line at the last sample (the median intercept), not the last sample itself.
- **Fit quality: Kendall's tau** (concordant minus discordant pairs, over all pairs) of at least
  0.6: the samples must mostly go up *in order*. Noise around a flat line gives tau near 0; a
  saw-tooth (a worker pool that opens and closes) gives tau near 0 over a window holding a few of
  its teeth.
- **A minimum rise**: the median of the last third of the window above the median of the first
  third by at least max(3, 5% of the limit) connections. A slope fitted to a rise of 1 is noise.
- **A trend, not a step**: when two flat levels (the best split of the window in two, each at its
  median) explain the samples better than the line, it is a step (a pool opened at once, a
  deploy): the role jumped and will not keep climbing, so there is nothing to forecast.
- **Above the noise**: the rise at least NOISE_FACTOR times the mean absolute deviation of the
  samples from the line: a rise of 6 in samples that jump ±4 anyway is not one.
- **Enough data**: at least MIN_SAMPLES samples spanning 90% of the window. A window that holds a
  whole tooth of a saw-tooth sees it fall again; a shorter one could not tell it from a rise.
- **Hysteresis**: a warning fires once per rise. It re-arms only after the trend has clearly ended:
  the slope flat or falling (at most a quarter of the minimum slope) for half a window in a row.
  A pause in a rise does not re-arm; a second rise after a plateau warns again.

Then the estimate: (limit − level) / slope, warned about when it is within
PGCONN_FORECAST_HORIZON and the role is not at its limit already (the alert thread covers that).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from statistics import median

MIN_SAMPLES = 6
MIN_SPAN_SHARE = 0.9
MIN_TAU = 0.6
# The rise must stand this many mean absolute deviations from the line above the noise.
NOISE_FACTOR = 3.0
# The step model must beat the line by this factor to call it a step (clear cases only).
STEP_BETTER = 0.6
MAX_SAMPLES = 120  # more are thinned evenly: pairwise slopes are O(n²)


@dataclass(frozen=True)
class ForecastPolicy:
    window_s: float = 300.0
    horizon_s: float = 1800.0

    def min_rise(self, limit: int) -> float:
        return max(3.0, 0.05 * limit)

    def min_slope(self, limit: int) -> float:
        """Connections per second: the minimum rise over the window."""
        return self.min_rise(limit) / self.window_s


@dataclass(frozen=True)
class Trend:
    rising: bool
    slope_per_s: float = 0.0
    level: float = 0.0  # the fitted count at the last sample
    eta_s: float | None = None  # until the limit, when rising
    reason: str = ""  # why it is not a warning-worthy rise (logs, tests)
    at: float = 0.0  # the last sample's time

    @property
    def per_minute(self) -> float:
        return self.slope_per_s * 60


def _thin(samples: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    if len(samples) <= MAX_SAMPLES:
        return list(samples)
    step = len(samples) / MAX_SAMPLES
    return [samples[int(i * step)] for i in range(MAX_SAMPLES - 1)] + [samples[-1]]


def theil_sen(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """(slope, intercept) of the Theil–Sen line: the median pairwise slope, then the median of
    y − slope·t. Pairs at the same instant are skipped."""
    slopes = [
        (y2 - y1) / (t2 - t1)
        for i, (t1, y1) in enumerate(points)
        for t2, y2 in points[i + 1 :]
        if t2 != t1
    ]
    slope = median(slopes) if slopes else 0.0
    return slope, median(y - slope * t for t, y in points)


def kendall_tau(points: Sequence[tuple[float, float]]) -> float:
    """(concordant − discordant) / pairs: +1 strictly rising in time order, 0 no order."""
    n = len(points)
    if n < 2:
        return 0.0
    score = 0
    for i, (t1, y1) in enumerate(points):
        for t2, y2 in points[i + 1 :]:
            score += ((t2 > t1) - (t2 < t1)) * ((y2 > y1) - (y2 < y1))
    return score / (n * (n - 1) / 2)


def _absolute_error(values: Sequence[float]) -> float:
    m = median(values)
    return sum(abs(v - m) for v in values)


def step_error(ys: Sequence[float]) -> float:
    """The least error of two flat levels (each at its median) over every split in two."""
    return min(
        (_absolute_error(ys[:k]) + _absolute_error(ys[k:]) for k in range(2, len(ys) - 1)),
        default=math.inf,
    )


def fit(samples: Sequence[tuple[float, int]], limit: int | None, policy: ForecastPolicy) -> Trend:
    """The trend of `samples` ((time, connections), any order) in the window that ends at the
    last one, against `limit`."""
    if not samples or not limit:
        return Trend(False, reason="no samples" if not samples else "no limit")
    ordered = sorted(samples)
    end = ordered[-1][0]
    points = _thin([(t, float(y)) for t, y in ordered if t >= end - policy.window_s])
    if len(points) < MIN_SAMPLES or end - points[0][0] < MIN_SPAN_SHARE * policy.window_s:
        return Trend(False, reason="not enough samples yet", at=end)
    slope, intercept = theil_sen(points)
    level = intercept + slope * end
    trend = Trend(False, slope, level, None, "", end)
    ys = [y for _, y in points]
    third = max(2, len(ys) // 3)
    rise = median(ys[-third:]) - median(ys[:third])
    if slope < policy.min_slope(limit) or rise < policy.min_rise(limit):
        return replace(trend, reason=f"no rise (slope {slope * 60:+.2f}/min, rise {rise:+.1f})")
    tau = kendall_tau(points)
    if tau < MIN_TAU:
        return replace(trend, reason=f"no order in the rise (tau {tau:.2f})")
    residuals = [abs(y - (intercept + slope * t)) for t, y in points]
    if rise < NOISE_FACTOR * sum(residuals) / len(residuals):
        return replace(trend, reason=f"a rise of {rise:.1f} within the noise")
    line_error = sum(residuals)
    if step_error(ys) < STEP_BETTER * line_error:
        return replace(trend, reason="a step, not a trend")
    if level >= limit:
        return replace(trend, reason="at the limit already")
    return replace(trend, rising=True, eta_s=(limit - level) / slope)


@dataclass(frozen=True)
class ForecastState:
    """Per app and database, kept between evaluations (in Redis: bot.state.forecast)."""

    armed: bool = True
    warned_at: float | None = None
    quiet_since: float | None = None  # the trend has looked over since then (while disarmed)


def step(
    state: ForecastState, trend: Trend, limit: int | None, now: float, policy: ForecastPolicy
) -> tuple[ForecastState, bool]:
    """The next state, and whether to warn now: once per rise, re-armed when the rise is over."""
    if state.armed:
        due = trend.rising and trend.eta_s is not None and trend.eta_s <= policy.horizon_s
        if due:
            return ForecastState(armed=False, warned_at=now), True
        return state, False
    over = not trend.rising and trend.slope_per_s <= (policy.min_slope(limit) / 4 if limit else 0.0)
    if not over:
        return replace(state, quiet_since=None), False
    since = state.quiet_since if state.quiet_since is not None else now
    if now - since >= policy.window_s / 2:
        return ForecastState(), False
    return replace(state, quiet_since=since), False


def rate_text(per_minute: float) -> str:
    """"+2 a minute", "+0.5 a minute"."""
    if per_minute >= 0.95:
        return f"+{round(per_minute)} a minute"
    return f"+{per_minute:.1f} a minute"
