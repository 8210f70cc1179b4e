"""The connection budget: what the app can open against what the plan allows. Pure.

Formation (process type, dyno count, command, dyno size) + config vars + the plan's
limit in, a `Budget` out: per process type `dynos × processes per dyno × connections
per process`, a headroom line for what the formation does not show, the verdict
(fits / tight / over) and what would fit (dynos per type, or a PgBouncer pool).

Commands are read the way the dyno would run them — `bash -c` with the config vars in
the environment — so `$WEB_CONCURRENCY`, `FOO=1 cmd`, `bundle exec`, `sh -c '…'` and
`bin/start-pgbouncer` are understood. Whatever cannot be read becomes an assumption
written on the line ("unknown command, assumed 1 connection per dyno"); nothing here
raises on odd input.

Defaults, with where they come from:
- gunicorn: `--workers` defaults to `$WEB_CONCURRENCY` else 1, `--threads` to 1,
  `--worker-connections` to 1000; `GUNICORN_CMD_ARGS` is parsed like argv and the
  command line wins over it (gunicorn/config.py and app/base.py, 23.0).
- uvicorn: `--workers` defaults to `$WEB_CONCURRENCY` else 1 (uvicorn/main.py help).
  hypercorn: `--workers` defaults to 1.
- Heroku's Python buildpack sets WEB_CONCURRENCY at dyno boot when it is not a config
  var: min(2 × cores + 1, RAM MB / 256) — 2 on Eco/Basic/Standard-1X, 4 on
  Standard-2X/Private-S/Shield-S, 5 on Performance-M, 17 on Performance-L
  (heroku-buildpack-python vendor/WEB_CONCURRENCY.sh, since March 2024).
- Heroku's Node.js buildpack sets WEB_CONCURRENCY to RAM / WEB_MEMORY (512 MB):
  1 on Standard-1X, 2 on Standard-2X, 5 on Performance-M, 28 on Performance-L
  (heroku-buildpack-nodejs profile/nodejs.sh). Only apps that cluster use it.
- The Ruby buildpack sets no WEB_CONCURRENCY (its SENSIBLE_DEFAULTS experiment is
  deprecated: heroku-buildpack-ruby#1420).
- puma: workers from `-w`, else `$WEB_CONCURRENCY`, else 0 (single mode, one process);
  max threads from `-t MIN:MAX`, else PUMA_MAX_THREADS/MAX_THREADS, else 5 on MRI
  (puma lib/puma/configuration.rb). Rails' generated config/puma.rb reads
  RAILS_MAX_THREADS, so that wins over puma's own env when set.
- Rails' Active Record pool: `?pool=` in DATABASE_URL, else DB_POOL (Heroku's
  recommended database.yml), else RAILS_MAX_THREADS, else 5 (Rails' database.yml
  template; 3 from Rails 7.2). A process opens at most one connection per thread, so
  it counts min(threads, pool).
- sidekiq: `-c`, else RAILS_MAX_THREADS, else 5 (Sidekiq 7 lib/sidekiq/config.rb and
  cli.rb; Sidekiq 6 defaulted to 10).
- unicorn: processes come from config/unicorn.rb; Heroku's guide writes
  `worker_processes Integer(ENV["WEB_CONCURRENCY"] || 3)`; single-threaded.
- celery: `-c` defaults to the CPU count (8 on Standard dynos, 2 on Performance-M,
  8 on Performance-L); prefork children hold one connection each.
- rq: one connection per worker process; `rq worker-pool -n` defaults to 2.
- node-postgres: Pool `max` defaults to 10. HikariCP: `maximumPoolSize` 10.
  SQLAlchemy: QueuePool 5 + 10 overflow = 15.
- heroku-buildpack-pgbouncer: PGBOUNCER_DEFAULT_POOL_SIZE 1, PGBOUNCER_RESERVE_POOL_SIZE
  1, PGBOUNCER_MAX_CLIENT_CONN 100 (its README and bin/gen-pgbouncer-conf.sh); the
  pool is per (user, database) pair, so per dyno for one database.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from bot.models import ProcessType

Verdict = Literal["fits", "tight", "over"]

TIGHT_SHARE = 0.8
UNKNOWN_COMMAND = "unknown command, assumed 1 connection per dyno"
_INTERNAL_FALLBACK = "pgconn could not analyse this command; assumed 1 connection per dyno"

# ---------------------------------------------------------------------------
# Plan limits
# ---------------------------------------------------------------------------


# Source: shared/contracts/README.md (from Heroku Dev Center "Choosing the Right
# Heroku Postgres Plan" and the legacy-plans page): legacy hobby/mini/basic 20;
# Essential-0 20, Essential-1 20, Essential-2 40; Standard-0 120, Standard-2 400,
# larger plans 500 (heroku/roadmap#158: "the largest plans support a maximum of 500");
# Premium, Private and Shield follow the Standard sizes. A third-party 2026 pricing
# table lists 200/500 for *-0/*-2: when pg:info gives "Connections: n/limit", callers
# should prefer that number over this table.
PGBOUNCER_MAX_PREPARED_STATEMENTS = 200


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_LEGACY_20 = _words("hobby-dev hobby-basic hobby dev mini basic essential")
_ESSENTIAL = {0: 20, 1: 20, 2: 40}
_TIERED = ("standard", "premium", "private", "shield")


def plan_connection_limit(plan: str | None) -> int | None:
    """The connection limit of a Heroku Postgres plan, or None when the plan is unknown.

    Accepts "heroku-postgresql:essential-0", "essential-0", "Essential 0" (pg:info's
    spelling), "standard-2", "hobby-dev", "mini", "premium-4", "private-2", "shield-0".
    """
    if not isinstance(plan, str):
        return None
    name = plan.strip().lower().split(":", 1)[-1].strip()
    name = re.sub(r"[\s_]+", "-", name)
    if name in _LEGACY_20:
        return 20
    m = re.fullmatch(r"(essential|standard|premium|private|shield)-(\d{1,2})", name)
    if not m:
        return None
    tier, size = m.group(1), int(m.group(2))
    if tier == "essential":
        return _ESSENTIAL.get(size)
    if size == 0:
        return 120
    if size == 2:
        return 400
    if size >= 3:
        return 500
    return None  # there is no *-1 plan in the Standard/Premium/Private/Shield tiers


# ---------------------------------------------------------------------------
# Dyno sizes
# ---------------------------------------------------------------------------

_SIZE_ALIASES = {"1x": "standard-1x", "2x": "standard-2x", "px": "performance-l"}
_SMALL = ("eco", "basic", "free", "hobby", "standard-1x")
_PYTHON_WEB_CONCURRENCY: dict[str, int] = {
    **dict.fromkeys(_SMALL, 2),
    **dict.fromkeys(("standard-2x", "private-s", "shield-s"), 4),
    **dict.fromkeys(("performance-m", "private-m", "shield-m"), 5),
    **dict.fromkeys(("performance-l", "private-l", "shield-l"), 17),
}
_NODE_WEB_CONCURRENCY: dict[str, int] = {
    **dict.fromkeys(_SMALL, 1),
    **dict.fromkeys(("standard-2x", "private-s", "shield-s"), 2),
    **dict.fromkeys(("performance-m", "private-m", "shield-m"), 5),
    **dict.fromkeys(("performance-l", "private-l", "shield-l"), 28),
}
# What `nproc` reports: Common Runtime standard dynos run on 8-core hosts (celery's
# default concurrency there is 8); Performance-M has 2 cores, Performance-L 8
# (heroku-buildpack-python WEB_CONCURRENCY.sh comments).
_CPUS: dict[str, int] = {
    **dict.fromkeys((*_SMALL, "standard-2x"), 8),
    **dict.fromkeys(("performance-m", "private-m", "shield-m"), 2),
    **dict.fromkeys(("performance-l", "private-l", "shield-l"), 8),
}
_ASSUMED_CPUS = 8


def _size_key(size: object) -> str:
    s = re.sub(r"[\s_]+", "-", str(size or "").strip().lower())
    return _SIZE_ALIASES.get(s, s)


# ---------------------------------------------------------------------------
# The result
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HeadroomItem:
    """Connections the formation does not show, kept free on purpose."""

    label: str
    connections: int


DEFAULT_HEADROOM: tuple[HeadroomItem, ...] = (
    HeadroomItem("pgconn's reserved connection", 1),
    HeadroomItem("one-off dynos (heroku run, Heroku Scheduler)", 1),
    HeadroomItem("Heroku's own tools (pg:backups, pg:diagnose, dataclips)", 1),
)


@dataclass(frozen=True)
class BudgetLine:
    """One process type: `dynos × processes_per_dyno × connections_per_process (+ extra)`."""

    process_type: str
    command: str
    dynos: int
    processes_per_dyno: int
    connections_per_process: int
    extra_per_dyno: int  # e.g. celery's embedded beat, a second server in `a & b`
    total: int
    server: str  # "gunicorn", "puma", "celery", …, "unknown"
    framework: str  # "rails", "django", "sqlalchemy", "psycopg", "node", "java", "unknown"
    explanation: str  # "6 dynos × 3 gunicorn workers × 1 thread"
    assumptions: tuple[str, ...] = ()
    behind_pgbouncer: bool = False  # the command starts with bin/start-pgbouncer
    client_per_dyno: int = 0  # what the app side asks for on one dyno (before PgBouncer)
    transient: bool = False  # the release phase: one dyno, only while deploying

    @property
    def per_dyno(self) -> int:
        return self.processes_per_dyno * self.connections_per_process + self.extra_per_dyno


@dataclass(frozen=True)
class Budget:
    lines: tuple[BudgetLine, ...]
    headroom: int  # sum of headroom_items
    headroom_items: tuple[HeadroomItem, ...]
    limit: int
    total: int  # sum of line totals + headroom
    verdict: Verdict
    share: float  # total / limit
    tight_share: float
    # Dynos each type could run at its current settings, the other types held constant.
    max_dynos: Mapping[str, int]
    # PgBouncer on every dyno (heroku/pgbouncer buildpack): server connections per dyno
    # = default pool + reserve pool. None when no pool size can fit (or nothing runs).
    pgbouncer_pool_size: int | None
    pgbouncer_reserve_pool_size: int
    pgbouncer_max_client_conn: int
    pgbouncer_total: int | None  # the total with that sizing
    frameworks: frozenset[str]
    notes: tuple[str, ...] = ()

    @property
    def app_total(self) -> int:
        return self.total - self.headroom

    @property
    def over_by(self) -> int:
        return max(0, self.total - self.limit)

    @property
    def spare(self) -> int:
        return max(0, self.limit - self.total)

    @property
    def assumptions(self) -> tuple[tuple[str, str], ...]:
        """(process type, assumption) for every line, in line order."""
        return tuple((ln.process_type, a) for ln in self.lines for a in ln.assumptions)

    @property
    def pgbouncer_config_vars(self) -> dict[str, str]:
        """The PGBOUNCER_* config vars the add-PgBouncer action should set."""
        if self.pgbouncer_pool_size is None:
            return {}
        return {
            "PGBOUNCER_DEFAULT_POOL_SIZE": str(self.pgbouncer_pool_size),
            "PGBOUNCER_RESERVE_POOL_SIZE": str(self.pgbouncer_reserve_pool_size),
            "PGBOUNCER_MAX_CLIENT_CONN": str(self.pgbouncer_max_client_conn),
            # The buildpack (v0.18, PgBouncer 1.24.1) maps this to max_prepared_statements and
            # defaults it to 0 (bin/gen-pgbouncer-conf.sh). Above 0, PgBouncer ≥ 1.21 keeps
            # protocol-level prepared statements working in transaction pooling; 200 is
            # PgBouncer's own default since 1.24 (pgbouncer NEWS, config.html#max_prepared_statements).
            "PGBOUNCER_MAX_PREPARED_STATEMENTS": str(PGBOUNCER_MAX_PREPARED_STATEMENTS),
        }


# ---------------------------------------------------------------------------
# The computation
# ---------------------------------------------------------------------------


def connection_budget(
    formation: Sequence[ProcessType],
    config_vars: Mapping[str, str],
    limit: int,
    *,
    headroom: int | Sequence[HeadroomItem] = DEFAULT_HEADROOM,
    tight_share: float = TIGHT_SHARE,
) -> Budget:
    """Compute the app's connection budget. Pure; never raises on odd commands or vars."""
    config = {k: v for k, v in dict(config_vars or {}).items() if isinstance(k, str) and isinstance(v, str)}
    items = _headroom_items(headroom)
    headroom_total = sum(i.connections for i in items)
    lines = tuple(_line(pt, config) for pt in formation)
    total = sum(ln.total for ln in lines) + headroom_total
    limit = int(limit)
    if not 0 < tight_share <= 1:
        tight_share = TIGHT_SHARE
    share = total / limit if limit > 0 else (float("inf") if total > 0 else 0.0)
    verdict: Verdict = "over" if total > limit else "tight" if share > tight_share else "fits"

    max_dynos: dict[str, int] = {}
    for ln in lines:
        if ln.transient or ln.per_dyno <= 0:
            continue
        room = limit - (total - ln.total)
        max_dynos[ln.process_type] = max(0, room // ln.per_dyno)

    pool, reserve, max_client, pgb_total, pgb_notes = _pgbouncer_sizing(lines, headroom_total, limit)
    frameworks = frozenset(ln.framework for ln in lines if ln.framework != "unknown") or frozenset(
        {"unknown"}
    )
    notes = list(pgb_notes)
    if config.get("DATABASE_CONNECTION_POOL_URL"):
        notes.append(
            "Heroku's server-side connection pooling is attached (DATABASE_CONNECTION_POOL_URL): "
            "processes that connect through it share the pooler's connections and count for less"
        )
    return Budget(
        lines=lines,
        headroom=headroom_total,
        headroom_items=items,
        limit=limit,
        total=total,
        verdict=verdict,
        share=share,
        tight_share=tight_share,
        max_dynos=max_dynos,
        pgbouncer_pool_size=pool,
        pgbouncer_reserve_pool_size=reserve,
        pgbouncer_max_client_conn=max_client,
        pgbouncer_total=pgb_total,
        frameworks=frameworks,
        notes=tuple(notes),
    )


def _headroom_items(headroom: int | Sequence[HeadroomItem]) -> tuple[HeadroomItem, ...]:
    if isinstance(headroom, int):
        n = max(0, headroom)
        if n == 3:
            return DEFAULT_HEADROOM
        return (HeadroomItem("pgconn, one-off dynos and Heroku's tools", n),) if n else ()
    return tuple(HeadroomItem(i.label, max(0, int(i.connections))) for i in headroom)


# Sized with the buildpack's default reserve pool of 1 so that setting only
# PGBOUNCER_DEFAULT_POOL_SIZE keeps the promise; the reserve drops to 0 only when
# that is the difference between fitting and not.
_PGBOUNCER_RESERVE = 1
_PGBOUNCER_MAX_CLIENT = 100


def _pgbouncer_sizing(
    lines: tuple[BudgetLine, ...], headroom: int, limit: int
) -> tuple[int | None, int, int, int | None, list[str]]:
    steady = [ln for ln in lines if not ln.transient and ln.dynos > 0]
    dynos = sum(ln.dynos for ln in steady)
    transient = sum(ln.total for ln in lines if ln.transient)
    demand = max((ln.client_per_dyno for ln in steady), default=0)
    max_client = max(_PGBOUNCER_MAX_CLIENT, demand)
    if dynos == 0:
        return None, _PGBOUNCER_RESERVE, max_client, None, []
    per_dyno = (limit - headroom - transient) // dynos
    reserve = _PGBOUNCER_RESERVE
    pool = min(per_dyno - reserve, max(demand, 1))
    if pool < 1:
        reserve, pool = 0, min(per_dyno, max(demand, 1))
    if pool < 1:
        return (
            None,
            0,
            max_client,
            None,
            [
                f"Even PgBouncer with 1 server connection per dyno does not fit: {dynos} dynos + "
                f"{headroom} headroom{' + the release phase' if transient else ''} is more than "
                f"{limit}. Scale down or move to a plan with more connections"
            ],
        )
    total = dynos * (pool + reserve) + transient + headroom
    return pool, reserve, max_client, total, []


def _line(pt: ProcessType, config: Mapping[str, str]) -> BudgetLine:
    ptype = str(getattr(pt, "type", "") or "?")
    command = str(getattr(pt, "command", "") or "")
    try:
        quantity = max(0, int(getattr(pt, "quantity", 0) or 0))
    except (TypeError, ValueError):
        quantity = 0
    try:
        return _read_line(ptype, command, quantity, _size_key(getattr(pt, "size", "")), config)
    except Exception:  # a safety net: a budget with an assumption beats no report at all
        return BudgetLine(
            process_type=ptype,
            command=command,
            dynos=quantity,
            processes_per_dyno=1,
            connections_per_process=1,
            extra_per_dyno=0,
            total=quantity,
            server="unknown",
            framework="unknown",
            explanation=f"{_n(quantity, 'dyno')} × 1 process × 1 connection",
            assumptions=(_INTERNAL_FALLBACK,),
            client_per_dyno=1,
        )


def _read_line(ptype: str, command: str, quantity: int, size: str, config: Mapping[str, str]) -> BudgetLine:
    reader = _Reader(config, size, _language_of(command))
    parts = reader.command(command, depth=0)
    main = max(parts, key=lambda p: p.per_dyno)
    others = [p for p in parts if p is not main]
    extra = main.extra + sum(p.per_dyno for p in others)
    extra_labels = [main.extra_label] if main.extra else []
    extra_labels += [f"{p.per_dyno} for {p.server}" for p in others]
    assumptions = [*reader.notes]
    for p in parts:
        assumptions.extend(p.notes)
    transient = ptype == "release"
    dynos = 1 if transient else quantity
    processes, per_process = main.processes, main.per_process
    client = processes * per_process + extra
    proc_noun, conn_noun, detail = main.proc_noun, main.conn_noun, main.detail

    if reader.pgbouncer:
        env = reader.env()
        pool = _env_int(env, "PGBOUNCER_DEFAULT_POOL_SIZE", 1, assumptions)
        reserve = _env_int(env, "PGBOUNCER_RESERVE_POOL_SIZE", 1, assumptions)
        max_client = _env_int(env, "PGBOUNCER_MAX_CLIENT_CONN", _PGBOUNCER_MAX_CLIENT, assumptions)
        urls = (env.configured("PGBOUNCER_URLS") or "DATABASE_URL").split()
        if len(urls) > 1:
            assumptions.append(f"PgBouncer pools {len(urls)} database URLs; counted the pool of one database")
        if client > max_client:
            assumptions.append(
                f"each dyno asks for {client} client connections but PGBOUNCER_MAX_CLIENT_CONN is "
                f"{max_client}: the rest are refused"
            )
        server_side = min(client, pool + reserve)
        detail = (
            f"PgBouncer default pool {pool} + reserve {reserve}; the app side asks for "
            f"{_n(processes, proc_noun)} × {_n(per_process, conn_noun)}"
            + (f" + {extra}" if extra else "")
            + " per dyno"
        )
        processes, per_process, extra, extra_labels = 1, server_side, 0, []
        proc_noun, conn_noun = "PgBouncer", "server connection"

    per_dyno = processes * per_process + extra
    total = dynos * per_dyno
    lead = "1 release dyno" if transient else _n(dynos, "dyno")
    explanation = f"{lead} × {_n(processes, proc_noun)} × {_n(per_process, conn_noun)}"
    if extra:
        explanation += f" + {extra} ({', '.join(extra_labels)})"
    if detail:
        explanation += f" ({detail})"
    if transient:
        assumptions.append("the release phase runs one dyno per deploy, next to the running dynos")
    elif quantity == 0:
        assumptions.append(f"scaled to 0: each dyno would open {per_dyno}")
    return BudgetLine(
        process_type=ptype,
        command=command,
        dynos=dynos,
        processes_per_dyno=processes,
        connections_per_process=per_process,
        extra_per_dyno=extra,
        total=total,
        server=main.server,
        framework=main.framework,
        explanation=explanation,
        assumptions=tuple(dict.fromkeys(assumptions)),
        behind_pgbouncer=reader.pgbouncer,
        client_per_dyno=client,
        transient=transient,
    )


# ---------------------------------------------------------------------------
# Reading commands
# ---------------------------------------------------------------------------


@dataclass
class _Part:
    """What one server in the command opens on one dyno."""

    server: str
    framework: str
    processes: int
    per_process: int
    proc_noun: str  # singular: "gunicorn worker"
    conn_noun: str  # singular: "thread"
    detail: str = ""
    extra: int = 0
    extra_label: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def per_dyno(self) -> int:
        return self.processes * self.per_process + self.extra


@dataclass(frozen=True)
class _Tok:
    value: str  # after expansion
    raw: str  # as written in the Procfile (shown in messages: never an expanded secret)

    def show(self) -> str:
        s = self.raw if "$" in self.raw else self.value
        return s if len(s) <= 40 else s[:39] + "…"


class _Env:
    """The dyno's environment: config vars, inline `FOO=1` assignments, buildpack defaults."""

    def __init__(
        self,
        config: Mapping[str, str],
        defaults: Mapping[str, tuple[str, str]],
        local: Mapping[str, str] | None = None,
    ) -> None:
        self._config = config
        self._defaults = defaults
        self.local: dict[str, str] = dict(local or {})
        self.notes: list[str] = []

    def fork(self) -> _Env:
        return _Env(self._config, self._defaults, self.local)

    def configured(self, name: str) -> str | None:
        if name in self.local:
            return self.local[name]
        return self._config.get(name)

    def get(self, name: str) -> str | None:
        value = self.configured(name)
        if value is None and name in self._defaults:
            value, why = self._defaults[name]
            if why not in self.notes:
                self.notes.append(why)
        return value


_PY_WORDS = _words(
    "gunicorn uvicorn hypercorn celery rq rqworker manage.py waitress-serve django-admin python python3 flask"
)
_NODE_WORDS = _words("node nodejs npm yarn pnpm npx pm2 pm2-runtime next nest ts-node tsx nodemon bun")


def _language_of(command: str) -> str:
    words = {w.rsplit("/", 1)[-1] for w in re.split(r"[\s'\";&|()]+", command) if w}
    if words & _PY_WORDS or any(re.fullmatch(r"python3?(\.\d+)?", w) for w in words):
        return "python"
    if words & _NODE_WORDS:
        return "node"
    return "other"


_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.DOTALL)
_VAR = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-=])(?P<default>[^}]*))?\}"
    r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))"
)
_SEQ = frozenset({";", "&&", "||", ";;"})
_TWO_WORD_LAUNCHERS = frozenset(
    {("newrelic-admin", "run-program"), ("bundle", "exec")}
    | {(tool, "run") for tool in ("poetry", "pipenv", "uv", "pdm", "hatch", "rye")}
)
_MAX_DEPTH = 4


