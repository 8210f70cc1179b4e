"""A forecast warning: the rate, the time to the limit, and where the numbers come from. Pure."""

from __future__ import annotations

from typing import Any

from bot.forecast.trend import Trend, rate_text
from bot.render.text import section
from bot.verification.verdicts import elapsed


def headline(trend: Trend, limit: int | None) -> str:
    """"+2 a minute: 20/20 in about 6 minutes"."""
    eta = f" in about {elapsed(trend.eta_s)}" if trend.eta_s is not None else ""
    return f"{rate_text(trend.per_minute)}: {limit}/{limit}{eta}"


def warning_text(app: str, trend: Trend, limit: int | None) -> str:
    return (
        f":chart_with_upwards_trend: `{app}`'s database connections are rising: "
        f"*{headline(trend, limit)}* (about {round(trend.level)}/{limit} now)"
    )


def warning_blocks(app: str, trend: Trend, limit: int | None, window_s: float) -> list[dict[str, Any]]:
    return [
        section(warning_text(app, trend, limit)),
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"Forecast from the trend of the last {elapsed(window_s)} of connection counts, "
                    f"before any refusal. `/pgconn {app}` shows who holds them; pgconn warns once per "
                    "rise.",
                }
            ],
        },
    ]
