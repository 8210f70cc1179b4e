"""The connection budget: hand-written cases per server, mixed formations, and properties."""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bot.budget import (
    _INTERNAL_FALLBACK,
    UNKNOWN_COMMAND,
    Budget,
    BudgetLine,
    HeadroomItem,
    connection_budget,
    plan_connection_limit,
)
from bot.readings import ProcessType


def line_of(
    command: str,
    config: dict[str, str] | None = None,
    size: str = "standard-1x",
    ptype: str = "web",
    quantity: int = 1,
) -> BudgetLine:
    budget = connection_budget([ProcessType(ptype, quantity, command, size)], config or {}, 500)
    return budget.lines[0]


class Want(NamedTuple):
    processes: int
    per_process: int
    per_dyno: int
    server: str
    framework: str
    note: str | None  # a substring of one assumption; None: there must be no assumption


def case(command: str, config: dict[str, str], size: str, want: Want, name: str) -> object:
    return pytest.param(command, config, size, want, id=name)


S1 = "standard-1x"
CASES = [
    # -- gunicorn -----------------------------------------------------------
    case("gunicorn -w 3 app:app", {}, S1, Want(3, 1, 3, "gunicorn", "psycopg", None), "gunicorn-w"),
    case("gunicorn --workers=4 app:app", {}, S1, Want(4, 1, 4, "gunicorn", "psycopg", None), "gunicorn-eq"),
    case("gunicorn -w4 app:app", {}, S1, Want(4, 1, 4, "gunicorn", "psycopg", None), "gunicorn-w4"),
    case(
        "gunicorn app:app",
        {"WEB_CONCURRENCY": "5"},
        S1,
        Want(5, 1, 5, "gunicorn", "psycopg", None),
        "gunicorn-web-concurrency",
    ),
    case(
        "gunicorn app:app",
        {},
        S1,
        Want(2, 1, 2, "gunicorn", "psycopg", "Python buildpack sets it to 2 on standard-1x"),
        "gunicorn-buildpack-1x",
    ),
    case(
        "gunicorn app:app",
        {},
        "Standard-2X",
        Want(4, 1, 4, "gunicorn", "psycopg", "sets it to 4 on standard-2x"),
        "gunicorn-buildpack-2x",
    ),
    case(
        "gunicorn app:app",
        {},
        "performance-l",
        Want(17, 1, 17, "gunicorn", "psycopg", "sets it to 17"),
        "gunicorn-buildpack-perf-l",
    ),
    case(
        "gunicorn app:app",
        {},
        "performance-2xl",
        Want(1, 1, 1, "gunicorn", "psycopg", "gunicorn's default of 1 worker"),
        "gunicorn-unknown-size",
    ),
    case(
        "gunicorn -w 2 --threads 8 myproj.wsgi",
        {},
        S1,
        Want(2, 8, 16, "gunicorn", "django", None),
        "gunicorn-gthread-django",
    ),
    case(
        "gunicorn app:app",
        {"GUNICORN_CMD_ARGS": "--workers 3 --threads 2", "WEB_CONCURRENCY": "9"},
        S1,
        Want(3, 2, 6, "gunicorn", "psycopg", None),
        "gunicorn-cmd-args",
    ),
    case(
        "gunicorn -w 2 app:app",
        {"GUNICORN_CMD_ARGS": "-w 6"},
        S1,
        Want(2, 1, 2, "gunicorn", "psycopg", None),
        "gunicorn-cli-beats-cmd-args",
    ),
    case(
        "gunicorn -w 2 -k gevent --worker-connections 50 proj.wsgi:application",
        {},
        S1,
        Want(2, 50, 100, "gunicorn", "django", "one connection per gevent greenlet"),
        "gunicorn-gevent-django",
    ),
    case(
        "gunicorn -w 2 -k eventlet app:app",
        {},
        S1,
        Want(2, 15, 30, "gunicorn", "psycopg", "SQLAlchemy's default pool"),
        "gunicorn-eventlet-no-pool",
    ),
    case(
        "gunicorn -w 2 -k gevent app:app",
        {"DB_POOL_SIZE": "5", "DB_MAX_OVERFLOW": "2"},
        S1,
        Want(2, 7, 14, "gunicorn", "psycopg", None),
        "gunicorn-gevent-pool-vars",
    ),
    case(
        "gunicorn -w 3 -k uvicorn.workers.UvicornWorker main:app",
        {"SQLALCHEMY_POOL_SIZE": "4"},
        S1,
        Want(3, 4, 12, "gunicorn", "sqlalchemy", None),
        "gunicorn-uvicorn-worker",
    ),
    case(
        "gunicorn -w $WEB_CONCURRENCY app:app",
        {"WEB_CONCURRENCY": "6"},
        S1,
        Want(6, 1, 6, "gunicorn", "psycopg", None),
        "gunicorn-dollar-var",
    ),
    case(
        "gunicorn -w ${WORKERS:-3} app:app",
        {},
        S1,
        Want(3, 1, 3, "gunicorn", "psycopg", None),
        "gunicorn-var-default",
    ),
    case(
        "gunicorn -w lots app:app",
        {"WEB_CONCURRENCY": "2"},
        S1,
        Want(2, 1, 2, "gunicorn", "psycopg", "could not read gunicorn --workers 'lots'"),
        "gunicorn-bad-number",
    ),
    case(
        "gunicorn -c gunicorn.conf.py app:app",
        {"WEB_CONCURRENCY": "3"},
        S1,
        Want(3, 1, 3, "gunicorn", "psycopg", "config file 'gunicorn.conf.py'"),
        "gunicorn-config-file",
    ),
    case(
        "gunicorn app:app",
        {"WEB_CONCURRENCY": "2", "DJANGO_SETTINGS_MODULE": "proj.settings"},
        S1,
        Want(2, 1, 2, "gunicorn", "django", None),
        "gunicorn-django-settings-var",
    ),
    # -- uvicorn / hypercorn / waitress -------------------------------------
    case(
        "uvicorn main:app --host 0.0.0.0 --port $PORT --workers 4",
        {"DB_POOL_SIZE": "10"},
        S1,
        Want(4, 10, 40, "uvicorn", "psycopg", None),
        "uvicorn-workers-pool",
    ),
    case(
        "uvicorn main:app",
        {"WEB_CONCURRENCY": "3"},
        S1,
        Want(3, 15, 45, "uvicorn", "psycopg", "SQLAlchemy's default pool of 5 + 10 overflow"),
        "uvicorn-web-concurrency",
    ),
    case(
        "uvicorn proj.asgi:application --workers 2",
        {},
        S1,
        Want(2, 1, 2, "uvicorn", "django", "Django under ASGI"),
        "uvicorn-django",
    ),
    case(
        "uvicorn main:app --workers 2 --limit-concurrency 4",
        {},
        S1,
        Want(2, 4, 8, "uvicorn", "psycopg", None),
        "uvicorn-limit-concurrency",
    ),
    case(
        "hypercorn -w 3 main:app",
        {"DB_POOL_SIZE": "5"},
        S1,
        Want(3, 5, 15, "hypercorn", "psycopg", None),
        "hypercorn-w",
    ),
    case(
        "hypercorn main:app",
        {"WEB_CONCURRENCY": "4", "DB_POOL_SIZE": "5"},
        S1,
        Want(1, 5, 5, "hypercorn", "psycopg", None),
        "hypercorn-ignores-web-concurrency",
    ),
    case(
        "waitress-serve --threads=6 --port=$PORT app:app",
        {},
        S1,
        Want(1, 6, 6, "waitress", "psycopg", None),
        "waitress-threads",
    ),
    # -- puma / rails server -------------------------------------------------
    case(
        "bundle exec puma -C config/puma.rb",
        {"WEB_CONCURRENCY": "2", "RAILS_MAX_THREADS": "5"},
        S1,
        Want(2, 5, 10, "puma", "rails", "'config/puma.rb' are not visible"),
        "puma-env",
    ),
    case(
        "bundle exec puma -w 3 -t 2:8",
        {"RAILS_MAX_THREADS": "5"},
        S1,
        Want(3, 5, 15, "puma", "rails", "8 threads share a pool of 5"),
        "puma-threads-over-pool",
    ),
    case(
        "bundle exec puma -t 5:5 -p $PORT",
        {},
        S1,
        Want(1, 5, 5, "puma", "rails", "single mode"),
        "puma-single-mode",
    ),
    case(
        "bundle exec puma -w 2",
        {"DB_POOL": "3", "RAILS_MAX_THREADS": "5"},
        S1,
        Want(2, 3, 6, "puma", "rails", "5 threads share a pool of 3"),
        "puma-db-pool",
    ),
    case(
        "bundle exec puma -w 2 -t 3",
        {"DATABASE_URL": "postgres://u:s3cr3t@h:5432/db?pool=2"},
        S1,
        Want(2, 2, 4, "puma", "rails", "3 threads share a pool of 2"),
        "puma-url-pool",
    ),
    case(
        "bin/rails server -p $PORT -e $RAILS_ENV",
        {"WEB_CONCURRENCY": "2", "RAILS_MAX_THREADS": "3"},
        S1,
        Want(2, 3, 6, "rails server", "rails", None),
        "rails-server",
    ),
    # -- unicorn ---------------------------------------------------------------
    case(
        "bundle exec unicorn -p $PORT -c ./config/unicorn.rb",
        {"WEB_CONCURRENCY": "4"},
        S1,
        Want(4, 1, 4, "unicorn", "rails", "config/unicorn.rb reads WEB_CONCURRENCY=4"),
        "unicorn-web-concurrency",
    ),
    case(
        "bundle exec unicorn -c ./config/unicorn.rb",
        {},
        S1,
        Want(3, 1, 3, "unicorn", "rails", "assumed 3"),
        "unicorn-default",
    ),
    # -- sidekiq -----------------------------------------------------------------
    case(
        "bundle exec sidekiq -c 10 -q default",
        {"DB_POOL": "10"},
        S1,
        Want(1, 10, 10, "sidekiq", "rails", None),
        "sidekiq-c",
    ),
    case(
        "bundle exec sidekiq",
        {"RAILS_MAX_THREADS": "7"},
        S1,
        Want(1, 7, 7, "sidekiq", "rails", None),
        "sidekiq-rails-max-threads",
    ),
    case(
        "bundle exec sidekiq -C config/sidekiq.yml",
        {},
        S1,
        Want(1, 5, 5, "sidekiq", "rails", "Sidekiq 7's default of 5"),
        "sidekiq-default",
    ),
    case(
        "DB_POOL=25 bundle exec sidekiq -c 25",
        {"DB_POOL": "5"},
        S1,
        Want(1, 25, 25, "sidekiq", "rails", None),
        "sidekiq-inline-env",
    ),
    # -- celery -------------------------------------------------------------------
    case("celery -A proj worker -c 4", {}, S1, Want(4, 1, 4, "celery", "psycopg", None), "celery-c"),
    case(
        "celery -A proj worker --concurrency=3 -B",
        {},
        S1,
        Want(3, 1, 4, "celery", "psycopg", "embedded beat"),
        "celery-embedded-beat",
    ),
    case(
        "celery -A proj worker --pool=solo",
        {},
        S1,
        Want(1, 1, 1, "celery", "psycopg", None),
        "celery-solo",
    ),
    case(
        "celery -A proj worker -P threads -c 10",
        {},
        S1,
        Want(1, 10, 10, "celery", "psycopg", None),
        "celery-threads",
    ),
    case(
        "celery -A proj worker -P gevent -c 100",
        {"DJANGO_SETTINGS_MODULE": "proj.settings"},
        S1,
        Want(1, 100, 100, "celery", "django", None),
        "celery-gevent",
    ),
    case(
        "celery -A proj worker",
        {},
        "standard-2x",
        Want(8, 1, 8, "celery", "psycopg", "the CPU count, 8"),
        "celery-prefork-default-standard",
    ),
    case(
        "celery -A proj worker",
        {},
        "performance-m",
        Want(2, 1, 2, "celery", "psycopg", "the CPU count, 2"),
        "celery-prefork-default-perf-m",
    ),
    case(
        "celery -A proj beat",
        {},
        S1,
        Want(1, 1, 1, "celery beat", "psycopg", "celery beat"),
        "celery-beat",
    ),
    case(
        "python -m celery -A proj worker --autoscale=10,3",
        {},
        S1,
        Want(10, 1, 10, "celery", "psycopg", None),
        "celery-autoscale",
    ),
    case(
        "celery worker -A proj",
        {"CELERY_WORKER_CONCURRENCY": "6"},
        S1,
        Want(6, 1, 6, "celery", "psycopg", "CELERY_WORKER_CONCURRENCY=6"),
        "celery-concurrency-var",
    ),
    # -- rq -------------------------------------------------------------------------
    case("rq worker high default", {}, S1, Want(1, 1, 1, "rq", "psycopg", None), "rq-worker"),
    case("rq worker-pool -n 4", {}, S1, Want(4, 1, 4, "rq", "psycopg", None), "rq-worker-pool"),
    case(
        "python manage.py rqworker default",
        {},
        S1,
        Want(1, 1, 1, "rq", "django", None),
        "django-rq",
    ),
    # -- other Rails processes ---------------------------------------------------------
    case(
        "bundle exec rake jobs:work",
        {},
        S1,
        Want(1, 1, 1, "delayed_job", "rails", None),
        "delayed-job",
    ),
    # -- node ------------------------------------------------------------------------------
    case(
        "node server.js",
        {},
        S1,
        Want(1, 10, 10, "node", "node", "node-postgres' default max of 10"),
        "node-default",
    ),
    case(
        "npm start",
        {"WEB_CONCURRENCY": "3", "PG_POOL_MAX": "4"},
        S1,
        Want(3, 4, 12, "node", "node", "clusters"),
        "node-cluster-pool",
    ),
    case(
        "node dist/main.js",
        {"DATABASE_URL": "postgres://u:p@h/db?connection_limit=3"},
        S1,
        Want(1, 3, 3, "node", "node", "assumed 1 Node.js process"),
        "node-prisma-connection-limit",
    ),
    case(
        "pm2-runtime start ecosystem.config.js -i 2",
        {"KNEX_POOL_MAX": "5"},
        S1,
        Want(2, 5, 10, "pm2-runtime", "node", None),
        "node-pm2",
    ),
    # -- java ------------------------------------------------------------------------------
    case(
        "java -jar target/app.jar",
        {},
        S1,
        Want(1, 10, 10, "java", "java", "HikariCP"),
        "java-hikari",
    ),
    # -- wrappers ---------------------------------------------------------------------------
    case(
        "newrelic-admin run-program gunicorn -w 2 app:app",
        {},
        S1,
        Want(2, 1, 2, "gunicorn", "psycopg", None),
        "wrap-newrelic",
    ),
    case(
        "ddtrace-run gunicorn -w 2 app:app",
        {},
        S1,
        Want(2, 1, 2, "gunicorn", "psycopg", None),
        "wrap-ddtrace",
    ),
    case(
        "sh -c 'python manage.py migrate && gunicorn proj.wsgi -w 2'",
        {},
        S1,
        Want(2, 1, 2, "gunicorn", "django", None),
        "wrap-sh-c",
    ),
    case(
        "bin/start-nginx bundle exec puma -w 2 -t 4",
        {"RAILS_MAX_THREADS": "4"},
        S1,
        Want(2, 4, 8, "puma", "rails", None),
        "wrap-nginx",
    ),
    case(
        "poetry run python -m gunicorn -w 3 app:app",
        {},
        S1,
        Want(3, 1, 3, "gunicorn", "psycopg", None),
        "wrap-poetry-python-m",
    ),
    case(
        "gunicorn -w 3 app:app 2>&1 | tee /tmp/log",
        {},
        S1,
        Want(3, 1, 3, "gunicorn", "psycopg", None),
        "pipe-keeps-head",
    ),
    case(
        "gunicorn -w 2 app:app & celery -A proj worker -c 2",
        {},
        S1,
        Want(2, 1, 4, "gunicorn", "psycopg", None),
        "two-servers-on-one-dyno",
    ),
    # -- not recognised ------------------------------------------------------------------------
    case("./bin/mystery --fast", {}, S1, Want(1, 1, 1, "unknown", "unknown", UNKNOWN_COMMAND), "unknown"),
    case("python clock.py", {}, S1, Want(1, 1, 1, "python script", "psycopg", UNKNOWN_COMMAND), "clock"),
    case("yarn build", {}, S1, Want(1, 1, 1, "unknown", "unknown", UNKNOWN_COMMAND), "yarn-build"),
    case("", {}, S1, Want(1, 1, 1, "unknown", "unknown", UNKNOWN_COMMAND), "empty-command"),
    case(
        "gunicorn 'unterminated -w 3 app:app",
        {"WEB_CONCURRENCY": "2"},
        S1,
        Want(3, 1, 3, "gunicorn", "psycopg", "unbalanced quotes"),
        "unbalanced-quotes",
    ),
]