class _Reader:
    """Reads one process type's command into parts; collects assumptions on the way."""

    def __init__(self, config: Mapping[str, str], size: str, language: str) -> None:
        self.config = config
        self.size = size
        self.language = language
        self.notes: list[str] = []
        self.pgbouncer = False
        defaults: dict[str, tuple[str, str]] = {}
        if "WEB_CONCURRENCY" not in config:
            if language == "python" and size in _PYTHON_WEB_CONCURRENCY:
                n = _PYTHON_WEB_CONCURRENCY[size]
                defaults["WEB_CONCURRENCY"] = (
                    str(n),
                    f"WEB_CONCURRENCY is not a config var: Heroku's Python buildpack sets it to "
                    f"{n} on {size} dynos",
                )
            elif language == "node" and size in _NODE_WEB_CONCURRENCY:
                n = _NODE_WEB_CONCURRENCY[size]
                defaults["WEB_CONCURRENCY"] = (
                    str(n),
                    f"WEB_CONCURRENCY is not a config var: Heroku's Node.js buildpack sets it to "
                    f"{n} on {size} dynos",
                )
        self._defaults = defaults
        self._root = _Env(config, defaults)

    def env(self) -> _Env:
        return self._root.fork()

    def default(self, name: str) -> str | None:
        """What a buildpack would set for `name` at dyno boot (not a config var)."""
        found = self._defaults.get(name)
        return found[0] if found else None

    # -- structure: `a && b; c & d | e` ------------------------------------

    def command(self, command: str, depth: int, env: _Env | None = None) -> list[_Part]:
        base = env.fork() if env is not None else self._root.fork()
        tokens = self._tokenize(command)
        groups = _split(tokens)
        parts: list[_Part] = []
        for group in groups:
            genv = base.fork()
            best: list[_Part] | None = None
            commands = 0
            for argv in group:
                if argv and argv[0] == "export":
                    for word in argv[1:]:
                        m = _ASSIGNMENT.match(word)
                        if m:
                            genv.local[m.group(1)] = self._expand_word(m.group(2), genv)
                    continue
                commands += 1
                found = self._argv(argv, genv.fork(), depth)
                if found and (best is None or _sum(found) > _sum(best)):
                    best = found
            if best is None and commands:
                best = [_unknown()]
            parts.extend(best or [])
        return parts or [_unknown()]

    def _tokenize(self, command: str) -> list[str]:
        lex = shlex.shlex(command, posix=True, punctuation_chars=True)
        lex.whitespace_split = True
        lex.commenters = ""
        try:
            tokens = list(lex)
        except ValueError:
            self.notes.append("the command has unbalanced quotes; it was read word by word")
            tokens = command.replace("'", " ").replace('"', " ").split()
        out: list[str] = []
        for t in tokens:
            if t.startswith("#"):
                break  # a shell comment runs to the end of the line
            out.append(t)
        return out

    def _expand_word(self, word: str, env: _Env) -> str:
        def sub(m: re.Match[str]) -> str:
            name = m.group("braced") or m.group("plain")
            value = env.get(name)
            op = m.group("op")
            if op is not None and (value is None or (op.startswith(":") and value == "")):
                return m.group("default") or ""
            return m.group(0) if value is None else value

        return _VAR.sub(sub, word)

    def _expand(self, words: Sequence[str], env: _Env) -> list[_Tok]:
        out: list[_Tok] = []
        for w in words:
            value = self._expand_word(w, env)
            if _VAR.fullmatch(w) and len(value.split()) > 1:
                # A bare `$OPTS` is split into words by the shell (quoting is gone by now,
                # so only a token that is nothing but a variable is split).
                out.extend(_Tok(v, w) for v in value.split())
            else:
                out.append(_Tok(value, w))
        return out

    # -- one simple command -------------------------------------------------

    def _argv(self, argv: Sequence[str], env: _Env, depth: int) -> list[_Part] | None:
        words = list(argv)
        # Leading `FOO=1` assignments apply to this command only, as in the shell.
        while words and _ASSIGNMENT.match(words[0]):
            m = _ASSIGNMENT.match(words[0])
            assert m is not None
            env.local[m.group(1)] = self._expand_word(m.group(2), env)
            words.pop(0)
        toks = self._unwrap(self._expand(words, env), env)
        if not toks:
            return None
        head = _base(toks[0].value)
        if head in ("sh", "bash", "dash", "zsh"):
            return self._shell(toks[1:], env, depth)
        reader = _SERVERS.get(head)
        if reader is None:
            if head.endswith(".py") or head in ("python", "python3"):
                part = _Part("python script", self.py_framework(env, ()), 1, 1, "process", "connection")
                part.notes.append(UNKNOWN_COMMAND)
                return [self._with_notes(part, env)]
            return None
        found = reader(self, toks[1:], env)
        if found is None:
            return None
        return [self._with_notes(found, env)]

    def _with_notes(self, part: _Part, env: _Env) -> _Part:
        part.notes = [*env.notes, *part.notes]
        return part

    def _shell(self, args: Sequence[_Tok], env: _Env, depth: int) -> list[_Part] | None:
        for i, t in enumerate(args):
            if t.value == "-c" and i + 1 < len(args):
                if depth >= _MAX_DEPTH:
                    return None
                return self.command(args[i + 1].value, depth + 1, env)
        return None

    def _unwrap(self, toks: list[_Tok], env: _Env) -> list[_Tok]:
        """Peel off launchers: bundle exec, python -m, ddtrace-run, bin/start-pgbouncer, …"""
        for _ in range(32):
            if not toks:
                return toks
            head = _base(toks[0].value)
            if _ASSIGNMENT.match(toks[0].value):
                m = _ASSIGNMENT.match(toks[0].value)
                assert m is not None
                env.local[m.group(1)] = m.group(2)
                toks = toks[1:]
            elif head in ("start-pgbouncer", "start-pgbouncer-stunnel"):
                self.pgbouncer = True
                toks = toks[1:]
            elif head in (
                "start-nginx",
                "start-nginx-solo",
                "start-nginx-debug",
                "exec",
                "nohup",
                "command",
                "time",
                "ddtrace-run",
                "dumb-init",
                "env",
                "chpst",
            ):
                toks = toks[1:]
            elif head == "tini":
                toks = toks[1:]
                if toks and toks[0].value == "--":
                    toks = toks[1:]
            elif head == "nice":
                toks = toks[1:]
                if toks and toks[0].value == "-n":
                    toks = toks[2:]
                elif toks and re.fullmatch(r"-n?-?\d+", toks[0].value):
                    toks = toks[1:]
            elif head == "opentelemetry-instrument":
                toks = toks[1:]
                while toks and toks[0].value.startswith("--"):
                    toks = toks[1:] if "=" in toks[0].value else toks[2:]
            elif len(toks) > 1 and (head, toks[1].value) in _TWO_WORD_LAUNCHERS:
                toks = toks[2:]
            elif head == "npx":
                toks = toks[1:]
                while toks and toks[0].value.startswith("-"):
                    toks = toks[1:]
            elif (
                head == "ruby"
                and len(toks) > 1
                and not toks[1].value.startswith("-")
                and _base(toks[1].value) in _SERVERS
            ):
                toks = toks[1:]
            elif re.fullmatch(r"(python3?(\.\d+)?|pypy3?)", head):
                rest = toks[1:]
                while rest and rest[0].value.startswith("-") and rest[0].value != "-m":
                    rest = rest[2:] if rest[0].value in ("-X", "-W") else rest[1:]
                if rest and rest[0].value == "-m" and len(rest) > 1:
                    toks = rest[1:]
                elif rest and not rest[0].value.startswith("-"):
                    toks = rest  # `python manage.py …`, `python worker.py`
                else:
                    return [toks[0]]
            else:
                return toks
        return toks

    # -- helpers shared by the servers ----------------------------------------

    def cpus(self, notes: list[str]) -> int:
        if self.size in _CPUS:
            return _CPUS[self.size]
        notes.append(f"CPU count of {self.size or 'this'} dynos unknown: assumed {_ASSUMED_CPUS}")
        return _ASSUMED_CPUS

    def py_framework(self, env: _Env, positionals: Iterable[_Tok]) -> str:
        if env.configured("DJANGO_SETTINGS_MODULE"):
            return "django"
        for t in positionals:
            m = re.fullmatch(r"[\w.]+\.(?:wsgi|asgi)(?::(\w+))?", t.value)
            if m and "." in t.value.split(":")[0] and m.group(1) in (None, "application"):
                return "django"
        if any(k.startswith("SQLALCHEMY_") for k in self.config):
            return "sqlalchemy"
        return "psycopg"


