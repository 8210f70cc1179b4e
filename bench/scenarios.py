"""Scenarios 1, 2 and 4: Slack acknowledgements, the report against the Heroku CLI, holders.

Scenario 3, 5 and 6 (log drains, memory, two processes) are in bench.drain_scenarios.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psycopg

from bench.common import BURST, Context, SlackWatch, wait_for_count
from bench.system import ADMIN, APP, NOT_WATCHED, OPS_CHANNEL, cpu_seconds, rss_kb
from bench.table import Row, percentile, summary_ms
from bench.wire import Burster, Connection, button_click, slash_command
from bot.diagnosis import diagnose
from bot.heroku import PLATFORM_ACCEPT, SDK_ACCEPT
from bot.postgres import PostgresInspector
from emulators.heroku_cli import HerokuCli, ensure_cli
from sandbox.load import ConnectionLoad
from sandbox.process import BotProcess
from tests.support import API_KEY

ACK_TARGET_MS = 50.0
REPORT_TARGET_RATIO = 1.3
HOLDERS_TARGET_MS = 50.0
HOLDERS_CONNECTIONS = 500

RequestFactory = Callable[[], tuple[bytes, dict[str, str]]]


# -- 1. acknowledgement latency -------------------------------------------------------------


def _kinds(ctx: Context) -> dict[str, tuple[RequestFactory, str, str | None]]:
    """name → (request factory, Slack method its follow-up arrives as, channel filter)."""
    slack = ctx.system.slack
    return {
        "slash `/pgconn help`": (
            lambda: slash_command(slack, "help", user_id=ADMIN, channel_id=OPS_CHANNEL),
            "response_url",
            None,
        ),
        f"slash `/pgconn {APP}` (report after the ack)": (
            lambda: slash_command(slack, APP, user_id=ADMIN, channel_id=OPS_CHANNEL),
            "chat.postMessage",
            OPS_CHANNEL,
        ),
        "click `pgconn.killall` (app not in PGCONN_APPS)": (
            lambda: button_click(
                slack, action_id="pgconn.killall", value=NOT_WATCHED, user_id=ADMIN, channel_id=OPS_CHANNEL
            ),
            "response_url",
            None,
        ),
    }


async def _post_events(conn: Connection, request: tuple[bytes, dict[str, str]]) -> float:
    body, headers = request
    answer = await conn.request("POST", "/slack/events", headers, body)
    if answer.status != 200:
        raise RuntimeError(f"/slack/events answered {answer.status}: {answer.body[:200]!r}")
    return answer.seconds


async def ack_latency(ctx: Context, bot: BotProcess) -> None:
    """Time to the HTTP answer of /slack/events: one at a time, and bursts of 50 at once."""
    details: dict[str, Any] = {}
    # Bolt checks the token with auth.test on the first request: not part of any sample.
    warm = Connection(bot.url)
    for name, (make, method, channel) in _kinds(ctx).items():
        watch = SlackWatch(ctx.system.slack, method, channel)
        await _post_events(warm, make())
        await wait_for_count(watch, 1, 30, f"warm-up of {name}")
    await warm.close()

    burster = Burster()
    try:
        for name, (make, method, channel) in _kinds(ctx).items():
            await _ack_kind(ctx, bot, burster, details, name, make, method, channel)
    finally:
        burster.close()
    ctx.details["ack"] = details


async def _ack_kind(
    ctx: Context,
    bot: BotProcess,
    burster: Burster,
    details: dict[str, Any],
    name: str,
    make: RequestFactory,
    method: str,
    channel: str | None,
) -> None:
    plan = ctx.plan
    sequential: list[float] = []
    report_kind = method == "chat.postMessage"
    # The report kind is measured one at a time in scenario 2 as well; fewer samples here.
    count = max(5, plan.ack_sequential // 10) if report_kind else plan.ack_sequential
    conn = Connection(bot.url)
    for _ in range(count):
        watch = SlackWatch(ctx.system.slack, method, channel)
        sequential.append(await _post_events(conn, make()))
        # Let the work behind the ack finish: one request in flight means one.
        await wait_for_count(watch, 1, 30, f"follow-up of {name}")
    await conn.close()

    burst: list[float] = []
    posted: list[float] = []
    slowest: list[float] = []  # per burst, to tell one bad burst from a slow tail in every one
    sent_at: list[float] = []  # wall clock, to line bursts up with the bot's log
    rss_before_kb = rss_kb(bot.process.pid)
    for _ in range(plan.ack_bursts):
        requests = [("POST", "/slack/events", h, b) for b, h in (make() for _ in range(BURST))]
        watch = SlackWatch(ctx.system.slack, method, channel)
        started, answers = await burster.fire(bot.url, requests)
        if any(status != 200 for status, _ in answers):
            raise RuntimeError(f"/slack/events answered {sorted({s for s, _ in answers})} in a burst")
        burst += [seconds for _, seconds in answers]
        slowest.append(round(max(seconds for _, seconds in answers) * 1000, 1))
        sent_at.append(round(started, 3))
        calls = await wait_for_count(watch, BURST, 120, f"follow-ups of a burst of {name}")
        posted += [c.received_at - started for c in calls[:BURST]]
        await asyncio.sleep(0.2)

    details[name] = {
        "sequential": summary_ms(sequential),
        f"burst_{BURST}": summary_ms(burst),
        f"follow_up_after_burst_{BURST}": summary_ms(posted),
        "slowest_ack_ms_per_burst": slowest,
        "burst_sent_at": sent_at,
    }
    seq, bur = summary_ms(sequential), summary_ms(burst)
    ctx.add(Row("1", f"ack {name}, 1 in flight", seq.n, seq.p50_ms, seq.p99_ms))
    p99 = bur.p99_ms
    ctx.add(
        Row(
            "1",
            f"ack {name}, {BURST} in flight",
            bur.n,
            bur.p50_ms,
            p99,
            target=f"p99 < {ACK_TARGET_MS:.0f} ms",
            met=p99 < ACK_TARGET_MS,
            note=f"{plan.ack_bursts} bursts; slowest ack per burst: median {percentile(slowest, 50):.0f} ms, "
            f"worst {max(slowest):.0f} ms",
        )
    )
    if report_kind:
        # Memory across the bursts (tests/hostile/test_load.py asserts only that every command
        # is answered once and descriptors stay level; how much memory a burst costs is a figure).
        rss_after_kb = rss_kb(bot.process.pid)
        details[name]["rss_kb_before_after_bursts"] = [rss_before_kb, rss_after_kb]
        ctx.add(Row("1", f"bot RSS after {plan.ack_bursts} bursts of {BURST} `/pgconn {APP}` (before: "
                    f"{rss_before_kb / 1024:.1f} MB)", value=rss_after_kb / 1024, unit="MB"))
        fu = summary_ms(posted)
        ctx.add(
            Row(
                "1",
                f"report posted, {BURST} `/pgconn {APP}` at once (from the burst)",
                fu.n,
                fu.p50_ms,
                fu.p99_ms,
                note=f"{ctx.heroku_latency * 1000:.0f} ms per Heroku call",
            )
        )


# -- 2. report vs sequential Heroku calls and the Heroku CLI ---------------------------------


async def _report_once(ctx: Context, bot: BotProcess, conn: Connection) -> tuple[float, float]:
    """(ack seconds, seconds from the POST to chat.postMessage at the Slack emulator)."""
    request = slash_command(ctx.system.slack, APP, user_id=ADMIN, channel_id=OPS_CHANNEL)
    watch = SlackWatch(ctx.system.slack, "chat.postMessage", OPS_CHANNEL)
    started = time.time()
    ack = await _post_events(conn, request)
    calls = await wait_for_count(watch, 1, 30, "the report")
    return ack, calls[0].received_at - started


async def _heroku_sequence(client: httpx.AsyncClient, base: str, *, full: bool) -> float:
    """What the Heroku CLI does for pg:info, one call after another (full), or the chain alone."""
    auth = {"Authorization": f"Bearer {API_KEY}", "Accept": PLATFORM_ACCEPT}
    sdk = {**auth, "Accept": SDK_ACCEPT, "Accept-Inclusion": "addon:plan,config_vars"}
    started = time.perf_counter()
    attachments = (await client.get(f"{base}/apps/{APP}/addon-attachments", headers=sdk)).json()
    addon_id = attachments[0]["addon"]["id"]
    if full:
        (await client.get(f"{base}/apps/{APP}/config-vars", headers=auth)).raise_for_status()
        (await client.get(f"{base}/apps/{APP}/formation", headers=auth)).raise_for_status()
    (await client.get(f"{base}/client/v11/databases/{addon_id}", headers=auth)).raise_for_status()
    return time.perf_counter() - started


async def report_vs_baselines(ctx: Context, bot: BotProcess) -> None:
    plan, system = ctx.plan, ctx.system
    latency_ms = ctx.heroku_latency * 1000
    conn = Connection(bot.url)
    await _report_once(ctx, bot, conn)  # warm-up: reserved connection, Bolt's auth.test
    acks: list[float] = []
    reports: list[float] = []
    requests_per_report: list[int] = []
    cpu_before = cpu_seconds(bot.process.pid)
    for _ in range(plan.report_samples):
        before = len(system.heroku.requests)
        ack, posted = await _report_once(ctx, bot, conn)
        new = system.heroku.requests[before:]
        mine = [r for r in new if f"/apps/{APP}/" in r.path or "/client/" in r.path]
        requests_per_report.append(len(mine))
        acks.append(ack)
        reports.append(posted)
        await asyncio.sleep(0.05)
    cpu_ms = (cpu_seconds(bot.process.pid) - cpu_before) / plan.report_samples * 1000
    await conn.close()

    sequential: list[float] = []
    chain: list[float] = []
    async with httpx.AsyncClient(timeout=30) as client:
        await _heroku_sequence(client, system.heroku.url, full=True)  # warm-up: keep-alive open
        for _ in range(plan.report_samples):
            sequential.append(await _heroku_sequence(client, system.heroku.url, full=True))
            chain.append(await _heroku_sequence(client, system.heroku.url, full=False))

    rep, seq, ch = summary_ms(reports), summary_ms(sequential), summary_ms(chain)
    acked = summary_ms(acks)
    ratio_chain = rep.p50_ms / ch.p50_ms
    ctx.add(
        Row(
            "2",
            f"`/pgconn {APP}` → report at Slack (chat.postMessage received)",
            rep.n,
            rep.p50_ms,
            rep.p99_ms,
            value=ratio_chain,
            unit="× chain",
            target=f"≤ {REPORT_TARGET_RATIO}× chain (p50)",
            met=ratio_chain <= REPORT_TARGET_RATIO,
            note=f"{latency_ms:.0f} ms per Heroku call; {min(requests_per_report)} Heroku calls and "
            f"{cpu_ms:.1f} ms of bot CPU per report",
        )
    )
    ctx.add(Row("2", "longest dependent chain: attachments → pg:info (httpx)", ch.n, ch.p50_ms,
                ch.p99_ms, note=f"= 2 × {latency_ms:.0f} ms + emulator work"))
    ctx.add(
        Row(
            "2",
            "same 4 calls one after another (httpx; what the CLI does)",
            seq.n,
            seq.p50_ms,
            seq.p99_ms,
            value=seq.p50_ms / rep.p50_ms,
            unit="× the report",
            note="attachments, config-vars, formation, pg:info",
        )
    )
    ctx.details["report"] = {
        "heroku_latency_ms": latency_ms,
        "report": rep,
        "ack": acked,
        "sequential_4_calls": seq,
        "chain_2_calls": ch,
        "report_over_chain_p50": round(ratio_chain, 3),
        "report_over_2x_latency_p50": round(rep.p50_ms / (2 * latency_ms), 3) if latency_ms else None,
        "sequential_over_report_p50": round(seq.p50_ms / rep.p50_ms, 3),
        "heroku_calls_per_report": requests_per_report,
        "bot_cpu_ms_per_report": round(cpu_ms, 2),
    }
    await _cli_side_by_side(ctx, bot, report_p50_ms=rep.p50_ms)


async def _killall_by_click(ctx: Context, bot: BotProcess, conn: Connection) -> float:
    request = button_click(ctx.system.slack, action_id="pgconn.killall", value=APP, user_id=ADMIN,
                           channel_id=OPS_CHANNEL)
    watch = SlackWatch(ctx.system.slack, "chat.postMessage", OPS_CHANNEL)
    started = time.time()
    await _post_events(conn, request)
    calls = await wait_for_count(watch, 1, 30, "the kill-all result")
    text = str(calls[0].params.get("text", ""))
    if "terminated" not in text and "Kill all" not in text:
        raise RuntimeError(f"unexpected kill-all result: {text[:200]}")
    return calls[0].received_at - started


async def _cli_side_by_side(ctx: Context, bot: BotProcess, *, report_p50_ms: float) -> None:
    """`heroku pg:info` / `heroku pg:killall` (the real CLI) next to pgconn doing the same."""
    system, plan = ctx.system, ctx.plan
    load = ConnectionLoad(system.app_dsn)
    conn = Connection(bot.url)
    try:
        killed: list[float] = []
        for _ in range(plan.killall_samples):
            load.open(8, "web.1")
            killed.append(await _killall_by_click(ctx, bot, conn))
            await asyncio.sleep(0.05)
        kb = summary_ms(killed)
        ctx.add(Row("2", "pgconn kill all: click → result posted (8 connections)", kb.n, kb.p50_ms,
                    kb.p99_ms))
        ctx.details.setdefault("report", {})["pgconn_killall"] = kb

        executable, why = await asyncio.to_thread(ensure_cli)
        if executable is None:
            ctx.not_measured.append(f"Heroku CLI side by side: {why}")
            return
        cli = HerokuCli(executable, system.heroku.url, API_KEY)
        try:
            first = await asyncio.to_thread(cli.run, "pg:info", "-a", APP)  # first run: caches, notices
            if first.returncode != 0:
                ctx.not_measured.append(f"heroku pg:info failed against the emulator: {first.stderr[-200:]}")
                return
            runs: dict[str, list[float]] = {"pg:info": [], "pg:killall": []}
            calls: dict[str, list[str]] = {}
            for _ in range(plan.cli_runs):
                for command in ("pg:info", "pg:killall"):
                    if command == "pg:killall":
                        load.open(8, "web.1")
                    before = len(system.heroku.requests)
                    done = await asyncio.to_thread(cli.run, command, "-a", APP)
                    if done.returncode != 0:
                        raise RuntimeError(f"heroku {command} failed: {done.stderr[-300:]}")
                    if command == "pg:info" and not re.search(r"^Connections:\s+\d+/\d+$", done.stdout, re.M):
                        raise RuntimeError(f"heroku pg:info printed no Connections line:\n{done.stdout}")
                    runs[command].append(done.seconds)
                    # The bot keeps calling Heroku in the background (reserved connections):
                    # only the CLI's own requests count here.
                    calls[command] = [
                        f"{r.method} {r.path}"
                        for r in system.heroku.requests[before:]
                        if not r.headers.get("user-agent", "").startswith("pgconn")
                    ]
            pgconn_p50 = {"pg:info": (report_p50_ms, "pgconn's report"),
                          "pg:killall": (kb.p50_ms, "pgconn's kill all")}
            for command, seconds in runs.items():
                s = summary_ms(seconds)
                ours, whose = pgconn_p50[command]
                ctx.add(
                    Row(
                        "2",
                        f"`heroku {command} -a {APP}` (official CLI v11 → emulator)",
                        s.n,
                        s.p50_ms,
                        s.p99_ms,
                        value=s.p50_ms / ours,
                        unit=f"× {whose}",
                        note=f"{len(calls[command])} API calls; node start-up included",
                    )
                )
            ctx.details.setdefault("report", {})["heroku_cli"] = {
                c: {"latency": summary_ms(v), "api_calls": calls[c]} for c, v in runs.items()
            }
        finally:
            cli.close()
    finally:
        await conn.close()
        load.close()
        system.terminate_role()


# -- 4. holders on 500 connections -----------------------------------------------------------


def _open_crowd(dsn: str, count: int) -> list[psycopg.Connection[Any]]:
    def one(i: int) -> psycopg.Connection[Any]:
        # 25 "dynos" with 20 connections each: realistic grouping for the report.
        conn = psycopg.connect(dsn, application_name=f"web.{i % 25 + 1}", autocommit=True)
        if i % 10 == 0:
            conn.autocommit = False
            conn.execute("SELECT 1")  # idle in transaction
        return conn

    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(one, range(count)))


async def holders(ctx: Context) -> None:
    system, plan = ctx.system, ctx.plan
    crowd = await asyncio.to_thread(_open_crowd, system.crowd_dsn, HOLDERS_CONNECTIONS)
    try:
        inspector = PostgresInspector()
        try:
            assert await inspector.ensure_reserved(system.crowd_dsn)
            result = await inspector.holders(system.crowd_dsn)  # warm-up
            seen = result.server_connections
            samples: list[float] = []
            for _ in range(plan.holders_samples):
                started = time.perf_counter()
                await inspector.holders(system.crowd_dsn)
                samples.append(time.perf_counter() - started)
            # What a report reads: holders, limits and the diagnosis rows in one round trip, then the
            # pure checks. older_than_s=0 ships every session in a transaction (the worst case).
            diagnosed: list[float] = []
            backends = 0
            for _ in range(plan.holders_samples):
                started = time.perf_counter()
                activity = await inspector.activity(system.crowd_dsn, older_than_s=0.0)
                held = activity.holders
                diagnose(held, activity.backends, used=held.role_connections, limit=None, budget=None)
                diagnosed.append(time.perf_counter() - started)
                backends = len(activity.backends)
        finally:
            await inspector.close()
        cold: list[float] = []
        for _ in range(plan.holders_cold_samples):
            fresh = PostgresInspector()
            started = time.perf_counter()
            await fresh.holders(system.crowd_dsn)  # no reserved connection: connect, query, close
            cold.append(time.perf_counter() - started)
            await fresh.close()
    finally:
        for conn in crowd:
            conn.close()
    hot, c = summary_ms(samples), summary_ms(cold)
    ctx.add(
        Row(
            "4",
            f"holders() on {seen} open connections (reserved connection)",
            hot.n,
            hot.p50_ms,
            hot.p99_ms,
            target=f"< {HOLDERS_TARGET_MS:.0f} ms",
            met=hot.p99_ms < HOLDERS_TARGET_MS,
            note=f"{len(result.groups)} holder groups",
        )
    )
    d = summary_ms(diagnosed)
    ctx.add(
        Row(
            "4",
            f"activity() + diagnose() on {seen} connections (what a report reads)",
            d.n,
            d.p50_ms,
            d.p99_ms,
            target=f"< {HOLDERS_TARGET_MS:.0f} ms",
            met=d.p99_ms < HOLDERS_TARGET_MS,
            note=f"{backends} sessions shipped for the checks (older_than_s=0: every transaction)",
        )
    )
    ctx.add(Row("4", f"holders() on {seen} connections, new connection each time", c.n, c.p50_ms,
                c.p99_ms, target=f"< {HOLDERS_TARGET_MS:.0f} ms", met=c.p99_ms < HOLDERS_TARGET_MS))
    ctx.details["holders"] = {"connections": seen, "groups": len(result.groups), "reserved": hot, "cold": c,
                              "diagnosis": d, "p90_ms": round(percentile([s * 1000 for s in samples], 90), 2)}


# -- 5. cost at rest: Heroku API calls of an idle bot ----------------------------------------

HEROKU_HOURLY_LIMIT = 4500  # requests per hour per account (Heroku Platform API rate limit)


def keeper_cost(ctx: Context, apps: list[str], since: float, until: float) -> None:
    """Heroku calls per watched app per hour from a bot doing nothing but keep its reserved connections.

    `apps` must be apps nothing else asked about while the bot ran (the scenario 6 apps).
    """
    system = ctx.system
    log = [
        r for r in [*system.heroku_log, *system.heroku.requests]
        if since <= r.time <= until and r.headers.get("user-agent", "").startswith("pgconn")
    ]
    resolutions: dict[str, list[float]] = {
        app: sorted(r.time for r in log if r.path == f"/apps/{app}/addon-attachments") for app in apps
    }
    calls = sum(1 for r in log if any(r.path.startswith(f"/apps/{app}/") for app in apps))
    intervals = [b - a for times in resolutions.values() for a, b in itertools.pairwise(times)]
    passes = sum(len(t) for t in resolutions.values())
    lived = until - since
    if not intervals or not passes:
        ctx.not_measured.append(
            f"idle Heroku calls: the bot lived {lived:.0f} s, too short to see the keeper twice"
        )
        return
    per_resolution = calls / passes
    interval = percentile(intervals, 50)
    per_hour = per_resolution * 3600 / interval
    exhausted_at = HEROKU_HOURLY_LIMIT / per_hour
    ctx.add(
        Row(
            "5",
            "Heroku API calls per watched app per hour, bot idle (reserved-connection keeper)",
            len(intervals),
            value=per_hour,
            unit="calls/h",
            note=f"{per_resolution:.0f} calls every {interval:.0f} s; Heroku allows "
            f"{HEROKU_HOURLY_LIMIT:,}/h: the keeper alone uses that up at {exhausted_at:.0f} apps",
        )
    )
    ctx.details["idle_heroku_calls"] = {
        "apps": len(apps), "bot_lived_s": round(lived, 1), "seconds_between_resolutions": round(interval, 1),
        "calls_per_resolution": round(per_resolution, 2), "calls_per_app_per_hour": round(per_hour, 1),
    }
