"""Node.js servers: node (and its runners), next, nest, pm2, and `npm/yarn/pnpm start`,
with node-postgres' pool and Prisma's `connection_limit`. Pure.

Defaults, with where they come from:
- Heroku's Node.js buildpack sets WEB_CONCURRENCY to RAM / WEB_MEMORY (512 MB):
  1 on Standard-1X, 2 on Standard-2X, 5 on Performance-M, 28 on Performance-L
  (heroku-buildpack-nodejs profile/nodejs.sh). Only apps that cluster use it.
- node-postgres: Pool `max` defaults to 10 (Knex and TypeORM use the same default).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from bot.budget.dynos import _SMALL
from bot.budget.options import _options, _spec
from bot.budget.parts import _count, _Env, _first_int, _int, _Part, _Tok, _url_param, _words

if TYPE_CHECKING:
    from bot.budget.shell import _Reader


_NODE_WEB_CONCURRENCY: dict[str, int] = {
    **dict.fromkeys(_SMALL, 1),
    **dict.fromkeys(("standard-2x", "private-s", "shield-s"), 2),
    **dict.fromkeys(("performance-m", "private-m", "shield-m"), 5),
    **dict.fromkeys(("performance-l", "private-l", "shield-l"), 28),
}


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