def _split(tokens: Sequence[str]) -> list[list[list[str]]]:
    """Concurrent groups (`&`) of sequential commands (`&&`, `||`, `;`); pipes keep their head."""
    groups: list[list[list[str]]] = [[[]]]
    in_pipe_tail = False
    skip_next = False
    for t in tokens:
        if skip_next:
            skip_next = False
            continue
        if t == "&":
            groups.append([[]])
            in_pipe_tail = False
        elif t in _SEQ:
            groups[-1].append([])
            in_pipe_tail = False
        elif t in ("|", "|&"):
            in_pipe_tail = True  # `server | logger`: the server is what connects
        elif t in ("(", ")"):
            continue
        elif t and set(t) <= set("<>&|") and ("<" in t or ">" in t):
            skip_next = True  # a redirection and its target
        elif not in_pipe_tail:
            groups[-1][-1].append(t)
    return [[argv for argv in g if argv] for g in groups if any(g)]


def _sum(parts: Sequence[_Part]) -> int:
    return sum(p.per_dyno for p in parts)


def _unknown() -> _Part:
    return _Part("unknown", "unknown", 1, 1, "process", "connection", notes=[UNKNOWN_COMMAND])


def _base(word: str) -> str:
    return word.rstrip("/").rsplit("/", 1)[-1]


