"""Scenarios 3, 5 and 6: log-drain ingest, alert latency, memory, two processes on one Redis."""

from __future__ import annotations

import asyncio
import functools
import itertools
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from bench.common import LINES_PER_FRAME, SENDERS, Context, SlackWatch, wait_until
from bench.system import ALERT_CHANNEL, APP, cpu_seconds, rss_kb
from bench.table import Row, summary_ms
from bench.wire import Connection, drain_headers
from bot.detect import detect_all
from bot.drain import parse_frames
from bot.state.metrics import metrics_key
from sandbox.process import BotProcess
from tests.bot.samples import app_line, fatal_line, frame, metric_line, router_line
from tests.support import APP_ROLE, drain_credentials

PARSER_TARGET = 300_000
INGEST_TARGET = 50_000
ALERT_TARGET_MS = 500.0
RSS_TARGET_MB = 30.0
FRAME_POOL = 64


# -- frames ----------------------------------------------------------------------------------


def steady_frame(k: int, addon: str) -> bytes:
    """100 lines of a busy app: router and app output, one heroku-postgres metrics line."""
    lines = [metric_line(active=5 + k % 3, addon=addon)]
    for i in range(1, LINES_PER_FRAME):
        if i % 2:
            lines.append(router_line(f"/api/orders/{k * 100 + i}", 200, dyno=f"web.{i % 3 + 1}"))
        else:
            lines.append(app_line(
                f'method=GET path="/api/orders/{k * 100 + i}" format=json controller=OrdersController '
                f"action=show status=200 duration=14.21 view=3.02 db=6.33 request_id=7c1e{k:04d}{i:04d}",
                proc=f"web.{i % 3 + 1}",
            ))
    return frame(lines)


def storm_frame(k: int) -> bytes:
    """During an incident: one line in five is Postgres refusing a connection."""
    lines = []
    for i in range(LINES_PER_FRAME):
        if i % 5 == 0:
            lines.append(fatal_line(role=APP_ROLE, form=("rails", "psycopg3", "node-pg")[i % 3],
                                    proc=f"web.{i % 3 + 1}"))
        else:
            lines.append(router_line(f"/checkout/{k}/{i}", 503 if i % 2 else 200))
    return frame(lines)


def incident_frame(k: int, addon: str) -> bytes:
    """A normal frame whose last line is the first FATAL of an incident."""
    lines = [router_line(f"/home/{k}/{i}") for i in range(LINES_PER_FRAME - 1)]
    lines.append(fatal_line(role=APP_ROLE, form="rails"))
    return frame(lines)


# -- sending ---------------------------------------------------------------------------------


@dataclass
class Ingest:
    lines: int
    seconds: float  # first POST to the last sample in Redis
    post_latencies: list[float]
    bot_cpu_s: float

    @property
    def rate(self) -> float:
        return self.lines / self.seconds


async def pump(
    bots: list[BotProcess], app: str, frames: list[bytes], lines: int, senders_per_bot: int
) -> tuple[float, list[float]]:
    """POST frames from several senders at once until `lines` lines are sent; (seconds, latencies)."""
    total_frames = lines // LINES_PER_FRAME
    counter = itertools.count()
    latencies: list[float] = []
    path = f"/drains/heroku/{app}"

    async def sender(bot: BotProcess, offset: int) -> None:
        conn = await Connection(bot.url).open()
        try:
            while (n := next(counter)) < total_frames:
                body = frames[(n + offset) % len(frames)]
                headers = drain_headers(drain_credentials(app), LINES_PER_FRAME)
                answer = await conn.request("POST", path, headers, body)
                if answer.status != 204:
                    raise RuntimeError(f"drain answered {answer.status}: {answer.body[:200]!r}")
                latencies.append(answer.seconds)
        finally:
            await conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(sender(b, i) for b in bots for i in range(senders_per_bot)))
    return time.perf_counter() - started, latencies


async def ingest(ctx: Context, bots: list[BotProcess], lines: int, senders_per_bot: int) -> Ingest:
    """Steady drain traffic, end to end: until the last metrics sample is in Redis."""
    system = ctx.system
    addon = system.heroku.apps[APP].addon.name
    frames = [steady_frame(k, addon) for k in range(FRAME_POOL)]
    client = aioredis.Redis.from_url(system.redis_server.url)
    key = metrics_key(APP, addon)
    try:
        await client.delete(key)
        cpu_before = sum(cpu_seconds(b.process.pid) for b in bots)
        started = time.perf_counter()
        _, latencies = await pump(bots, APP, frames, lines, senders_per_bot)
        expected = lines // LINES_PER_FRAME  # one metrics line per frame
        # Samples within a request get distinct scores; two requests in the same microsecond
        # could collide, hence the 99.9 %.
        deadline = time.monotonic() + 60
        while await client.zcard(key) < expected * 0.999:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {await client.zcard(key)} of {expected} samples reached Redis")
            await asyncio.sleep(0.005)
        seconds = time.perf_counter() - started
        cpu = sum(cpu_seconds(b.process.pid) for b in bots) - cpu_before
    finally:
        await client.aclose()
    return Ingest(lines, seconds, latencies, cpu)


