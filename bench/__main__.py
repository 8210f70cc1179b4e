"""`python -m bench` (or `bench/run`): start everything, run the scenarios, print and save figures.

    bench/run                       # default: about 2 minutes on 2 CPUs
    bench/run --quick               # fewer samples: about 45 s
    bench/run --heroku-latency 0.25 --only 1,2 --profile

Figures go to stdout (a table) and bench/results/latest.json (table, details, machine).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import drain_scenarios as drain
from bench import home, prevention, scenarios
from bench.common import DEFAULT, QUICK, Context
from bench.profiling import profiled, summarize
from bench.system import (
    FAVOURED_NICE,
    ROOT,
    System,
    incident_apps,
    pin_cpus,
    running_system,
    set_affinity,
)
from bench.table import Results, git_revision, machine, render_markdown, render_table
from sandbox.process import BotProcess

RESULTS = Path(__file__).resolve().parent / "results"
SCENARIOS = {"1", "2", "3", "4", "5", "6", "7", "8"}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--heroku-latency",
        type=float,
        default=0.1,
        metavar="SECONDS",
        help="latency the Heroku emulator adds to every call (default 0.1)",
    )
    parser.add_argument("--quick", action="store_true", help="fewer samples; under 90 s")
    parser.add_argument(
        "--only",
        default="",
        metavar="1,2,…",
        help="run only these scenarios (1 ack, 2 report, 3 drain, 4 holders, 5 memory, 6 two processes, "
        "7 budget warning)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="attach py-spy to the bot during each scenario; summaries in the JSON, "
        "stacks in bench/results/profiles/",
    )
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="do not give the bot a CPU of its own (by default it gets the last CPU and "
        "everything else the others)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where to write the JSON (default: results/latest.json for a full default run, "
        "results/partial.json for --quick or --only, so the committed figures stay a full run's)",
    )
    args = parser.parse_args(argv)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    if only - SCENARIOS:
        parser.error(f"unknown scenario(s): {', '.join(sorted(only - SCENARIOS))}")
    if args.out is None:
        partial = bool(args.quick or only)
        args.out = RESULTS / ("partial.json" if partial else "latest.json")
    args.only = only or SCENARIOS
    return args


def say(message: str, started: float) -> None:
    print(f"[{time.monotonic() - started:6.1f}s] {message}", file=sys.stderr, flush=True)


async def run(args: argparse.Namespace, results: Results) -> None:
    started = time.monotonic()
    plan = QUICK if args.quick else DEFAULT
    alert_apps = incident_apps("inc", plan.alert_incidents)
    dual_apps = incident_apps("dup", plan.dual_incidents)
    warn_apps = incident_apps("warn", plan.warning_samples)
    layout = None if args.no_pin else pin_cpus()
    everything = set(os.sched_getaffinity(0)) | (layout[0] if layout else set())
    results.machine["cpu_layout"] = (
        f"bot on CPU {sorted(layout[0])}, load generator, emulators, Postgres and Redis on CPU "
        f"{sorted(layout[1])} (scenario 6: both bots on all CPUs); bot and burst client at nice "
        f"{FAVOURED_NICE} when allowed"
        if layout
        else "not pinned"
    )
    say("starting PostgreSQL, Redis, the Heroku and Slack emulators", started)
    extra_apps = alert_apps + dual_apps + warn_apps
    with running_system(heroku_latency=args.heroku_latency, extra_apps=extra_apps) as system:
        system.bot_cpus = layout[0] if layout else None
        ctx = Context(system=system, plan=plan, heroku_latency=args.heroku_latency)
        profiles_dir = RESULTS / "profiles" if args.profile else None

        async def step(
            number: str, name: str, bot: BotProcess | None, work: Callable[[], Awaitable[None]]
        ) -> None:
            if number not in args.only:
                return
            say(f"scenario {number}: {name}", started)
            out = profiles_dir / f"{number}-{name.replace(' ', '-')}.txt" if profiles_dir and bot else None
            try:
                with profiled(bot.process.pid if bot else 0, out):
                    await work()
            except Exception as exc:  # noqa: BLE001 - report it, run the rest
                traceback.print_exc()
                ctx.failures.append(f"scenario {number} {name}: {type(exc).__name__}: {exc}")
            finally:
                system.reset()
            if out is not None:
                results.profiles.append(
                    {"scenario": f"{number} {name}", "stacks": str(out.relative_to(ROOT)), **summarize(out)}
                )

        say("starting the bot (python -m bot)", started)
        bot = system.start_bot()
        bot_started = time.time()
        await step("1", "ack latency", bot, lambda: scenarios.ack_latency(ctx, bot))
        await step("2", "report", bot, lambda: scenarios.report_vs_baselines(ctx, bot))
        await step("4", "holders", None, lambda: scenarios.holders(ctx))
        await step("3", "parser", None, _sync(lambda: drain.parser_alone(ctx)))
        await step("3", "alert latency", bot, lambda: drain.alert_latency(ctx, bot, alert_apps))
        await step("7", "budget warning", bot, lambda: prevention.scale_to_warning(ctx, bot, warn_apps))
        if "5" in args.only:
            scenarios.keeper_cost(ctx, dual_apps, bot_started, time.time())
        system.stop_bot(bot)
        # A bot of its own, alone: the others' alert ticks would probe its seeded incidents.
        await step("8", "home tab", None, lambda: home.home_tab(ctx))
        if args.only & {"3", "5", "6"}:
            say("starting a fresh bot for drain ingest and memory", started)
            fresh = system.start_bot()
            wanted = args.only & {"3", "5"}
            if wanted:
                await step(
                    min(wanted), "drain ingest and memory", fresh, lambda: drain.memory_and_ingest(ctx, fresh)
                )
            await step("3", "drain during an incident", fresh, lambda: drain.storm(ctx, fresh))
            if "6" in args.only:
                say("starting a second bot on the same Redis", started)
                second = system.start_bot()
                if layout:
                    # Two processes on one CPU would measure the CPU: let both use every core.
                    for b in (fresh, second):
                        set_affinity(b.process.pid, everything)
                await step(
                    "6", "two processes", fresh, lambda: drain.two_processes(ctx, [fresh, second], dual_apps)
                )
        _check_bots_alive(system, ctx)
        results.machine["bot_niced"] = system.bot_favoured
    results.rows = sorted(ctx.rows, key=lambda r: r.scenario)
    results.details = ctx.details
    results.not_measured = ctx.not_measured
    results.failures = ctx.failures
    results.seconds = round(time.monotonic() - started, 1)


def _sync(fn: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        fn()

    return run


def _check_bots_alive(system: System, ctx: Context) -> None:
    for bot in system.bots:
        if not bot.alive():
            ctx.failures.append(f"a bot process exited during the run:\n{bot.logs()[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    command = "bench/run " + shlex.join(sys.argv[1:] if argv is None else argv)
    results = Results(
        command=command.strip(),
        mode="quick" if args.quick else "default",
        heroku_latency_s=args.heroku_latency,
        machine=machine(),
        revision=git_revision(ROOT),
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    results.machine["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    asyncio.run(run(args, results))
    results.machine["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    m = results.machine
    print(f"\npgconn benchmarks — {results.mode} run, {results.seconds:.0f} s, revision {results.revision}")
    print(
        f"machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory_gb']} GB, Python {m['python']}; "
        f"Heroku emulator latency {args.heroku_latency * 1000:.0f} ms per call"
    )
    print(
        f"CPUs: {m['cpu_layout']}; load average (1, 5, 15 min) {m['load_average_at_start']} at start, "
        f"{m['load_average_at_end']} at end (other work on the machine shows in the tails)\n"
    )
    print(render_table(results.rows))
    for line in results.not_measured:
        print(f"\nnot measured: {line}")
    for line in results.failures:
        print(f"\nFAILED: {line}")
    for profile in results.profiles:
        _print_profile(profile)
    results.details["table_markdown"] = render_markdown(results.rows)
    results.write(args.out)
    print(f"\nwritten: {args.out}")
    return 1 if results.failures else 0


def _print_profile(profile: dict[str, Any]) -> None:
    print(f"\nprofile of the bot during scenario {profile['scenario']} ({profile['samples']} samples):")
    for entry in profile["self"][:8]:
        print(f"  {entry['share']:6.1%} self       {entry['function']}")
    for entry in profile["pgconn"][:6]:
        print(f"  {entry['share']:6.1%} inclusive  {entry['function']}")


if __name__ == "__main__":
    raise SystemExit(main())