@pytest.mark.parametrize(("command", "config", "size", "want"), CASES)
def test_each_server(command: str, config: dict[str, str], size: str, want: Want) -> None:
    ln = line_of(command, config, size)
    got = Want(
        ln.processes_per_dyno,
        ln.connections_per_process,
        ln.per_dyno,
        ln.server,
        ln.framework,
        want.note,
    )
    assert got == want
    assert ln.total == ln.per_dyno  # one dyno
    if want.note is None:
        assert ln.assumptions == ()
    else:
        assert any(want.note in a for a in ln.assumptions), ln.assumptions


def test_explanation_reads_as_the_arithmetic() -> None:
    ln = line_of("gunicorn -w 3 app:app", quantity=6)
    assert ln.explanation == "6 dynos × 3 gunicorn workers × 1 thread"
    assert ln.total == 18
    celery = line_of("celery -A proj worker -c 4 -B", ptype="worker", quantity=2)
    assert celery.explanation == "2 dynos × 4 celery prefork children × 1 connection + 1 (embedded beat)"
    assert celery.total == 10


# -- mixed formations ---------------------------------------------------------------------


def test_issue_example_web_gunicorn_and_celery_worker_on_20() -> None:
    formation = [
        ProcessType("web", 6, "gunicorn -w 3 app.wsgi"),
        ProcessType("worker", 2, "celery -A app worker --concurrency 4"),
    ]
    budget = connection_budget(formation, {}, 20, headroom=0)
    assert [(ln.process_type, ln.total) for ln in budget.lines] == [("web", 18), ("worker", 8)]
    assert (budget.total, budget.limit, budget.verdict, budget.over_by) == (26, 20, "over", 6)
    # web: 20 - 8 = 12 → 4 dynos of 3; worker: 20 - 18 = 2 → not one dyno of 4
    assert dict(budget.max_dynos) == {"web": 4, "worker": 0}

    with_headroom = connection_budget(formation, {}, 20)
    assert with_headroom.headroom == 3
    assert with_headroom.total == 29
    assert with_headroom.app_total == 26
    assert [i.connections for i in with_headroom.headroom_items] == [1, 1, 1]