def _n(count: int, noun: str) -> str:
    return f"{count} {noun if count == 1 else _plural(noun)}"


_IRREGULAR = {"process": "processes", "child": "children", "PgBouncer": "PgBouncers"}


def _plural(noun: str) -> str:
    head, _, last = noun.rpartition(" ")
    if last in _IRREGULAR:
        last = _IRREGULAR[last]
    elif last.endswith(("s", "x", "ch", "sh")):
        last += "es"
    else:
        last += "s"
    return f"{head} {last}" if head else last


def _int(value: str) -> int | None:
    v = value.strip()
    return int(v) if re.fullmatch(r"\d{1,9}", v) else None


def _env_int(env: _Env, name: str, default: int, notes: list[str]) -> int:
    raw = env.configured(name)
    if raw is None:
        return default
    n = _int(raw)
    if n is None:
        notes.append(f"{name} is not a number; used the default {default}")
        return default
    return n


def _count(tok: _Tok, what: str, notes: list[str], minimum: int = 1) -> int | None:
    n = _int(tok.value)
    if n is None or n < minimum:
        notes.append(f"could not read {what} {tok.show()!r}")
        return None
    return n


# -- option parsing -----------------------------------------------------------

_Spec = Mapping[str, tuple[str, bool]]


def _spec(
    values: Mapping[str, str | Sequence[str]], flags: Mapping[str, str | Sequence[str]] | None = None
) -> _Spec:
    """Option name -> (key, takes a value). Aliases may be one space-separated string."""
    out: dict[str, tuple[str, bool]] = {}
    for table, takes_value in ((values, True), (flags or {}, False)):
        for key, aliases in table.items():
            for a in aliases.split() if isinstance(aliases, str) else aliases:
                out[a] = (key, takes_value)
    return out


