"""An argparse-like reader of server flags (`--opt=v`, `--opt v`, `-o v`, `-ov`, `-Bc4`),
driven by a per-server table of option names. Pure.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence

from bot.budget.parts import _Tok

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
                opts[known[0]], i = _value(toks, i, _Tok(value, raw_value) if eq else None)
            elif known:
                opts[known[0]] = _Tok("true", "true")
        elif t.startswith("-") and len(t) > 1 and not re.fullmatch(r"-\d+", t):
            known = spec.get(t[:2])
            if known and known[1]:
                rest = t[2:].removeprefix("=")
                inline = _Tok(rest, tok.raw[2:].removeprefix("=") or rest) if rest else None
                opts[known[0]], i = _value(toks, i, inline)
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


def _value(toks: Sequence[_Tok], i: int, inline: _Tok | None) -> tuple[_Tok, int]:
    """The value of the option at `i`: written inline (`--opt=v`, `-ov`), else the next word
    (then the caller skips it), else empty. Returns the value and the index of its last word."""
    if inline is not None:
        return inline, i
    if i + 1 < len(toks):
        return toks[i + 1], i + 1
    return _Tok("", ""), i


def _split_args(text: str, notes: list[str], name: str) -> list[_Tok]:
    try:
        words = shlex.split(text)
    except ValueError:
        notes.append(f"{name} has unbalanced quotes; it was read word by word")
        words = text.split()
    return [_Tok(w, w) for w in words]