def test_rails_app_on_standard_0_fits() -> None:
    formation = [
        ProcessType("web", 2, "bundle exec puma -C config/puma.rb"),
        ProcessType("worker", 1, "bundle exec sidekiq -c 5"),
        ProcessType("release", 0, "bin/rails db:migrate"),
    ]
    config = {"WEB_CONCURRENCY": "2", "RAILS_MAX_THREADS": "5"}
    budget = connection_budget(formation, config, plan_connection_limit("standard-0") or 0)
    # web 2 × 2 × 5 = 20, worker 1 × 5 = 5, release 1 (one dyno while deploying), headroom 3
    assert [ln.total for ln in budget.lines] == [20, 5, 1]
    assert budget.lines[2].transient and budget.lines[2].dynos == 1
    assert budget.total == 29
    assert budget.verdict == "fits"
    assert budget.frameworks == frozenset({"rails"})
    assert "release" not in budget.max_dynos


@pytest.mark.parametrize(
    ("web_workers", "verdict"),
    [(13, "fits"), (14, "tight"), (17, "tight"), (18, "over")],
)
def test_verdict_thresholds(web_workers: int, verdict: str) -> None:
    # 13 + 3 = 16 is exactly 80% of 20 (fits); 17 is over 80% (tight); 20 is tight; 21 is over.
    budget = connection_budget([ProcessType("web", 1, f"gunicorn -w {web_workers} a:b")], {}, 20)
    assert budget.verdict == verdict
    assert budget.share == pytest.approx((web_workers + 3) / 20)


