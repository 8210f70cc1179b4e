"""HTTP routes that are not Slack: health, log drains, Heroku webhooks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bot.services import Services
from bot.state import redis_ok

Endpoint = Callable[[Request], Awaitable[Response]]


def healthz(services: Services) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        redis_up = await redis_ok(services.redis)
        return JSONResponse({"ok": True, "redis": "up" if redis_up else "down"})

    return endpoint
