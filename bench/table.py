"""Figures: percentiles, result rows, the printed table and the JSON file."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), q in [0, 100]."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Latency:
    n: int
    p50_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float


def summary_ms(seconds: Sequence[float]) -> Latency:
    """Percentiles of durations given in seconds, in milliseconds."""
    ms = [s * 1000 for s in seconds]
    if not ms:
        return Latency(0, math.nan, math.nan, math.nan, math.nan)
    return Latency(
        n=len(ms),
        p50_ms=round(percentile(ms, 50), 2),
        p99_ms=round(percentile(ms, 99), 2),
        min_ms=round(min(ms), 2),
        max_ms=round(max(ms), 2),
    )


@dataclass
class Row:
    """One line of the table. `p50`/`p99` are latencies (ms); `value` is anything else."""

    scenario: str
    what: str
    n: int | None = None
    p50: float | None = None
    p99: float | None = None
    value: float | None = None
    unit: str = ""
    target: str = ""
    met: bool | None = None  # None: no target for this row
    note: str = ""

    def cells(self) -> list[str]:
        def num(x: float | None) -> str:
            if x is None or (isinstance(x, float) and math.isnan(x)):
                return ""
            if float(x).is_integer() and abs(x) < 1e15:
                return f"{int(x):,}"
            if abs(x) >= 1000:
                return f"{x:,.0f}"
            if abs(x) >= 100:
                return f"{x:.0f}"
            return f"{x:.1f}" if abs(x) >= 10 else f"{x:.2f}"

        met = {True: "yes", False: "NO", None: ""}[self.met]
        value = f"{num(self.value)} {self.unit}".strip() if self.value is not None else ""
        return [
            self.scenario,
            self.what,
            "" if self.n is None else str(self.n),
            num(self.p50),
            num(self.p99),
            value,
            self.target,
            met,
            self.note,
        ]


HEADERS = ["#", "measurement", "n", "p50 ms", "p99 ms", "value", "target", "target met?", "note"]


def render_table(rows: Sequence[Row]) -> str:
    cells = [HEADERS] + [r.cells() for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADERS))]
    lines = []
    for k, line in enumerate(cells):
        lines.append(" | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
        if k == 0:
            lines.append("-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def render_markdown(rows: Sequence[Row]) -> str:
    out = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r.cells()) + " |" for r in rows]
    return "\n".join(out)


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu or platform.processor(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "kernel": platform.release(),
    }


def git_revision(root: Path) -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "bot", "handlers"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return rev + ("+uncommitted changes in bot/ or handlers/" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


@dataclass
class Results:
    command: str
    mode: str
    heroku_latency_s: float
    machine: dict[str, Any]
    revision: str
    started_at: str
    seconds: float = 0.0
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    profiles: list[dict[str, Any]] = field(default_factory=list)
    not_measured: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(_clean(asdict(self)), indent=2, ensure_ascii=False) + "\n")
        tmp.replace(path)


def _clean(value: Any) -> Any:
    """JSON has no NaN: a figure that could not be measured is null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return _clean(asdict(value))
    if isinstance(value, Path):
        return str(value)
    return value