def test_exactly_at_the_limit_is_tight_not_over() -> None:
    budget = connection_budget([ProcessType("web", 1, "gunicorn -w 20 a:b")], {}, 20, headroom=0)
    assert (budget.total, budget.verdict, budget.over_by, budget.spare) == (20, "tight", 0, 0)


def test_tight_share_is_configurable() -> None:
    formation = [ProcessType("web", 1, "gunicorn -w 12 a:b")]
    assert connection_budget(formation, {}, 20, headroom=0, tight_share=0.5).verdict == "tight"
    assert connection_budget(formation, {}, 20, headroom=0, tight_share=0.9).verdict == "fits"


def test_headroom_lines_are_configurable() -> None:
    items = [HeadroomItem("pgconn", 1), HeadroomItem("consoles", 4)]
    budget = connection_budget([ProcessType("web", 1, "gunicorn -w 2 a:b")], {}, 20, headroom=items)
    assert budget.headroom == 5
    assert budget.total == 7
    assert [i.label for i in budget.headroom_items] == ["pgconn", "consoles"]
    assert connection_budget([], {}, 20, headroom=7).headroom == 7


def test_scaled_to_zero_counts_nothing_but_says_so() -> None:
    formation = [
        ProcessType("web", 2, "gunicorn -w 2 a:b"),
        ProcessType("worker", 0, "celery -A a worker -c 4"),
    ]
    budget = connection_budget(formation, {}, 20, headroom=0)
    worker = budget.lines[1]
    assert (worker.dynos, worker.per_dyno, worker.total) == (0, 4, 0)
    assert "scaled to 0: each dyno would open 4" in worker.assumptions
    assert budget.max_dynos["worker"] == 4  # (20 - 4) // 4