def alerts_for(watch: SlackWatch, app: str) -> list[Any]:
    """Alert parents are titled "APP (DATABASE) is out of database connections: …"."""
    return [c for c in watch.calls() if str(c.params.get("text", "")).startswith(f"{app} (")]


# -- 3. parser, ingest, alert latency --------------------------------------------------------


def parser_alone(ctx: Context) -> None:
    addon = ctx.system.heroku.apps[APP].addon.name
    frames = [steady_frame(k, addon) for k in range(FRAME_POOL)]
    for body in frames:  # warm-up
        parse_frames(body)
    n = ctx.plan.parser_frames
    started = time.perf_counter()
    for i in range(n):
        parse_frames(frames[i % FRAME_POOL])
    parse_s = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(n):
        detect_all(parse_frames(frames[i % FRAME_POOL]))
    both_s = time.perf_counter() - started
    rate = n * LINES_PER_FRAME / parse_s
    ctx.add(Row("3", "parser alone: bot.drain.parse_frames, 100-line frames", n * LINES_PER_FRAME,
                value=rate, unit="lines/s", target=f"≥ {PARSER_TARGET:,} lines/s", met=rate >= PARSER_TARGET))
    ctx.add(Row("3", "parse_frames + detect_all", n * LINES_PER_FRAME, value=n * LINES_PER_FRAME / both_s,
                unit="lines/s"))
    ctx.details["parser"] = {"lines_per_s": round(rate), "with_detect_lines_per_s": round(n * 100 / both_s),
                             "frame_bytes": sum(map(len, frames)) // len(frames)}


async def storm(ctx: Context, bot: BotProcess) -> None:
    """Drain throughput while an incident is on: 20 % of lines are FATAL, an alert thread opens."""
    frames = [storm_frame(k) for k in range(FRAME_POOL)]
    lines = ctx.plan.storm_lines
    cpu_before = cpu_seconds(bot.process.pid)
    seconds, latencies = await pump([bot], APP, frames, lines, SENDERS)
    cpu = cpu_seconds(bot.process.pid) - cpu_before
    lat = summary_ms(latencies)
    ctx.add(Row("3", f"drain ingest during an incident (20 % FATAL lines), {SENDERS} senders", lines,
                lat.p50_ms, lat.p99_ms, value=lines / seconds, unit="lines/s",
                target=f"≥ {INGEST_TARGET:,} lines/s", met=lines / seconds >= INGEST_TARGET,
                note=f"bot CPU {cpu / seconds:.0%}; p50/p99 per POST"))
    ctx.details["storm"] = {"lines": lines, "seconds": round(seconds, 3),
                            "lines_per_s": round(lines / seconds), "post_latency": lat,
                            "bot_cpu_share": round(cpu / seconds, 3)}


async def alert_latency(ctx: Context, bot: BotProcess, apps: list[str]) -> None:
    """FATAL line POSTed to the drain → alert thread's parent at Slack; one fresh app per incident."""
    system = ctx.system
    samples: list[float] = []
    conn = Connection(bot.url)
    try:
        for app in apps:
            addon = system.heroku.apps[app].addon.name
            body = incident_frame(len(samples), addon)
            watch = SlackWatch(system.slack, "chat.postMessage", ALERT_CHANNEL)
            started = time.time()
            answer = await conn.request("POST", f"/drains/heroku/{app}",
                                        drain_headers(drain_credentials(app), LINES_PER_FRAME), body)
            if answer.status != 204:
                raise RuntimeError(f"drain answered {answer.status}: {answer.body[:200]!r}")
            calls = await wait_until(functools.partial(alerts_for, watch, app), 30, f"the alert for {app}")
            samples.append(calls[0].received_at - started)
            # pgconn posts at most one message a second per process (Slack's rate limit).
            await asyncio.sleep(1.05)
    finally:
        await conn.close()
    s = summary_ms(samples)
    ctx.add(Row("3", "FATAL line → alert posted at Slack (new incident, cold app cache)", s.n, s.p50_ms,
                s.p99_ms, target=f"p99 < {ALERT_TARGET_MS:.0f} ms", met=s.p99_ms < ALERT_TARGET_MS,
                note=f"includes the report: {ctx.heroku_latency * 1000:.0f} ms per Heroku call"))
    ctx.details["alert_latency"] = s


# -- 5. memory, with single-process ingest ---------------------------------------------------


async def memory_and_ingest(ctx: Context, bot: BotProcess) -> None:
    """A fresh bot: RSS at start, then N drain lines (measuring ingest), RSS along the way."""
    pid = bot.process.pid
    start_kb = rss_kb(pid)
    curve: list[tuple[int, int]] = [(0, start_kb)]
    total = ctx.plan.drain_lines
    step = max(total // 10, 10_000)
    sent = 0
    runs: list[Ingest] = []
    while sent < total:
        chunk = min(step, total - sent)
        runs.append(await ingest(ctx, [bot], chunk, SENDERS))
        sent += chunk
        curve.append((sent, rss_kb(pid)))
    seconds = sum(r.seconds for r in runs)
    cpu = sum(r.bot_cpu_s for r in runs)
    latencies = [x for r in runs for x in r.post_latencies]
    lat = summary_ms(latencies)
    rate = sent / seconds
    ctx.add(Row("3", f"drain ingest end to end (POST → parse → Redis), {SENDERS} senders, 1 process", sent,
                lat.p50_ms, lat.p99_ms, value=rate, unit="lines/s",
                target=f"≥ {INGEST_TARGET:,} lines/s", met=rate >= INGEST_TARGET,
                note=f"bot CPU {cpu / seconds:.0%}; p50/p99 per 100-line POST"))
    end_kb = curve[-1][1]
    growth_mb_per_m = (end_kb - start_kb) / 1024 * 1_000_000 / sent
    ctx.add(Row("5", "bot RSS at start", value=start_kb / 1024, unit="MB"))
    ctx.add(Row("5", f"bot RSS after {sent:,} drain lines", value=end_kb / 1024, unit="MB"))
    ctx.add(Row("5", "RSS growth per million drain lines", value=growth_mb_per_m, unit="MB",
                target=f"< {RSS_TARGET_MB:.0f} MB", met=growth_mb_per_m < RSS_TARGET_MB,
                note="" if sent >= 1_000_000 else f"extrapolated from {sent:,} lines"))
    ctx.details["ingest"] = {"lines": sent, "seconds": round(seconds, 3), "lines_per_s": round(rate),
                             "post_latency": lat, "bot_cpu_share": round(cpu / seconds, 3)}
    ctx.details["memory"] = {"rss_kb_by_lines": curve, "growth_mb_per_million": round(growth_mb_per_m, 2)}


# -- 6. two processes, one Redis -------------------------------------------------------------


async def two_processes(ctx: Context, bots: list[BotProcess], apps: list[str]) -> None:
    system = ctx.system
    lines = ctx.plan.dual_lines
    run = await ingest(ctx, bots, lines, SENDERS // 2 or 1)
    lat = summary_ms(run.post_latencies)
    ctx.add(Row("6", f"drain ingest, 2 processes sharing Redis, {SENDERS // 2 or 1} senders each", lines,
                lat.p50_ms, lat.p99_ms, value=run.rate, unit="lines/s",
                target=f"≥ {2 * INGEST_TARGET:,} lines/s", met=run.rate >= 2 * INGEST_TARGET,
                note=f"both bots' CPU {run.bot_cpu_s / run.seconds:.0%} of one core"))

    # Every incident's FATAL lines reach both processes at the same moment, several times.
    watch = SlackWatch(system.slack, "chat.postMessage", ALERT_CHANNEL)
    conns = {(app, i): Connection(bots[i % 2].url) for app in apps for i in range(4)}

    async def hit(app: str, i: int) -> None:
        addon = system.heroku.apps[app].addon.name
        answer = await conns[(app, i)].request("POST", f"/drains/heroku/{app}",
                                               drain_headers(drain_credentials(app), LINES_PER_FRAME),
                                               incident_frame(i, addon))
        if answer.status != 204:
            raise RuntimeError(f"drain answered {answer.status}")

    for conn in conns.values():
        await conn.open()
    started = time.time()
    await asyncio.gather(*(hit(app, i) for app in apps for i in range(4)))

    def parents() -> list[Any]:
        return [c for c in watch.calls() if not c.params.get("thread_ts")]

    def per_app() -> dict[str, int]:
        return {a: len([c for c in alerts_for(watch, a) if not c.params.get("thread_ts")]) for a in apps}

    await wait_until(lambda: all(per_app().values()), 60, "an alert for every incident")
    last = max(c.received_at for c in parents()) - started
    await asyncio.sleep(3.0)  # anything that would post twice has had time to
    counts = per_app()
    for conn in conns.values():
        await conn.close()
    exact = all(v == 1 for v in counts.values())
    ctx.add(Row("6", f"alert threads for {len(apps)} incidents, each FATAL sent 4× across both processes",
                len(apps), value=sum(counts.values()), unit="threads", target="exactly 1 per incident",
                met=exact, note=f"all posted within {last:.1f} s (1 post/s/process pacing)"))
    ctx.details["two_processes"] = {"ingest_lines_per_s": round(run.rate), "post_latency": lat,
                                    "bots_cpu_share": round(run.bot_cpu_s / run.seconds, 3),
                                    "threads_per_incident": counts}
