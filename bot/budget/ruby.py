"""Ruby servers and workers: puma, `rails server`, rake, sidekiq, unicorn, with Active
Record's pool. Pure.

Defaults, with where they come from:
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
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.budget.options import _options, _spec
from bot.budget.parts import _count, _Env, _first_int, _int, _Part, _Tok, _url_param

if TYPE_CHECKING:
    from bot.budget.shell import _Reader


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
