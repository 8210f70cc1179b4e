"""Which reader reads which server: the first word of a command (after launchers) → the
function in the family module (python.py, ruby.py, node.py, jvm.py) that counts it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from bot.budget.jvm import _java
from bot.budget.node import _node_runner, _npm
from bot.budget.parts import _Env, _Part, _Tok
from bot.budget.python import _celery, _gunicorn, _hypercorn, _manage_py, _rq, _uvicorn, _waitress
from bot.budget.ruby import _puma, _rails, _rake, _sidekiq, _unicorn

if TYPE_CHECKING:
    from bot.budget.shell import _Reader


_Server = Callable[["_Reader", Sequence[_Tok], _Env], "_Part | None"]
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
