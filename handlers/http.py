"""HTTP routes that are not Slack: health, log drains, Heroku webhooks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from bot import setup_page
from bot.dependencies import Services
from bot.state import redis_ok

Endpoint = Callable[[Request], Awaitable[Response]]


async def read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None once it grows past `limit` (a chunked body has no Content-Length)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def healthz(services: Services) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        redis_up = await redis_ok(services.redis)
        return JSONResponse(
            {"ok": True, "redis": "up" if redis_up else "down", "pending": services.pending_work}
        )

    return endpoint


def setup(services: Services) -> Endpoint:
    """app.json's success_url: what is missing, and the Slack manifest with this app's URL."""

    async def endpoint(request: Request) -> Response:
        base_url = services.settings.public_url
        if base_url is None:
            # Heroku's router terminates TLS and says so in X-Forwarded-Proto.
            scheme = request.headers.get("x-forwarded-proto", request.url.scheme).split(",")[0].strip()
            host = request.headers.get("host", "localhost")
            base_url = f"{'https' if scheme == 'https' else 'http'}://{host}"
        page = setup_page.render(services.settings, base_url, await redis_ok(services.redis))
        return HTMLResponse(page)

    return endpoint