def _options(toks: Sequence[_Tok], spec: _Spec) -> tuple[dict[str, _Tok], list[_Tok]]:
    """argparse-like: `--opt=v`, `--opt v`, `-o v`, `-ov`; the last occurrence wins."""
    opts: dict[str, _Tok] = {}
    positionals: list[_Tok] = []
    i = 0
    while i < len(toks):
        tok = toks[i]
        t = tok.value
        if t == "--":
            positionals.extend(toks[i + 1 :])
            break
        if t.startswith("--"):
            name, eq, value = t.partition("=")
            raw_value = tok.raw.partition("=")[2] if "=" in tok.raw else value
            known = spec.get(name)
            if known and known[1]:
                if eq:
                    opts[known[0]] = _Tok(value, raw_value)
                elif i + 1 < len(toks):
                    opts[known[0]] = toks[i + 1]
                    i += 1
                else:
                    opts[known[0]] = _Tok("", "")
            elif known:
                opts[known[0]] = _Tok("true", "true")
        elif t.startswith("-") and len(t) > 1 and not re.fullmatch(r"-\d+", t):
            known = spec.get(t[:2])
            if known and known[1]:
                rest = t[2:].removeprefix("=")
                if rest:
                    opts[known[0]] = _Tok(rest, tok.raw[2:].removeprefix("=") or rest)
                elif i + 1 < len(toks):
                    opts[known[0]] = toks[i + 1]
                    i += 1
                else:
                    opts[known[0]] = _Tok("", "")
            elif known:
                opts[known[0]] = _Tok("true", "true")
                # a cluster such as `-Bc4`: read the rest as further short options
                for j, ch in enumerate(t[2:], start=2):
                    k = spec.get("-" + ch)
                    if not k:
                        break
                    if k[1]:
                        rest = t[j + 1 :]
                        if rest:
                            opts[k[0]] = _Tok(rest, rest)
                        elif i + 1 < len(toks):
                            opts[k[0]] = toks[i + 1]
                            i += 1
                        break
                    opts[k[0]] = _Tok("true", "true")
        else:
            positionals.append(tok)
        i += 1
    return opts, positionals


def _split_args(text: str, notes: list[str], name: str) -> list[_Tok]:
    try:
        words = shlex.split(text)
    except ValueError:
        notes.append(f"{name} has unbalanced quotes; it was read word by word")
        words = text.split()
    return [_Tok(w, w) for w in words]


# -- pools ----------------------------------------------------------------------

_PY_POOL = ("DB_POOL_SIZE", "DATABASE_POOL_SIZE", "SQLALCHEMY_POOL_SIZE", "POOL_SIZE")
_PY_OVERFLOW = ("DB_MAX_OVERFLOW", "DATABASE_MAX_OVERFLOW", "SQLALCHEMY_MAX_OVERFLOW", "MAX_OVERFLOW")
_SQLALCHEMY_DEFAULT = 15  # QueuePool(pool_size=5, max_overflow=10)
_NODE_POOL = (
    "PG_POOL_MAX",
    "DATABASE_POOL_MAX",
    "PGPOOL_MAX",
    "DB_POOL_MAX",
    "POOL_MAX",
    "KNEX_POOL_MAX",
    "DB_POOL",
    "DATABASE_POOL_SIZE",
    "PG_POOL_SIZE",
    "DB_POOL_SIZE",
)
_NODE_DEFAULT = 10  # node-postgres Pool: max 10 (Knex and TypeORM use the same default)


def _first_int(env: _Env, names: Sequence[str]) -> tuple[str, int] | None:
    for name in names:
        raw = env.configured(name)
        if raw is not None:
            n = _int(raw)
            if n is not None:
                return name, n
    return None


def _url_param(env: _Env, param: str) -> int | None:
    """A numeric query parameter of DATABASE_URL (`?pool=`, `?connection_limit=`). Never shown."""
    url = env.configured("DATABASE_URL")
    if not url:
        return None
    try:
        values = parse_qs(urlsplit(url).query).get(param)
    except ValueError:
        return None
    return _int(values[-1]) if values else None


def _python_per_process(
    env: _Env, slots: int | None, framework: str, notes: list[str], why: str
) -> tuple[int, str]:
    """Connections one Python process can hold with `slots` concurrent requests (None: async)."""
    pool = _first_int(env, _PY_POOL)
    if pool is not None:
        overflow = _first_int(env, _PY_OVERFLOW)
        cap = pool[1] + (overflow[1] if overflow else 0)
        label = f"{pool[0]}={pool[1]}" + (f" + {overflow[0]}={overflow[1]}" if overflow else "")
        if slots is None or slots > cap:
            return cap, f"capped by {label}"
        return slots, ""
    if slots is not None and why == "":
        return slots, ""
    if framework == "django":
        if slots is None:
            notes.append("Django under ASGI runs ORM calls in one thread per worker: assumed 1 connection")
            return 1, ""
        notes.append(
            f"Django opens one connection per {why}: up to {slots} per worker; PgBouncer or a pool bounds it"
        )
        return slots, ""
    cap = _SQLALCHEMY_DEFAULT if slots is None else min(slots, _SQLALCHEMY_DEFAULT)
    notes.append(
        "no pool size in the config vars (DB_POOL_SIZE…): assumed SQLAlchemy's default pool "
        f"of 5 + 10 overflow, so {cap} per process"
    )
    return cap, ""


