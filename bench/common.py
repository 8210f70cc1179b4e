"""What every scenario shares: the run plan (how many samples), the context and small waits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.system import System
from bench.table import Row
from emulators.slack import RecordedCall, SlackEmulator


@dataclass(frozen=True)
class Plan:
    """Sample counts. QUICK keeps every scenario but with fewer samples."""

    ack_sequential: int  # per request kind, one in flight
    ack_bursts: int  # bursts of BURST requests in flight at once, per kind
    report_samples: int
    cli_runs: int
    killall_samples: int
    holders_samples: int
    holders_cold_samples: int
    parser_frames: int
    drain_lines: int  # memory + single-process throughput
    storm_lines: int
    alert_incidents: int
    dual_lines: int
    dual_incidents: int
    warning_samples: int  # fresh apps scaled past their budget, one warning each


BURST = 50
LINES_PER_FRAME = 100
SENDERS = 4

DEFAULT = Plan(
    ack_sequential=200,
    ack_bursts=10,
    report_samples=20,
    cli_runs=4,
    killall_samples=5,
    holders_samples=200,
    holders_cold_samples=20,
    parser_frames=20_000,
    drain_lines=1_000_000,
    storm_lines=200_000,
    alert_incidents=20,
    dual_lines=400_000,
    dual_incidents=10,
    warning_samples=12,
)
QUICK = Plan(
    ack_sequential=40,
    ack_bursts=3,
    report_samples=6,
    cli_runs=1,
    killall_samples=2,
    holders_samples=50,
    holders_cold_samples=5,
    parser_frames=4_000,
    drain_lines=200_000,
    storm_lines=50_000,
    alert_incidents=6,
    dual_lines=100_000,
    dual_incidents=4,
    warning_samples=4,
)


@dataclass
class Context:
    system: System
    plan: Plan
    heroku_latency: float
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    not_measured: list[str] = field(default_factory=list)  # and why (e.g. no npm for the CLI)
    failures: list[str] = field(default_factory=list)  # scenarios that raised

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row


class SlackWatch:
    """Calls to the Slack emulator made after this watch was created (cheap to poll)."""

    def __init__(self, slack: SlackEmulator, method: str, channel: str | None = None) -> None:
        self.slack = slack
        self.method = method
        self.channel = channel
        with slack.lock:
            self.start = len(slack.received)

    def calls(self) -> list[RecordedCall]:
        with self.slack.lock:
            new = self.slack.received[self.start :]
        return [
            c
            for c in new
            if c.method == self.method and (self.channel is None or c.params.get("channel") == self.channel)
        ]


async def wait_until(predicate: Callable[[], Any], timeout: float, what: str, poll: float = 0.003) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(poll)


async def wait_for_count(watch: SlackWatch, count: int, timeout: float, what: str) -> list[RecordedCall]:
    result: list[RecordedCall] = await wait_until(
        lambda: (calls if len(calls := watch.calls()) >= count else None), timeout, what
    )
    return result