def test_pgbouncer_prefix_bounds_each_dyno_by_its_pool() -> None:
    ln = line_of(
        "bin/start-pgbouncer bundle exec puma -w 4 -t 5",
        {"RAILS_MAX_THREADS": "5"},
        quantity=3,
    )
    assert ln.behind_pgbouncer
    assert ln.client_per_dyno == 20
    # buildpack defaults: default pool 1 + reserve pool 1 server connections per dyno
    assert (ln.per_dyno, ln.total) == (2, 6)
    ln = line_of(
        "bin/start-pgbouncer-stunnel gunicorn -w 4 a:b",
        {"PGBOUNCER_DEFAULT_POOL_SIZE": "2", "PGBOUNCER_RESERVE_POOL_SIZE": "0"},
    )
    assert ln.per_dyno == 2
    ln = line_of("bin/start-pgbouncer gunicorn -w 4 --threads 50 a:b", {})
    assert any("PGBOUNCER_MAX_CLIENT_CONN is 100" in a for a in ln.assumptions)


def test_pgbouncer_sizing_keeps_the_total_under_the_limit() -> None:
    formation = [
        ProcessType("web", 6, "gunicorn -w 3 a:b"),
        ProcessType("worker", 2, "celery -A a worker -c 4"),
    ]
    small = connection_budget(formation, {}, 20)
    # 8 dynos, 20 - 3 headroom = 17 → 2 server connections per dyno: pool 1 + reserve 1
    assert (small.pgbouncer_pool_size, small.pgbouncer_reserve_pool_size) == (1, 1)
    assert small.pgbouncer_total == 19
    assert small.pgbouncer_config_vars == {
        "PGBOUNCER_DEFAULT_POOL_SIZE": "1",
        "PGBOUNCER_RESERVE_POOL_SIZE": "1",
        "PGBOUNCER_MAX_CLIENT_CONN": "100",
        "PGBOUNCER_MAX_PREPARED_STATEMENTS": "200",
    }
    big = connection_budget(formation, {}, 120)
    # room for 14 per dyno, but no dyno asks for more than 4: pool 4 (+ reserve 1)
    assert (big.pgbouncer_pool_size, big.pgbouncer_total) == (4, 8 * 5 + 3)