def _rails_pool(env: _Env, notes: list[str]) -> tuple[int, str]:
    from_url = _url_param(env, "pool")
    if from_url is not None:
        return from_url, "pool from DATABASE_URL"
    for name in ("DB_POOL", "RAILS_MAX_THREADS"):
        raw = env.configured(name)
        if raw is not None:
            n = _int(raw)
            if n is not None and n > 0:
                return n, f"{name}={n}"
            notes.append(f"{name} is not a number; ignored")
    notes.append(
        "no DB_POOL or RAILS_MAX_THREADS: assumed the Active Record pool of 5 from Rails' "
        "database.yml template (3 from Rails 7.2)"
    )
    return 5, "pool 5"


# ---------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------

_GUNICORN = _spec(
    {
        "workers": ("-w", "--workers"),
        "threads": ("--threads",),
        "worker_class": ("-k", "--worker-class"),
        "worker_connections": ("--worker-connections",),
        "config": ("-c", "--config"),
        "_": (
            "-b --bind -t --timeout --graceful-timeout --keep-alive --log-level "
            "--access-logfile --error-logfile --log-file --max-requests --max-requests-jitter "
            "--chdir --pythonpath -e --env --forwarded-allow-ips --backlog -n --name "
            "--access-logformat --worker-tmp-dir --limit-request-line --limit-request-fields "
            "--limit-request-field_size --certfile --keyfile -p --pid -u --user -g --group -m "
            "--umask --log-config --statsd-host --statsd-prefix --proxy-allow-from --paste "
            "--log-syslog-prefix --log-syslog-to"
        ),
    },
    {"preload": ("--preload",)},
)


def _gunicorn(r: _Reader, args: Sequence[_Tok], env: _Env) -> _Part:
    notes: list[str] = []
    from_env: dict[str, _Tok] = {}
    cmd_args = env.configured("GUNICORN_CMD_ARGS")
    if cmd_args:
        from_env, _ = _options(_split_args(cmd_args, notes, "GUNICORN_CMD_ARGS"), _GUNICORN)
    from_cli, positionals = _options(args, _GUNICORN)
    opts = {**from_env, **from_cli}  # gunicorn: the command line wins over GUNICORN_CMD_ARGS
    framework = r.py_framework(env, positionals)
    if "config" in opts:
        notes.append(f"settings in the gunicorn config file {opts['config'].show()!r} are not visible here")

    workers: int | None = None
    if "workers" in opts:
        workers = _count(opts["workers"], "gunicorn --workers", notes)
    if workers is None:
        wc = env.get("WEB_CONCURRENCY")
        workers = _int(wc) if wc is not None else None
        if workers is None or workers < 1:
            if wc is not None:
                notes.append(
                    "WEB_CONCURRENCY is not a positive number: assumed gunicorn's default of 1 worker"
                )
            elif "workers" not in opts:
                notes.append(
                    "no --workers and no WEB_CONCURRENCY: gunicorn's default of 1 worker"
                    + (f" (no known buildpack default for {r.size} dynos)" if r.size else "")
                )
            workers = 1

    threads = 1
    if "threads" in opts:
        threads = _count(opts["threads"], "gunicorn --threads", notes) or 1
    kind = _gunicorn_class(opts["worker_class"].value if "worker_class" in opts else "sync")
    if kind == "sync" and threads > 1:
        kind = "gthread"  # gunicorn switches a sync worker with --threads > 1 to gthread

    detail = ""
    if kind == "sync":
        per, noun = 1, "thread"
    elif kind == "gthread":
        per, detail = _python_per_process(env, threads, framework, notes, "")
        noun = "thread" if not detail else "connection"
    elif kind in ("gevent", "eventlet"):
        wc_tok = opts.get("worker_connections")
        slots = (_count(wc_tok, "--worker-connections", notes) if wc_tok else None) or 1000
        per, detail = _python_per_process(env, slots, framework, notes, f"{kind} greenlet")
        noun = "connection"
    elif kind in ("asgi", "tornado"):
        per, detail = _python_per_process(env, None, framework, notes, "")
        noun = "connection"
    else:
        notes.append(
            f"unknown gunicorn worker class {opts['worker_class'].show()!r}: assumed 1 connection per worker"
        )
        per, noun = 1, "connection"
    label = "gunicorn worker" if kind in ("sync", "gthread") else f"gunicorn {kind} worker"
    return _Part("gunicorn", framework, workers, per, label, noun, detail, notes=notes)


def _gunicorn_class(name: str) -> str:
    n = name.lower()
    for kind in ("gevent", "eventlet", "tornado", "gthread"):
        if kind in n:
            return kind
    if "uvicorn" in n or "asgi" in n:
        return "asgi"
    if n in ("sync", "") or n.endswith("syncworker"):
        return "sync"
    if "threadworker" in n:
        return "gthread"
    return "custom"


_UVICORN = _spec(
    {
        "workers": ("--workers",),
        "limit": ("--limit-concurrency",),
        "_": (
            "--host --port --uds --fd --loop --http --ws --lifespan --env-file --log-config "
            "--log-level --root-path --app-dir --forwarded-allow-ips --backlog "
            "--timeout-keep-alive --ssl-keyfile --ssl-certfile --reload-dir --interface "
            "--h11-max-incomplete-event-size --limit-max-requests --timeout-graceful-shutdown "
            "--header"
        ),
    }
)


def _uvicorn(r: _Reader, args: Sequence[_Tok], env: _Env) -> _Part:
    notes: list[str] = []
    opts, positionals = _options(args, _UVICORN)
    framework = r.py_framework(env, positionals)
    workers: int | None = None
    if "workers" in opts:
        workers = _count(opts["workers"], "uvicorn --workers", notes)
    if workers is None:
        wc = env.get("WEB_CONCURRENCY")  # uvicorn's --workers defaults to $WEB_CONCURRENCY
        workers = (_int(wc) if wc is not None else None) or 1
    slots = _count(opts["limit"], "--limit-concurrency", notes) if "limit" in opts else None
    per, detail = _python_per_process(env, slots, framework, notes, "" if slots else "request")
    return _Part("uvicorn", framework, workers, per, "uvicorn worker", "connection", detail, notes=notes)


_HYPERCORN = _spec(
    {
        "workers": ("-w", "--workers"),
        "config": ("-c", "--config"),
        "_": (
            "-b --bind -k --worker-class --log-level --access-logfile --error-logfile "
            "--keep-alive --graceful-timeout --root-path --certfile --keyfile --insecure-bind "
            "--quic-bind --backlog --pid --umask"
        ),
    }
)


def _hypercorn(r: _Reader, args: Sequence[_Tok], env: _Env) -> _Part:
    notes: list[str] = []
    opts, positionals = _options(args, _HYPERCORN)
    framework = r.py_framework(env, positionals)
    if "config" in opts:
        notes.append(f"settings in the hypercorn config {opts['config'].show()!r} are not visible here")
    workers = (_count(opts["workers"], "hypercorn --workers", notes) if "workers" in opts else None) or 1
    per, detail = _python_per_process(env, None, framework, notes, "")
    return _Part("hypercorn", framework, workers, per, "hypercorn worker", "connection", detail, notes=notes)


def _waitress(r: _Reader, args: Sequence[_Tok], env: _Env) -> _Part:
    notes: list[str] = []
    opts, positionals = _options(args, _spec({"threads": ("--threads",), "_": "--port --host --listen"}))
    framework = r.py_framework(env, positionals)
    threads = (_count(opts["threads"], "waitress --threads", notes) if "threads" in opts else None) or 4
    per, detail = _python_per_process(env, threads, framework, notes, "")
    return _Part("waitress", framework, 1, per, "waitress process", "thread", detail, notes=notes)


