"""Small text helpers shared by every renderer. Pure."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

# Slack caps a section/context text at 3000 characters and a message at 50 blocks.
MAX_TEXT = 3000
MAX_BLOCKS = 50

_SPARKS = "▁▂▃▄▅▆▇█"


def escape(text: object) -> str:
    """Make outside text inert in mrkdwn: no pings, no links, no formatting.

    Slack only needs &, < and > escaped to stop `<!channel>` and `<url|label>`;
    the formatting characters get a zero-width joiner so `*bold*` stays literal.
    """
    s = str(text)
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for ch in "*_~`":
        s = s.replace(ch, ch + "\u200b")
    # Control characters would break the layout (and are never meaningful here).
    return "".join(c if c >= " " or c == "\n" else " " for c in s)


def inert(text: object) -> str:
    """Outside text inside one of pgconn's own sentences (an error message from Heroku or
    Postgres, a buildpack name): no pings and no links, since &, < and > are escaped.
    Formatting characters are kept so names like HEROKU_API_KEY read as written."""
    s = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "".join(c if c >= " " or c == "\n" else " " for c in s)


def code(text: object, limit: int = 60) -> str:
    """Outside text shown inline as code; backticks cannot escape it."""
    s = truncate(str(text).replace("`", "'"), limit)
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = "".join(c if c >= " " else " " for c in s)
    return f"`{s}`" if s else "`(empty)`"


def section(text: str, block_id: str | None = None) -> dict[str, Any]:
    """A mrkdwn section block, its text cut to Slack's limit."""
    block: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, MAX_TEXT)}}
    if block_id is not None:
        block["block_id"] = block_id
    return block


def fit_lines(lines: Sequence[str], limit: int = MAX_TEXT - 40) -> str:
    """Join whole lines up to `limit` characters, then say how many were left out.

    Never cuts mid-line: a cut could leave a dangling backtick or a half entity."""
    out: list[str] = []
    size = 0
    for line in lines:
        if size + len(line) + 1 > limit:
            out.append(f"… {len(lines) - len(out)} more lines")
            break
        out.append(line)
        size += len(line) + 1
    return "\n".join(out)


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def bar(used: int, limit: int, width: int = 20) -> str:
    if limit <= 0:
        return ""
    filled = min(width, round(width * used / limit))
    return "█" * filled + "░" * (width - filled)


def sparkline(values: Sequence[float], lo: float | None = None, hi: float | None = None) -> str:
    """A text trend, e.g. ▁▂▃▅▇█. `hi` pins the top (the plan's limit) when given."""
    if not values:
        return ""
    low = min(values) if lo is None else lo
    high = max(values) if hi is None else max(hi, max(values))
    span = high - low
    if span <= 0:
        return _SPARKS[0] * len(values)
    top = len(_SPARKS) - 1
    return "".join(_SPARKS[max(0, min(top, round((v - low) / span * top)))] for v in values)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def when(at: float | None) -> str:
    """A Slack date token: shown in each reader's own time zone, UTC text as fallback."""
    if not at:
        return "—"
    fallback = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))
    return f"<!date^{int(at)}^{{date_short_pretty}} {{time_secs}}|{fallback}>"
