"""What the command readers share: the part one server opens on a dyno, a shell word, the
dyno's environment, and the small number and wording helpers. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

UNKNOWN_COMMAND = "unknown command, assumed 1 connection per dyno"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


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


def _unknown() -> _Part:
    return _Part("unknown", "unknown", 1, 1, "process", "connection", notes=[UNKNOWN_COMMAND])


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
