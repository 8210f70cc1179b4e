"""Did the fix work? One line per fix, from the numbers before and after. Pure.

Each verdict is one of:
- **verified**: the connections are down and stayed down (a restart: every dyno up too; Add
  PgBouncer: the release carries the buildpack, every process starts behind it, and fewer
  connections per dyno than before);
- **climbing**: down, but climbing back since the fix (the cause is still there);
- **not fixed**: still near the limit, or the release does not carry what PgBouncer needs;
- **not verified**: pgconn could not tell (no count, no deploy in time).

Apart from "verified", each comes with the button that fits: the likely cause's (from the
diagnosis) when there is one, else the next fix up the ladder (FALLBACK).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from bot.diagnosis import Cause, Remedy
from bot.readings import Dyno

Kind = Literal["verified", "climbing", "not_fixed", "not_verified"]

# When the fix did not hold and the diagnosis names no cause: the next fix up the ladder.
# Idle connections killed but the role still full: kill all; connections that come back after a
# kill: the app opens them (a leak a restart clears, or a formation a pool must absorb).
FALLBACK: dict[str, Remedy | None] = {
    "kill_idle": "killall",
    "killall": "restart",
    "restart": "add_pgbouncer",
    "add_pgbouncer": None,
}
PGBOUNCER_BUILDPACK = "heroku/pgbouncer"
PGBOUNCER_START = "bin/start-pgbouncer"


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    line: str  # mrkdwn, one line
    remedy: Remedy | None = None
    process_type: str | None = None  # a restart of one process type

    @property
    def ok(self) -> bool:
        return self.kind == "verified"


def share(used: int | None, limit: int | None) -> str:
    """"19/20", or "19" without a limit, or "?" without a count."""
    if used is None:
        return "?"
    return f"{used}/{limit}" if limit else str(used)


def elapsed(seconds: float) -> str:
    """"12 seconds", "a minute", "4 minutes", "2 hours": how long after, in words people use."""
    s = max(0.0, seconds)
    if s < 59.5:
        n = max(1, round(s))
        return f"{n} second{'s' if n != 1 else ''}"
    if s < 90:
        return "a minute"
    if s < 59.5 * 60:
        return f"{round(s / 60)} minutes"
    hours = round(s / 3600)
    return "an hour" if hours == 1 else f"{hours} hours"


def climb_threshold(limit: int | None) -> int:
    """Connections gained since right after the fix that count as climbing back: a tenth of the
    limit, at least 3 (a dyno or two reconnecting a pooled connection is not a trend)."""
    return max(3, math.ceil(0.1 * limit)) if limit else 3


def _near_limit(used: int | None, limit: int | None, warn_share: float) -> bool:
    return used is not None and bool(limit) and used >= warn_share * (limit or 0)


def _remedy(action: str, cause: Cause | None) -> tuple[Remedy | None, str | None]:
    if cause is not None and cause.remedy is not None:
        return cause.remedy, cause.process_type
    return FALLBACK.get(action), None


def _cause(cause: Cause | None) -> str:
    return f"; likely cause: {cause.text}" if cause is not None else ""


def judge_kill(
    *,
    action: Remedy,
    label: str,
    before: int | None,
    just_after: int | None,
    after: int | None,
    limit: int | None,
    elapsed_s: float,
    warn_share: float,
    cause: Cause | None = None,
) -> Verdict:
    """Kill idle / Kill all: the role's connections `elapsed_s` after against before, and whether
    they climb back from where the kill left them."""
    when = f"{elapsed(elapsed_s)} after *{label}*"
    if after is None:
        return Verdict("not_verified", f"not verified: pgconn could not count the connections {when}")
    climbing = just_after is not None and after - just_after >= climb_threshold(limit)
    back = f", climbing back from {just_after} right after it" if climbing else ""
    remedy, process_type = _remedy(action, cause)
    if _near_limit(after, limit, warn_share):
        return Verdict(
            "not_fixed", f"not fixed: {share(after, limit)} {when}{back}{_cause(cause)}", remedy, process_type
        )
    change = f"{share(before, limit)} → {share(after, limit)}" if before is not None else share(after, limit)
    if climbing:
        return Verdict(
            "climbing",
            f"climbing back: {change} {when}, up from {just_after} right after it: the cause is still "
            f"there{_cause(cause)}",
            remedy,
            process_type,
        )
    return Verdict("verified", f"verified: {change} {when}")


def judge_restart(
    *,
    dynos: Sequence[Dyno],
    before: int | None,
    after: int | None,
    limit: int | None,
    elapsed_s: float,
    warn_share: float,
    process_type: str | None = None,
    cause: Cause | None = None,
) -> Verdict:
    """A restart: every dyno (of the type) up, and the connections back under the limit."""
    when = f"{elapsed(elapsed_s)} after the restart"
    what = f"{process_type} dynos" if process_type else "dynos"
    up = sum(1 for d in dynos if d.state == "up")
    if not dynos or up < len(dynos):
        states = sorted({d.state for d in dynos if d.state != "up"})
        detail = f" ({', '.join(states)})" if states else ""
        return Verdict(
            "not_fixed",
            f"not fixed: {up}/{len(dynos)} {what} up{detail} {when}; connections {share(after, limit)}. "
            "Check `heroku ps` and the dynos' logs",
        )
    remedy, one_type = _remedy("restart", cause)
    if after is None:
        return Verdict(
            "not_verified", f"not verified: all {len(dynos)} {what} up {when}, but pgconn could not count "
            "the connections"
        )
    if _near_limit(after, limit, warn_share):
        return Verdict(
            "not_fixed",
            f"not fixed: all {len(dynos)} {what} up, and connections are back at {share(after, limit)} "
            f"{when}{_cause(cause)}",
            remedy,
            one_type,
        )
    change = f"{share(before, limit)} → {share(after, limit)}" if before is not None else share(after, limit)
    return Verdict("verified", f"verified: all {len(dynos)} {what} up, {change} {when}")


@dataclass(frozen=True)
class ReleaseFacts:
    """What the release that followed Add PgBouncer carries (bot.verification.checker reads it)."""

    version: int
    buildpacks: tuple[str, ...] | None  # the build's, in order; None when unknown
    # Process types with dynos that do not start through bin/start-pgbouncer.
    unwrapped: tuple[str, ...] = ()


def has_pgbouncer(buildpacks: Sequence[str]) -> bool:
    # Heroku may name it `heroku/pgbouncer` or `urn:buildpack:heroku/pgbouncer`
    # (../shared/contracts/README.md); a fork's URL carries the word too.
    return any("pgbouncer" in b.lower() for b in buildpacks)


def judge_release(release: ReleaseFacts) -> Verdict | None:
    """The release's own verdict when it cannot work, before any connection is counted."""
    v = f"release v{release.version}"
    if release.buildpacks is not None and not has_pgbouncer(release.buildpacks):
        built = ", ".join(release.buildpacks) or "none"
        return Verdict(
            "not_fixed",
            f"not fixed: {v} was built without {PGBOUNCER_BUILDPACK} (buildpacks: {built}): "
            "was the buildpack removed before the deploy?",
            "add_pgbouncer",
        )
    if release.unwrapped:
        types = ", ".join(release.unwrapped)
        return Verdict(
            "not_fixed",
            f"not fixed: {v} starts {types} without `{PGBOUNCER_START}`, so their connections go "
            f"straight to Postgres: put `{PGBOUNCER_START}` before each command in the Procfile and deploy",
        )
    return None


