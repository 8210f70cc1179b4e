"""Python servers and workers: gunicorn, uvicorn, hypercorn, waitress, celery, rq and
Django's manage.py, with the pool defaults of Django and SQLAlchemy. Pure.

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
- celery: `-c` defaults to the CPU count (8 on Standard dynos, 2 on Performance-M,
  8 on Performance-L); prefork children hold one connection each.
- rq: one connection per worker process; `rq worker-pool -n` defaults to 2.
- SQLAlchemy: QueuePool 5 + 10 overflow = 15.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.budget.dynos import _SMALL
from bot.budget.options import _options, _spec, _split_args
from bot.budget.parts import _count, _Env, _first_int, _int, _Part, _Tok, _words

if TYPE_CHECKING:
    from bot.budget.shell import _Reader


_PYTHON_WEB_CONCURRENCY: dict[str, int] = {
    **dict.fromkeys(_SMALL, 2),
    **dict.fromkeys(("standard-2x", "private-s", "shield-s"), 4),
    **dict.fromkeys(("performance-m", "private-m", "shield-m"), 5),
    **dict.fromkeys(("performance-l", "private-l", "shield-l"), 17),
}


_PY_POOL = ("DB_POOL_SIZE", "DATABASE_POOL_SIZE", "SQLALCHEMY_POOL_SIZE", "POOL_SIZE")
_PY_OVERFLOW = ("DB_MAX_OVERFLOW", "DATABASE_MAX_OVERFLOW", "SQLALCHEMY_MAX_OVERFLOW", "MAX_OVERFLOW")
_SQLALCHEMY_DEFAULT = 15  # QueuePool(pool_size=5, max_overflow=10)


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
