"""`/pgconn` text → a command. Pure; errors are sentences for the person who typed it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from bot.render.text import code

# The verbs about one app; `help` is the only verb without one.
AppVerb = Literal["report", "budget", "watch", "unwatch", "audit", "diagnose", "postmortem"]
APP_VERBS: tuple[AppVerb, ...] = ("report", "budget", "watch", "unwatch", "audit", "diagnose", "postmortem")
Verb = AppVerb | Literal["help"]
VERBS: tuple[Verb, ...] = (*APP_VERBS, "help")
MAX_INPUT = 200

HELP = """*pgconn* — Heroku Postgres connections, from Slack.
• `/pgconn APP` — pg:info, who holds the connections, the budget verdict, and fix-it buttons
• `/pgconn APP budget` — the full connection budget: dynos × processes × connections vs the plan
• `/pgconn APP watch` / `unwatch` — add or remove pgconn's log drain and webhooks (alert threads)
• `/pgconn APP audit` — recent actions taken through pgconn
• `/pgconn APP diagnose` — the report plus every check: long queries, idle in transaction, locks, leaks
• `/pgconn APP postmortem` — the latest incident's post-mortem again, with its Markdown to copy
• `/pgconn help` — this message"""


@dataclass(frozen=True)
class AppCommand:
    """A verb about one app in PGCONN_APPS: the app is always there."""

    verb: AppVerb
    app: str


@dataclass(frozen=True)
class HelpCommand:
    """`/pgconn help` (or `/pgconn` when several apps could be meant)."""

    verb: Literal["help"] = "help"
    app: None = None


Command = AppCommand | HelpCommand


class CommandError(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def parse_command(text: str, apps: Sequence[str]) -> Command:
    cleaned = "".join(c if c.isprintable() else " " for c in (text or ""))
    words = cleaned.strip().split()
    if len(cleaned) > MAX_INPUT:
        raise CommandError(f"That is too long for a command ({len(cleaned)} characters). Try `/pgconn help`.")
    if not words:
        if len(apps) == 1:
            return AppCommand("report", apps[0])
        return HelpCommand()
    first = words[0].lower()
    if first in ("help", "-h", "--help", "?"):
        return HelpCommand()
    app = words[0].lower()
    if app not in apps:
        known = ", ".join(code(a) for a in apps[:10])
        raise CommandError(
            f"pgconn does not watch an app named {code(words[0], 40)}. Apps it may act on: {known}."
        )
    if len(words) == 1:
        return AppCommand("report", app)
    verb = next((v for v in APP_VERBS if v == words[1].lower()), None)
    if verb is None or len(words) > 2:
        raise CommandError(
            f"`/pgconn {app}` does not understand {code(' '.join(words[1:]), 40)}. "
            "Try `budget`, `watch`, `unwatch`, `audit`, `diagnose` or `postmortem`, or `/pgconn help`."
        )
    return AppCommand(verb, app)