def per_dyno(used: int | None, dynos: int | None) -> float | None:
    if used is None or not dynos:
        return None
    return used / dynos


def judge_pgbouncer(
    *,
    release: ReleaseFacts,
    before: int | None,
    after: int | None,
    dynos_before: int | None,
    dynos_after: int | None,
    limit: int | None,
    elapsed_s: float,
    warn_share: float,
    pool_per_dyno: int | None = None,
) -> Verdict:
    """Add PgBouncer, once its release has settled: connections per dyno before and after.

    Fewer per dyno than before is verified; so is no more than the pool PgBouncer was given per
    dyno (PGBOUNCER_DEFAULT_POOL_SIZE + _RESERVE_POOL_SIZE): an app that was idle before the
    deploy, or that now runs more threads behind its pool, holds what the budget sized."""
    early = judge_release(release)
    if early is not None:
        return early
    when = f"{elapsed(elapsed_s)} after release v{release.version}"
    if after is None:
        return Verdict("not_verified", f"not verified: pgconn could not count the connections {when}")
    pb, pa = per_dyno(before, dynos_before), per_dyno(after, dynos_after)
    dyno_part = f" ({pb:.1f} → {pa:.1f} per dyno)" if pb is not None and pa is not None else ""
    change = f"{share(before, limit)} → {share(after, limit)}" if before is not None else share(after, limit)
    if _near_limit(after, limit, warn_share):
        return Verdict("not_fixed", f"not fixed: {change}{dyno_part} {when}")
    fewer = (pa < pb) if pa is not None and pb is not None else (before is not None and after < before)
    pooled = pool_per_dyno is not None and pa is not None and pa <= pool_per_dyno
    if not (fewer or pooled):
        return Verdict(
            "not_fixed",
            f"not fixed: no fewer connections per dyno, {change}{dyno_part} {when}: are the dynos "
            "connecting to PgBouncer's `DATABASE_URL`?",
        )
    if not fewer and pa is not None:
        # More than before (the app was quiet, or runs more threads now), within what was sized.
        before_part = f"; {pb:.1f} before" if pb is not None else ""
        return Verdict(
            "verified",
            f"verified: {share(after, limit)} ({pa:.1f} per dyno, within the pool of {pool_per_dyno}"
            f"{before_part}) {when}",
        )
    return Verdict("verified", f"verified: {change}{dyno_part} {when}")


def no_deploy(app: str, waited_s: float) -> Verdict:
    return Verdict(
        "not_verified",
        f"not verified: no deploy of `{app}` carried the PgBouncer buildpack within {elapsed(waited_s)} "
        "of *Add PgBouncer* (the Procfile change and a deploy are still to do)",
    )
