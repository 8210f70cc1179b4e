"""The post-mortem's picture: connections over the incident, stacked by holder. Pure.

`holders_chart(samples, limit, ...)` returns PNG bytes: one filled band per holder (the
biggest at the bottom, at most MAX_SERIES and then "other"), a dashed line at the limit, a
vertical mark at each action, times along the bottom (UTC) and a legend. Each sample holds
until the next one (a step chart: pgconn counts at moments, and nothing is known in between).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.postmortem.png import GLYPH_H, Canvas, Colour

WIDTH, HEIGHT = 900, 420
MAX_SERIES = 7
OTHER = "other"
# A sample taken when pgconn could not even connect: every slot of the role, holders unknown.
ROLE_FULL = "unreadable (role full)"
# Okabe & Ito's colour-blind-safe palette; "other" is grey.
PALETTE: tuple[Colour, ...] = (
    (0, 114, 178),
    (230, 159, 0),
    (0, 158, 115),
    (204, 121, 167),
    (86, 180, 233),
    (213, 94, 0),
    (240, 228, 66),
)
OTHER_COLOUR: Colour = (160, 160, 160)
INK: Colour = (40, 40, 40)
GRID: Colour = (225, 225, 225)
LIMIT_COLOUR: Colour = (200, 0, 0)
MARK_COLOUR: Colour = (90, 90, 90)
LEFT, RIGHT, TOP, BOTTOM = 48, 210, 40, 44


@dataclass(frozen=True)
class HolderSample:
    """Connections per holder (application_name) at one moment."""

    at: float
    counts: Mapping[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class Layout:
    """Where things landed (tests read pixels through it)."""

    left: int
    top: int
    right: int
    bottom: int
    y_max: int
    t0: float
    t1: float
    series: tuple[str, ...]
    colours: tuple[Colour, ...]

    def y(self, connections: float) -> int:
        return self.bottom - round(connections * (self.bottom - self.top) / self.y_max)

    def x(self, at: float) -> int:
        span = self.t1 - self.t0
        if span <= 0:
            return self.left
        return self.left + round((at - self.t0) * (self.right - self.left) / span)


def series_order(samples: Sequence[HolderSample], max_series: int = MAX_SERIES) -> tuple[list[str], set[str]]:
    """Holders to draw, biggest (by peak, then by total) first, and the ones folded into "other"."""
    peak: dict[str, int] = {}
    total: dict[str, int] = {}
    for s in samples:
        for name, n in s.counts.items():
            peak[name] = max(peak.get(name, 0), n)
            total[name] = total.get(name, 0) + n
    ranked = sorted(peak, key=lambda n: (-peak[n], -total[n], n))
    if len(ranked) <= max_series:
        return ranked, set()
    return [*ranked[: max_series - 1], OTHER], set(ranked[max_series - 1 :])


def _nice_step(top: int) -> int:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000):
        if top / step <= 6:
            return step
    return 1000 * (top // 6000 + 1)


def layout(
    samples: Sequence[HolderSample],
    limit: int | None,
    *,
    end: float | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Layout:
    names, _ = series_order(samples)
    peak = max((s.total for s in samples), default=0)
    top = max(peak, limit or 0, 1)
    step = _nice_step(top)
    y_max = (top // step + 1) * step  # room above the limit or the peak for its label
    t0 = samples[0].at if samples else 0.0
    t1 = max(end or 0.0, samples[-1].at if samples else 0.0)
    colours = tuple(OTHER_COLOUR if n == OTHER else PALETTE[i % len(PALETTE)] for i, n in enumerate(names))
    return Layout(LEFT, TOP, width - RIGHT, height - BOTTOM, y_max, t0, t1, tuple(names), colours)


def holders_chart(
    samples: Sequence[HolderSample],
    limit: int | None,
    *,
    title: str = "Connections by holder",
    marks: Sequence[tuple[float, str]] = (),
    end: float | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> bytes:
    """PNG bytes of the stacked chart. `samples` oldest first; `end` extends the last one."""
    samples = sorted(samples, key=lambda s: s.at)
    lay = layout(samples, limit, end=end, width=width, height=height)
    canvas = Canvas(width, height)
    canvas.text(lay.left, 12, title[:60], INK, scale=2)
    step = _nice_step(lay.y_max - 1)
    for v in range(0, lay.y_max + 1, step):
        y = lay.y(v)
        canvas.fill(lay.left, y, lay.right, y + 1, GRID)
        label = str(v)
        canvas.text(lay.left - 6 - Canvas.text_width(label), y - GLYPH_H // 2, label, INK)
    if not samples:
        canvas.text(lay.left + 20, (lay.top + lay.bottom) // 2, "no samples were recorded", INK, scale=2)
    else:
        _bands(canvas, lay, samples)
    if limit:
        y = lay.y(limit)
        for x in range(lay.left, lay.right, 8):
            canvas.fill(x, y - 1, min(x + 5, lay.right), y + 1, LIMIT_COLOUR)
        label = f"limit {limit}"
        canvas.text(lay.right - Canvas.text_width(label) - 2, y - GLYPH_H - 4, label, LIMIT_COLOUR)
    for i, (at, label) in enumerate(marks):
        x = lay.x(min(max(at, lay.t0), lay.t1))
        for y in range(lay.top, lay.bottom, 6):
            canvas.fill(x, y, x + 2, min(y + 3, lay.bottom), MARK_COLOUR)
        canvas.text(x + 4, lay.top + 2 + (i % 3) * (GLYPH_H + 3), label[:24], MARK_COLOUR)
    # Axes.
    canvas.fill(lay.left - 1, lay.top, lay.left, lay.bottom + 1, INK)
    canvas.fill(lay.left - 1, lay.bottom, lay.right, lay.bottom + 1, INK)
    _times(canvas, lay)
    _legend(canvas, lay, samples)
    return canvas.png()


def _value_at(samples: Sequence[HolderSample], at: float, start: int) -> int:
    """Index of the last sample at or before `at`, searching forward from `start`."""
    i = start
    while i + 1 < len(samples) and samples[i + 1].at <= at:
        i += 1
    return i


def _bands(canvas: Canvas, lay: Layout, samples: Sequence[HolderSample]) -> None:
    _, folded = series_order(samples)
    i = 0
    span = max(1, lay.right - lay.left)
    for x in range(lay.left, lay.right):
        at = lay.t0 + (x - lay.left) * (lay.t1 - lay.t0) / span
        i = _value_at(samples, at, i)
        counts = samples[i].counts
        base = 0
        for name, colour in zip(lay.series, lay.colours, strict=True):
            n = sum(counts.get(f, 0) for f in folded) if name == OTHER else counts.get(name, 0)
            if n <= 0:
                continue
            canvas.fill(x, lay.y(base + n), x + 1, lay.y(base), colour)
            base += n


def _clock(at: float) -> str:
    return time.strftime("%H:%M", time.gmtime(at))


def _times(canvas: Canvas, lay: Layout) -> None:
    y = lay.bottom + 8
    span = lay.t1 - lay.t0
    ticks = 1 if span <= 0 else 5
    for k in range(ticks + 1 if ticks > 1 else 1):
        at = lay.t0 + span * k / ticks if ticks > 1 else lay.t0
        x = lay.x(at)
        canvas.fill(x, lay.bottom, x + 1, lay.bottom + 4, INK)
        label = _clock(at) if span >= 120 or k in (0, ticks) else f"+{round(at - lay.t0)}s"
        canvas.text(max(0, x - Canvas.text_width(label) // 2), y, label, INK)
    canvas.text(lay.left, y + GLYPH_H + 8, "UTC", INK)


def _legend(canvas: Canvas, lay: Layout, samples: Sequence[HolderSample]) -> None:
    x = lay.right + 16
    y = lay.top
    _, folded = series_order(samples)
    peaks = {n: max((s.counts.get(n, 0) for s in samples), default=0) for n in lay.series}
    if OTHER in peaks:
        peaks[OTHER] = max((sum(s.counts.get(f, 0) for f in folded) for s in samples), default=0)
    # Top of the stack first, as the bands read from top to bottom.
    for name, colour in reversed(list(zip(lay.series, lay.colours, strict=True))):
        canvas.fill(x, y, x + 12, y + 12, colour)
        label = f"{name[:16]} (peak {peaks[name]})"
        canvas.text(x + 18, y + 3, label, INK)
        y += 20
    if samples:
        peak = max(samples, key=lambda s: s.total)
        canvas.text(x, y + 10, f"peak {peak.total} at {_clock(peak.at)}", INK)
