"""Reading a Procfile command as the dyno's `bash -c` would: `$VAR` expansion with the
config vars and buildpack defaults, `FOO=1 cmd`, `export`, `&&`/`;`/`&`/pipes, `sh -c '…'`,
and launchers peeled off (`bundle exec`, `python -m`, `ddtrace-run`, `bin/start-pgbouncer`…).
What is left is handed to the server's reader (servers.py). Pure.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping, Sequence

from bot.budget.dynos import _ASSUMED_CPUS, _CPUS
from bot.budget.node import _NODE_WEB_CONCURRENCY
from bot.budget.parts import UNKNOWN_COMMAND, _Env, _Part, _Tok, _unknown, _words
from bot.budget.python import _PYTHON_WEB_CONCURRENCY
from bot.budget.servers import _SERVERS

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
# What a language's buildpack sets WEB_CONCURRENCY to at dyno boot, per dyno size (sources
# beside each table).
_BUILDPACK_WEB_CONCURRENCY: dict[str, tuple[str, dict[str, int]]] = {
    "python": ("Python", _PYTHON_WEB_CONCURRENCY),
    "node": ("Node.js", _NODE_WEB_CONCURRENCY),
}


class _Reader:
    """Reads one process type's command into parts; collects assumptions on the way."""

    def __init__(self, config: Mapping[str, str], size: str, language: str) -> None:
        self.config = config
        self.size = size
        self.language = language
        self.notes: list[str] = []
        self.pgbouncer = False
        defaults: dict[str, tuple[str, str]] = {}
        buildpack, by_size = _BUILDPACK_WEB_CONCURRENCY.get(language, ("", {}))
        if "WEB_CONCURRENCY" not in config and size in by_size:
            n = by_size[size]
            defaults["WEB_CONCURRENCY"] = (
                str(n),
                f"WEB_CONCURRENCY is not a config var: Heroku's {buildpack} buildpack sets it to "
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


def _base(word: str) -> str:
    return word.rstrip("/").rsplit("/", 1)[-1]