def test_pgbouncer_drops_the_reserve_before_giving_up() -> None:
    budget = connection_budget([ProcessType("web", 10, "gunicorn -w 3 a:b")], {}, 20, headroom=3)
    assert (budget.pgbouncer_pool_size, budget.pgbouncer_reserve_pool_size) == (1, 0)
    assert budget.pgbouncer_total == 13


def test_pgbouncer_cannot_fit_more_dynos_than_connections() -> None:
    budget = connection_budget([ProcessType("web", 30, "gunicorn -w 2 a:b")], {}, 20)
    assert budget.pgbouncer_pool_size is None
    assert budget.pgbouncer_config_vars == {}
    assert any("Even PgBouncer" in n for n in budget.notes)


def test_pgbouncer_max_client_conn_covers_the_largest_dyno() -> None:
    budget = connection_budget(
        [ProcessType("web", 2, "gunicorn -w 4 -k gevent proj.wsgi")],
        {"DJANGO_SETTINGS_MODULE": "proj.settings"},
        120,
    )
    assert budget.lines[0].client_per_dyno == 4000
    assert budget.pgbouncer_max_client_conn == 4000


def test_frameworks_for_the_prepared_statements_advice() -> None:
    formation = [
        ProcessType("web", 1, "bundle exec puma"),
        ProcessType("worker", 1, "celery -A proj worker -c 2"),
        ProcessType("api", 1, "node index.js"),
    ]
    budget = connection_budget(formation, {"DJANGO_SETTINGS_MODULE": "proj.settings"}, 120)
    assert budget.frameworks == frozenset({"rails", "django", "node"})
    unknown = connection_budget([ProcessType("web", 1, "./server")], {}, 20)
    assert unknown.frameworks == frozenset({"unknown"})


def test_server_side_pooling_is_noted() -> None:
    budget = connection_budget([], {"DATABASE_CONNECTION_POOL_URL": "postgres://x"}, 120)
    assert any("server-side connection pooling" in n for n in budget.notes)


def test_secrets_in_config_vars_never_reach_the_budget_text() -> None:
    secret = "p4ssw0rd-do-not-show"
    config = {"DATABASE_URL": f"postgres://user:{secret}@host:5432/db?pool=3", "API_KEY": secret}
    formation = [
        ProcessType("web", 1, "gunicorn -w $DATABASE_URL app:app"),
        ProcessType("worker", 1, "node worker.js --key $API_KEY"),
        ProcessType("other", 1, "$API_KEY"),
    ]
    budget = connection_budget(formation, config, 20)
    text = repr(budget)
    assert secret not in text.replace(repr(config), "")
    assert any("'$DATABASE_URL'" in a for a in budget.lines[0].assumptions)