_CELERY_GLOBAL = _spec(
    {"_": "-A --app -b --broker --result-backend --loader --config --workdir"},
    {"_f": "--quiet -q --no-color"},
)
_CELERY_WORKER = _spec(
    {
        "concurrency": ("-c", "--concurrency"),
        "pool": ("-P", "--pool"),
        "autoscale": ("--autoscale",),
        "_": (
            "-Q --queues -l --loglevel -n --hostname -O --prefetch-multiplier "
            "--max-tasks-per-child --max-memory-per-child -s --schedule -S --scheduler "
            "--time-limit --soft-time-limit -f --logfile --pidfile -X --exclude-queues -I "
            "--include --statedb -A --app -b --broker --uid --gid --umask --executable"
        ),
    },
    {
        "beat": ("-B", "--beat"),
        "_f": ("-E --task-events -D --detach --without-gossip --without-mingle --without-heartbeat"),
    },
)
_CELERY_COMMANDS = _words(
    "worker beat flower multi events shell call inspect purge status result control "
    "migrate report amqp graph list upgrade logtool"
)


def _celery(r: _Reader, args: Sequence[_Tok], env: _Env) -> _Part:
    notes: list[str] = []
    framework = "django" if env.configured("DJANGO_SETTINGS_MODULE") else r.py_framework(env, ())
    _, positionals = _options(args, {**_CELERY_GLOBAL, **_CELERY_WORKER})
    sub = next((p.value for p in positionals if p.value in _CELERY_COMMANDS), None)
    if sub is None:
        notes.append("celery without a sub-command: assumed 1 connection")
        return _Part("celery", framework, 1, 1, "celery process", "connection", notes=notes)
    if sub == "beat":
        notes.append("celery beat: counted 1 connection (a database scheduler or result backend)")
        return _Part("celery beat", framework, 1, 1, "celery beat process", "connection", notes=notes)
    if sub not in ("worker", "multi"):
        notes.append(f"celery {sub}: assumed 1 connection")
        return _Part(f"celery {sub}", framework, 1, 1, "process", "connection", notes=notes)
    if sub == "multi":
        notes.append("celery multi: the node count is not read; assumed 1 node")
    opts, _ = _options(args, _CELERY_WORKER)
    pool = opts["pool"].value.lower() if "pool" in opts else "prefork"
    concurrency: int | None = 1 if pool == "solo" else None  # solo runs one task at a time
    if concurrency is None and "autoscale" in opts:
        concurrency = _int(opts["autoscale"].value.split(",")[0])
        if concurrency is None:
            notes.append(f"could not read --autoscale {opts['autoscale'].show()!r}")
    if concurrency is None and "concurrency" in opts:
        concurrency = _count(opts["concurrency"], "celery --concurrency", notes)
    if concurrency is None:
        from_var = _first_int(env, ("CELERY_WORKER_CONCURRENCY", "CELERYD_CONCURRENCY"))
        if from_var is not None and from_var[1] > 0:
            concurrency = from_var[1]
            notes.append(f"no -c: assumed the app's Celery config reads {from_var[0]}={from_var[1]}")
        else:
            concurrency = r.cpus(notes)
            notes.append(f"no -c: celery's default is the CPU count, {concurrency}")
    beat = 1 if "beat" in opts else 0
    beat_label = "embedded beat" if beat else ""
    if beat:
        notes.append("-B: the embedded beat counted as 1 connection (a database scheduler)")
    # prefork: each child process holds its own connection; threads/gevent/eventlet:
    # one process whose every slot may hold one; solo: one task at a time.
    if pool in ("prefork", "processes"):
        processes, per, proc, noun = concurrency, 1, "celery prefork child", "connection"
    elif pool == "solo":
        processes, per, proc, noun = 1, 1, "celery solo worker", "connection"
    elif pool in ("threads", "gevent", "eventlet"):
        noun = "thread" if pool == "threads" else f"{pool} greenlet"
        processes, per, proc = 1, concurrency, f"celery {pool} worker"
    else:
        notes.append(f"unknown celery pool {opts['pool'].show()!r}: assumed one connection per slot")
        processes, per, proc, noun = 1, concurrency, "celery worker", "connection"
    return _Part(
        "celery", framework, processes, per, proc, noun, extra=beat, extra_label=beat_label, notes=notes
    )


def _rq(r: _Reader, args: Sequence[_Tok], env: _Env) -> _Part:
    notes: list[str] = []
    framework = r.py_framework(env, ())
    opts, positionals = _options(
        args,
        _spec(
            {
                "num": ("-n", "--num-workers"),
                "_": "-u --url -c --config -w --worker-class --logging_level --name",
            }
        ),
    )
    sub = positionals[0].value if positionals else ""
    if sub == "worker-pool":
        n = (_count(opts["num"], "rq worker-pool -n", notes) if "num" in opts else None) or 2
        return _Part("rq", framework, n, 1, "rq worker", "connection", notes=notes)
    if sub != "worker":
        notes.append(f"rq {sub or '(no sub-command)'}: assumed 1 connection")
    return _Part("rq", framework, 1, 1, "rq worker", "connection", notes=notes)


def _manage_py(r: _Reader, args: Sequence[_Tok], env: _Env) -> _Part:
    notes: list[str] = []
    sub = next((a.value for a in args if not a.value.startswith("-")), "")
    if sub == "rqworker":
        return _Part("rq", "django", 1, 1, "rq worker", "connection", notes=notes)
    if sub == "rqworker-pool":
        opts, _ = _options(args, _spec({"num": ("-n", "--num-workers")}))
        n = (_count(opts["num"], "rqworker-pool --num-workers", notes) if "num" in opts else None) or 2
        return _Part("rq", "django", n, 1, "rq worker", "connection", notes=notes)
    if sub == "runserver":
        notes.append("runserver is Django's development server: assumed 1 connection")
    elif sub not in ("migrate", "collectstatic", "check"):
        notes.append(f"management command {sub or '(none)'!r}: assumed 1 connection")
    return _Part(f"manage.py {sub}".strip(), "django", 1, 1, "process", "connection", notes=notes)


_PUMA = _spec(
    {
        "workers": ("-w", "--workers"),
        "threads": ("-t", "--threads"),
        "config": ("-C", "--config"),
        "_": (
            "-p --port -b --bind -e --environment -S --state --control-url --control-token -I "
            "--include --pidfile --tag --dir -R --restart-cmd --redirect-stdout "
            "--redirect-stderr"
        ),
    },
    {"_f": "-q --quiet -v --log-requests --preload -d --debug"},
)


def _puma(r: _Reader, args: Sequence[_Tok], env: _Env, server: str = "puma") -> _Part:
    notes: list[str] = []
    opts, _ = _options(args, _PUMA)
    workers: int | None = None
    if "workers" in opts:
        workers = _count(opts["workers"], "puma --workers", notes, minimum=0)
    if workers is None:
        wc = env.get("WEB_CONCURRENCY")  # puma's default workers (and Heroku's config/puma.rb)
        workers = _int(wc) if wc is not None else None
        if workers is None:
            notes.append(
                "no -w and no WEB_CONCURRENCY: assumed puma's single mode (1 process); "
                "config/puma.rb may set workers"
            )
            workers = 0
    processes = max(1, workers)  # 0 workers is single mode: the one process serves

    threads: int | None = None
    if "threads" in opts:
        threads = _int(opts["threads"].value.rsplit(":", 1)[-1])
        if threads is None or threads < 1:
            notes.append(f"could not read puma --threads {opts['threads'].show()!r}")
            threads = None
    if threads is None:
        from_env = _first_int(env, ("RAILS_MAX_THREADS", "PUMA_MAX_THREADS", "MAX_THREADS"))
        if from_env is not None and from_env[1] > 0:
            threads = from_env[1]
        else:
            threads = 5
            notes.append("no -t and no RAILS_MAX_THREADS: assumed puma's default of 5 threads")
    if "config" in opts:
        notes.append(f"settings in {opts['config'].show()!r} are not visible here")
    per, detail = _rails_per_process(env, threads, "thread", notes)
    noun = "puma worker" if workers > 0 else "puma process"
    return _Part(server, "rails", processes, per, noun, "connection", detail, notes=notes)


