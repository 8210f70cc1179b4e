"""Sampling profiles of the running bot with py-spy (attached by pid, non-blocking).

`--profile` attaches py-spy to the bot for the length of each scenario and keeps, per
scenario, the collapsed stacks (bench/results/profiles/*.txt) and a summary of where the
bot's CPU went: the functions with the most samples on top of the stack (self) and on it
at all (inclusive). Idle time (waiting in the event loop's select) is not sampled.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def py_spy() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


@contextlib.contextmanager
def profiled(pid: int, out: Path | None, *, rate: int = 200) -> Iterator[None]:
    """Record the process while the block runs; no-op when out is None or py-spy is missing."""
    exe = py_spy() if out is not None else None
    if exe is None or out is None:
        yield
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [exe, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw", "--function",
         "--nonblocking", "--output", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _short(frame: str) -> str:
    """`handle (slack_bolt/app/async_app.py)` with site-packages and the repo path cut off."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "lib/python3.11/", str(Path(__file__).resolve().parent.parent) + os.sep):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{name} ({where})" if where else name


def summarize(path: Path, top: int = 15) -> dict[str, Any]:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    if not path.exists():
        return {"samples": 0, "self": [], "inclusive": []}
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        frames = [_short(f) for f in stack.split(";")]
        if frames and frames[0].startswith("process "):
            frames = frames[1:]  # py-spy's "process 123:..." pseudo-frame
        if frames and frames[0].startswith("thread "):
            frames = frames[1:]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for f in set(frames):
            inclusive[f] += count

    def share(counter: Counter[str]) -> list[dict[str, Any]]:
        if not total:
            return []
        return [{"function": f, "share": round(n / total, 3)} for f, n in counter.most_common(top)]

    ours = Counter({f: n for f, n in inclusive.items() if _is_pgconn(f)})
    return {"samples": total, "self": share(own), "inclusive": share(inclusive), "pgconn": share(ours)}


def _is_pgconn(function: str) -> bool:
    """A frame of pgconn's own code (bot/, handlers/, the ASGI app), the process's start-up excluded."""
    where = function.rpartition(" (")[2]
    return where.startswith(("bot/", "handlers/", "pgconn/asgi"))