@pytest.mark.parametrize(
    ("plan", "limit"),
    [
        ("heroku-postgresql:essential-0", 20),
        ("essential-1", 20),
        ("Essential 2", 40),
        ("heroku-postgresql:mini", 20),
        ("basic", 20),
        ("hobby-dev", 20),
        ("Hobby-basic", 20),
        ("standard-0", 120),
        ("Standard 2", 400),
        ("standard-3", 500),
        ("standard-7", 500),
        ("premium-0", 120),
        ("premium-4", 500),
        ("private-2", 400),
        ("shield-0", 120),
        ("standard-1", None),
        ("essential-9", None),
        ("heroku-redis:mini-x", None),
        ("", None),
        (None, None),
    ],
)
def test_plan_connection_limit(plan: str | None, limit: int | None) -> None:
    assert plan_connection_limit(plan) == limit


# -- properties ---------------------------------------------------------------------------

KNOWN = (
    "gunicorn -w {n} app:app",
    "gunicorn --threads {n} -k {kind} proj.wsgi",
    "uvicorn main:app --workers {n}",
    "hypercorn -w {n} main:app",
    "bundle exec puma -w {n} -t {n}:{n}",
    "bundle exec sidekiq -c {n}",
    "bundle exec unicorn -c config/unicorn.rb",
    "celery -A proj worker -c {n} {flag}",
    "rq worker-pool -n {n}",
    "node server.js",
    "pm2-runtime start x.js -i {n}",
    "bin/start-pgbouncer gunicorn -w {n} app:app",
    "sh -c 'gunicorn -w {n} app:app'",
    "java -jar app.jar",
)
NUMBERS = st.one_of(
    st.integers(0, 64).map(str), st.sampled_from(["", "x", "-1", "$WEB_CONCURRENCY", "${X:-3}"])
)
COMMANDS = st.one_of(
    st.builds(
        lambda t, n, kind, flag: t.format(n=n, kind=kind, flag=flag),
        st.sampled_from(KNOWN),
        NUMBERS,
        st.sampled_from(["sync", "gevent", "gthread", "uvicorn.workers.UvicornWorker", "weird"]),
        st.sampled_from(["", "-B", "-P threads", "-P solo", "--pool=gevent", "-P ???"]),
    ),
    st.text(max_size=80),
    st.lists(
        st.sampled_from(
            [
                "gunicorn",
                "-w",
                "3",
                "&&",
                "|",
                "&",
                ";",
                "'",
                '"',
                "$",
                "${",
                "}",
                "sh",
                "-c",
                "celery",
                "worker",
                "-c",
                "bundle",
                "exec",
                "puma",
                "-t",
                ":",
                "2>&1",
                "=",
                "FOO=1",
                "python",
                "-m",
            ]
        ),
        max_size=12,
    ).map(" ".join),
)
CONFIG_KEYS = st.sampled_from(
    [
        "WEB_CONCURRENCY",
        "RAILS_MAX_THREADS",
        "DB_POOL",
        "GUNICORN_CMD_ARGS",
        "DB_POOL_SIZE",
        "PG_POOL_MAX",
        "PGBOUNCER_DEFAULT_POOL_SIZE",
        "DJANGO_SETTINGS_MODULE",
        "DATABASE_URL",
        "X",
    ]
)
CONFIGS = st.dictionaries(
    CONFIG_KEYS, st.one_of(st.integers(0, 40).map(str), st.text(max_size=20)), max_size=5
)
SIZES = st.sampled_from(["standard-1x", "standard-2x", "performance-m", "performance-l", "eco", "weird", ""])
PROCESS_TYPES = st.builds(
    ProcessType,
    type=st.one_of(st.sampled_from(["web", "worker", "release", "clock"]), st.text(min_size=1, max_size=12)),
    quantity=st.integers(0, 30),
    command=COMMANDS,
    size=SIZES,
)
FORMATIONS = st.lists(PROCESS_TYPES, max_size=8)
LIMITS = st.sampled_from([20, 40, 120, 400, 500])