def _rails_per_process(env: _Env, threads: int, what: str, notes: list[str]) -> tuple[int, str]:
    pool, pool_label = _rails_pool(env, notes)
    if pool < threads:
        notes.append(f"{threads} {what}s share a pool of {pool}: the rest wait for a connection")
        return pool, f"{threads} {what}s, {pool_label}"
    return threads, f"{threads} {what}s" + (f", {pool_label}" if pool > threads else "")


def _rails(r: _Reader, args: Sequence[_Tok], env: _Env) -> _Part:
    sub = args[0].value if args else ""
    if sub in ("server", "s"):
        return _puma(r, (), env, server="rails server")
    notes = [] if sub.startswith("db:") else [f"rails {sub or '(no command)'}: assumed 1 connection"]
    return _Part(f"rails {sub}".strip(), "rails", 1, 1, "process", "connection", notes=notes)


def _rake(r: _Reader, args: Sequence[_Tok], env: _Env) -> _Part:
    task = next((a.value for a in args if not a.value.startswith("-")), "")
    if task in ("jobs:work", "jobs:workoff"):
        return _Part("delayed_job", "rails", 1, 1, "delayed_job worker", "connection")
    notes = [] if task.startswith("db:") else [f"rake {task or '(no task)'}: assumed 1 connection"]
    return _Part(f"rake {task}".strip(), "rails", 1, 1, "process", "connection", notes=notes)


_SIDEKIQ = _spec(
    {
        "concurrency": ("-c", "--concurrency"),
        "config": ("-C", "--config"),
        "_": ("-q --queue -e --environment -r --require -g --tag -t --timeout -P --pidfile -L --logfile"),
    },
    {"_f": "-v --verbose -d --daemon"},
)


def _sidekiq(r: _Reader, args: Sequence[_Tok], env: _Env, swarm: bool = False) -> _Part:
    notes: list[str] = []
    opts, _ = _options(args, _SIDEKIQ)
    concurrency: int | None = None
    if "concurrency" in opts:
        concurrency = _count(opts["concurrency"], "sidekiq --concurrency", notes)
    if concurrency is None:
        if "config" in opts:
            notes.append(f"concurrency in {opts['config'].show()!r} is not visible here")
        from_env = _first_int(env, ("RAILS_MAX_THREADS",))
        if from_env is not None and from_env[1] > 0:
            concurrency = from_env[1]
        else:
            concurrency = 5
            notes.append("no -c and no RAILS_MAX_THREADS: assumed Sidekiq 7's default of 5 threads")
    processes = 1
    if swarm:
        count = env.configured("SIDEKIQ_COUNT")
        processes = (_int(count) if count else None) or r.cpus(notes)
        if not count:
            notes.append(f"sidekiqswarm without SIDEKIQ_COUNT: one process per CPU, {processes}")
    per, detail = _rails_per_process(env, concurrency, "thread", notes)
    noun = "sidekiq process"
    return _Part(
        "sidekiqswarm" if swarm else "sidekiq",
        "rails",
        processes,
        per,
        noun,
        "connection",
        detail,
        notes=notes,
    )


def _unicorn(r: _Reader, args: Sequence[_Tok], env: _Env) -> _Part:
    notes: list[str] = []
    wc = env.configured("WEB_CONCURRENCY")
    workers = _int(wc) if wc is not None else None
    if workers:
        notes.append(f"assumed config/unicorn.rb reads WEB_CONCURRENCY={workers} (Heroku's guide)")
    else:
        workers = 3
        notes.append(
            "unicorn's worker count lives in config/unicorn.rb: assumed 3, the default in Heroku's guide"
        )
    return _Part("unicorn", "rails", workers, 1, "unicorn worker", "connection", notes=notes)


_NODE_SCRIPTS = _words("start serve server web worker start:prod prod")


def _node(r: _Reader, args: Sequence[_Tok], env: _Env, server: str = "node") -> _Part:
    notes: list[str] = []
    processes = 1
    if server in ("pm2", "pm2-runtime"):
        opts, _ = _options(args, _spec({"instances": ("-i", "--instances")}))
        if "instances" in opts:
            v = opts["instances"].value
            if v in ("max", "0", "-1"):
                processes = r.cpus(notes)
            else:
                processes = _count(opts["instances"], "pm2 --instances", notes) or 1
    else:
        wc = env.configured("WEB_CONCURRENCY")
        n = _int(wc) if wc is not None else None
        if n:
            processes = n
            notes.append(f"assumed the app clusters (throng/cluster) with WEB_CONCURRENCY={n}")
        else:
            default = r.default("WEB_CONCURRENCY")
            notes.append(
                "assumed 1 Node.js process per dyno"
                + (
                    f" (if the app clusters, the buildpack's WEB_CONCURRENCY={default} applies)"
                    if default
                    else ""
                )
            )
    pool = _first_int(env, _NODE_POOL)
    prisma = _url_param(env, "connection_limit")
    if pool is not None:
        per, detail = pool[1], f"{pool[0]}={pool[1]}"
    elif prisma is not None:
        per, detail = prisma, "connection_limit in DATABASE_URL"
    else:
        per, detail = _NODE_DEFAULT, ""
        notes.append(
            "no pool size in the config vars (PG_POOL_MAX…): assumed node-postgres' default max of 10"
        )
    return _Part(server, "node", processes, per, "node process", "connection", detail, notes=notes)


def _java(r: _Reader, args: Sequence[_Tok], env: _Env) -> _Part:
    notes: list[str] = []
    pool = _first_int(
        env,
        (
            "SPRING_DATASOURCE_HIKARI_MAXIMUM_POOL_SIZE",
            "HIKARI_MAXIMUM_POOL_SIZE",
            "DB_POOL_SIZE",
            "JDBC_POOL_SIZE",
        ),
    )
    if pool is not None:
        return _Part("java", "java", 1, pool[1], "JVM", "connection", f"{pool[0]}={pool[1]}")
    notes.append("Java: assumed HikariCP's default maximumPoolSize of 10")
    return _Part("java", "java", 1, 10, "JVM", "connection", notes=notes)


def _node_runner(server: str) -> Callable[[_Reader, Sequence[_Tok], _Env], _Part]:
    def read(r: _Reader, args: Sequence[_Tok], env: _Env) -> _Part:
        return _node(r, args, env, server)

    return read


def _npm(r: _Reader, args: Sequence[_Tok], env: _Env) -> _Part | None:
    words = [a.value for a in args if not a.value.startswith("-")]
    if words[:1] in (["run"], ["run-script"]):
        words = words[1:]
    script = words[0] if words else "start"
    if script not in _NODE_SCRIPTS:
        return None  # `npm install`, `yarn build`…: not a server
    return _node(r, args, env, "node")


_Server = Callable[[_Reader, Sequence[_Tok], _Env], "_Part | None"]
_SERVERS: dict[str, _Server] = {
    "gunicorn": _gunicorn,
    "uvicorn": _uvicorn,
    "hypercorn": _hypercorn,
    "waitress-serve": _waitress,
    "celery": _celery,
    "rq": _rq,
    "rqworker": lambda r, a, e: _rq(r, [_Tok("worker", "worker"), *a], e),
    "manage.py": _manage_py,
    "django-admin": _manage_py,
    "puma": _puma,
    "rails": _rails,
    "rake": _rake,
    "sidekiq": _sidekiq,
    "sidekiqswarm": lambda r, a, e: _sidekiq(r, a, e, swarm=True),
    "unicorn": _unicorn,
    "unicorn_rails": _unicorn,
    "node": _node_runner("node"),
    "nodejs": _node_runner("node"),
    "ts-node": _node_runner("node"),
    "tsx": _node_runner("node"),
    "nodemon": _node_runner("node"),
    "bun": _node_runner("node"),
    "next": _node_runner("next"),
    "nest": _node_runner("nest"),
    "pm2": _node_runner("pm2"),
    "pm2-runtime": _node_runner("pm2-runtime"),
    "npm": _npm,
    "yarn": _npm,
    "pnpm": _npm,
    "java": _java,
}