def _consistent(budget: Budget) -> None:
    for ln in budget.lines:
        assert ln.total == ln.dynos * ln.per_dyno
        assert ln.per_dyno == ln.processes_per_dyno * ln.connections_per_process + ln.extra_per_dyno
        assert _INTERNAL_FALLBACK not in ln.assumptions
        if ln.server == "unknown":
            assert UNKNOWN_COMMAND in ln.assumptions


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FORMATIONS, CONFIGS, LIMITS, st.integers(0, 10))
def test_total_is_the_sum_of_its_lines(
    formation: list[ProcessType], config: dict[str, str], limit: int, headroom: int
) -> None:
    budget = connection_budget(formation, config, limit, headroom=headroom)
    assert budget.total == sum(ln.total for ln in budget.lines) + budget.headroom
    assert budget.headroom == headroom
    assert len(budget.lines) == len(formation)
    _consistent(budget)
    assert budget.verdict == (
        "over" if budget.total > limit else "tight" if budget.total > 0.8 * limit else "fits"
    )


@settings(max_examples=200, deadline=None)
@given(FORMATIONS, CONFIGS, LIMITS, st.data())
def test_more_dynos_never_lowers_the_total(
    formation: list[ProcessType], config: dict[str, str], limit: int, data: st.DataObject
) -> None:
    assume(formation)
    i = data.draw(st.integers(0, len(formation) - 1))
    more = data.draw(st.integers(1, 20))
    before = connection_budget(formation, config, limit)
    bigger = list(formation)
    bigger[i] = replace(formation[i], quantity=formation[i].quantity + more)
    after = connection_budget(bigger, config, limit)
    assert after.total >= before.total
    assert after.lines[i].total >= before.lines[i].total
    for j, (a, b) in enumerate(zip(after.lines, before.lines, strict=True)):
        if j != i:
            assert a == b


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200), CONFIGS, SIZES)
def test_a_command_the_parser_cannot_read_is_an_assumption_not_an_exception(
    command: str, config: dict[str, str], size: str
) -> None:
    words = {
        "gunicorn",
        "uvicorn",
        "hypercorn",
        "puma",
        "unicorn",
        "sidekiq",
        "celery",
        "rq",
        "node",
        "npm",
        "yarn",
        "pnpm",
        "pm2",
        "rails",
        "rake",
        "manage",
        "python",
        "java",
        "waitress",
        "next",
        "nest",
        "tsx",
        "bun",
        "django",
    }
    assume(not any(w in command.lower() for w in words))
    # `a & b` (or a pipe, or `;`) runs several unknown programs per dyno: counted once each.
    assume(not any(sep in command for sep in "&|;"))
    budget = connection_budget([ProcessType("worker", 2, command, size)], config, 20)
    ln = budget.lines[0]
    _consistent(budget)
    assert ln.server == "unknown"
    assert UNKNOWN_COMMAND in ln.assumptions
    assert (ln.per_dyno, ln.total) == (1, 2)


@settings(max_examples=200, deadline=None)
@given(FORMATIONS, CONFIGS, LIMITS)
def test_max_dynos_is_the_most_that_fits(
    formation: list[ProcessType], config: dict[str, str], limit: int
) -> None:
    budget = connection_budget(formation, config, limit)
    for i, pt in enumerate(formation):
        if pt.type not in budget.max_dynos or [p.type for p in formation].count(pt.type) > 1:
            continue
        most = budget.max_dynos[pt.type]
        scaled = list(formation)
        scaled[i] = replace(pt, quantity=most)
        if most > 0:
            assert connection_budget(scaled, config, limit).total <= limit
        scaled[i] = replace(pt, quantity=most + 1)
        assert connection_budget(scaled, config, limit).total > limit


@settings(max_examples=200, deadline=None)
@given(FORMATIONS, CONFIGS, LIMITS, st.integers(0, 6))
def test_pgbouncer_sizing_fits_under_the_limit(
    formation: list[ProcessType], config: dict[str, str], limit: int, headroom: int
) -> None:
    budget = connection_budget(formation, config, limit, headroom=headroom)
    if budget.pgbouncer_pool_size is None:
        return
    dynos = sum(ln.dynos for ln in budget.lines if not ln.transient)
    release = sum(ln.total for ln in budget.lines if ln.transient)
    server_per_dyno = budget.pgbouncer_pool_size + budget.pgbouncer_reserve_pool_size
    assert budget.pgbouncer_total == dynos * server_per_dyno + release + budget.headroom
    assert budget.pgbouncer_total is not None and budget.pgbouncer_total <= limit
    assert budget.pgbouncer_pool_size >= 1
    assert budget.pgbouncer_max_client_conn >= max(
        (ln.client_per_dyno for ln in budget.lines if not ln.transient and ln.dynos), default=0
    )
