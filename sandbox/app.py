"""The sandbox page: a small chat client over the Slack emulator, and the demo's console.

Every user action goes through the Slack emulator, which signs it and delivers it to
pgconn's `/slack/events` exactly as Slack would: slash commands, messages, button clicks
(as U0SANDBOX, an admin). The page polls `GET /sandbox/state`, built from what pgconn
really posted to the emulator and from live numbers (pg_stat_activity, PgBouncer's
SHOW POOLS).

POSTs take JSON only: a cross-site form cannot send `application/json` without a CORS
preflight this app never grants, so other web pages cannot press the buttons.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import psycopg
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from bot.alerts.ownership import INCIDENT_BUTTONS
from bot.prevention import BUDGET_VARS
from bot.render.remediation import ACTION_IDS
from emulators.slack_state import Message
from emulators.slack_surfaces import manifest_shortcuts
from sandbox.logplex import shown_url
from sandbox.run import (
    ALERT_CHANNEL,
    APP_ROLE,
    BILLING_CHANNEL,
    DEMO_APP,
    MAX_DYNOS,
    ME,
    OPS_CHANNEL,
    Sandbox,
)

STATIC = Path(__file__).resolve().parent / "static"
MAX_TEXT = 2000
# The message shortcut as the Slack app's manifest declares it (its only one).
DIAGNOSE_SHORTCUT = next(iter(manifest_shortcuts()), "diagnose_message")


class BadRequest(Exception):
    pass


def create_app(sandbox: Sandbox) -> Starlette:
    channels = (OPS_CHANNEL, ALERT_CHANNEL, BILLING_CHANNEL)

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def state(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(build_state, sandbox, channels))

    async def command(request: Request) -> Response:
        body = await _json(request)
        channel = _channel(body, channels)
        text = str(body.get("text") or "").strip()
        if not text or len(text) > MAX_TEXT:
            raise BadRequest("type something (at most 2000 characters)")
        slack = sandbox.slack
        assert slack is not None
        if text.startswith("/"):
            name, _, rest = text.partition(" ")
            if name != "/pgconn":
                raise BadRequest(f"{name} is not a command here: try /pgconn help")
            response = await slack.send_slash_command(rest.strip(), user_id=ME, channel_id=channel)
            return JSONResponse({"ok": response.status_code == 200, "status": response.status_code})
        # A plain message: stored, and delivered to pgconn as a message event.
        await slack.post_as(channel, text, user=ME)
        return JSONResponse({"ok": True})

    async def click(request: Request) -> Response:
        body = await _json(request)
        channel = _channel(body, channels)
        action_id = str(body.get("action_id") or "")
        if action_id not in (*ACTION_IDS, *(b.id for b in INCIDENT_BUTTONS)):
            raise BadRequest("unknown button")
        ts = str(body.get("ts") or "")
        slack = sandbox.slack
        assert slack is not None
        try:
            response = await slack.click(
                action_id=action_id,
                value=str(body.get("value") or ""),
                user_id=ME,
                channel_id=channel,
                message_ts=ts or None,
                block_id=str(body.get("block_id") or "") or None,
            )
        except ValueError as exc:  # the message or button is gone
            raise BadRequest(str(exc)) from None
        return JSONResponse({"ok": response.status_code == 200, "status": response.status_code})

    async def open_home(request: Request) -> Response:
        """The person opens pgconn's Home tab: Slack sends `app_home_opened` (bot.home)."""
        await _json(request)
        slack = sandbox.slack
        assert slack is not None
        response = await slack.open_home(ME)
        return JSONResponse({"ok": response.status_code == 200, "status": response.status_code})

    async def home_click(request: Request) -> Response:
        body = await _json(request)
        slack = sandbox.slack
        assert slack is not None
        try:
            response = await slack.click_home(
                ME, str(body.get("action_id") or ""), value=str(body.get("value") or "")
            )
        except ValueError as exc:  # no such button on the Home tab any more
            raise BadRequest(str(exc)) from None
        return JSONResponse({"ok": response.status_code == 200, "status": response.status_code})

    async def shortcut(request: Request) -> Response:
        """"Diagnose with pgconn" from a message's menu: Slack sends `message_action`."""
        body = await _json(request)
        channel = _channel(body, channels)
        slack = sandbox.slack
        assert slack is not None
        try:
            response = await slack.message_shortcut(
                DIAGNOSE_SHORTCUT, user_id=ME, channel_id=channel, message_ts=str(body.get("ts") or "")
            )
        except ValueError as exc:  # the message is gone
            raise BadRequest(str(exc)) from None
        return JSONResponse({"ok": response.status_code == 200, "status": response.status_code})

    async def exhaust(request: Request) -> Response:
        await _json(request)
        return JSONResponse({"ok": True, **await run_in_threadpool(sandbox.exhaust)})

    async def flood(request: Request) -> Response:
        await _json(request)
        return JSONResponse({"ok": True, **await run_in_threadpool(sandbox.flood)})

    async def ramp(request: Request) -> Response:
        await _json(request)
        return JSONResponse({"ok": True, **await run_in_threadpool(sandbox.ramp)})

    async def scale(request: Request) -> Response:
        body = await _json(request)
        process_type, quantity = body.get("type"), body.get("quantity")
        if process_type not in {f.type for f in list(sandbox.app.formation.values())}:
            raise BadRequest("unknown process type")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or not 0 <= quantity <= MAX_DYNOS:
            raise BadRequest(f"quantity must be a whole number from 0 to {MAX_DYNOS}")
        return JSONResponse({"ok": True, **await run_in_threadpool(sandbox.scale, process_type, quantity)})

    async def stop_load(request: Request) -> Response:
        await _json(request)
        await run_in_threadpool(sandbox.stop_load)
        return JSONResponse({"ok": True})

    async def file(request: Request) -> Response:
        """A file pgconn uploaded (as Slack's url_private would serve it to the workspace)."""
        slack = sandbox.slack
        assert slack is not None
        with slack.lock:
            stored = slack.files.get(request.path_params["file_id"])
            if stored is None or not stored.completed or stored.data is None:
                return Response("not found", status_code=404)
            # Markdown as text, so the browser shows it instead of downloading it.
            kind = "text/plain; charset=utf-8" if stored.mimetype.startswith("text/") else stored.mimetype
            return Response(stored.data, media_type=kind, headers={"Cache-Control": "no-store"})

    async def bad_request(request: Request, exc: Exception) -> Response:
        return JSONResponse({"ok": False, "error": str(exc)}, status_code=400)

    return Starlette(
        routes=[
            Route("/", index, methods=["GET"]),
            Route("/sandbox/state", state, methods=["GET"]),
            Route("/sandbox/command", command, methods=["POST"]),
            Route("/sandbox/click", click, methods=["POST"]),
            Route("/sandbox/home/open", open_home, methods=["POST"]),
            Route("/sandbox/home/click", home_click, methods=["POST"]),
            Route("/sandbox/shortcut", shortcut, methods=["POST"]),
            Route("/sandbox/exhaust", exhaust, methods=["POST"]),
            Route("/sandbox/ramp", ramp, methods=["POST"]),
            Route("/sandbox/flood", flood, methods=["POST"]),
            Route("/sandbox/stop-load", stop_load, methods=["POST"]),
            Route("/sandbox/scale", scale, methods=["POST"]),
            Route("/sandbox/files/{file_id}", file, methods=["GET"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        exception_handlers={BadRequest: bad_request},
    )


async def _json(request: Request) -> dict[str, Any]:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise BadRequest("send JSON (Content-Type: application/json)")
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise BadRequest("the body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("send a JSON object")
    return body


def _channel(body: dict[str, Any], channels: tuple[str, ...]) -> str:
    channel = str(body.get("channel") or "")
    if channel not in channels:
        raise BadRequest("unknown channel")
    return channel


# -- the state the page polls ------------------------------------------------------------


def build_state(sandbox: Sandbox, channels: tuple[str, ...]) -> dict[str, Any]:
    database = _database_state(sandbox)
    return {
        "now": time.time(),
        "me": ME,
        "app": DEMO_APP,
        "slack": _slack_state(sandbox, channels),
        # pgconn's Home tab as the person at the page last had it published (views.publish).
        "home": _home_state(sandbox),
        "database": database,
        "pgbouncer": sandbox.fleet.snapshot(),
        "load": _load_state(sandbox, database),
        "heroku": _heroku_state(sandbox),
        "drain": sandbox.logplex.recent(),
        "pagerduty": _pagerduty_state(sandbox),
        "events": sandbox.events.recent(),
        "bot": {
            "url": sandbox.bot.url if sandbox.bot else None,
            "alive": bool(sandbox.bot and sandbox.bot.alive()),
        },
        # Loopback and trust auth: no secret in it. Tests read the real numbers with it.
        "postgres": {"admin_dsn": sandbox.pg.dsn() if sandbox.pg else None, "role": APP_ROLE},
    }


def _pagerduty_state(sandbox: Sandbox) -> dict[str, Any]:
    """The emulated PagerDuty service: its incidents (newest first) and how many events came."""
    pd = sandbox.pagerduty
    return {
        "incidents": [
            {
                "number": i.number,
                "dedup_key": i.dedup_key,
                "status": i.status,
                "summary": i.summary,
                "severity": i.severity,
                "log": list(i.log),
            }
            for i in sorted(pd.all_incidents(), key=lambda i: -i.number)[:5]
        ],
        "events": [
            {"at": e.at, "status": e.status, "action": (e.body or {}).get("event_action"),
             "outcome": e.outcome}
            for e in pd.received()[-8:][::-1]
        ],
    }


def _message(slack: Any, m: Message) -> dict[str, Any]:
    user = slack.users.get(m.user) if m.user else None
    is_bot = m.bot_id is not None and m.bot_id == slack.bot_id
    return {
        "ts": m.ts,
        "thread_ts": m.thread_ts,
        "user": m.user,
        "author": "pgconn" if is_bot else (user.real_name if user else (m.username or m.user or "?")),
        "bot": is_bot,
        "text": m.text,
        "blocks": m.blocks,
        "edited": len(m.edits),
        # Files shared with the message (files.completeUploadExternal), served by /sandbox/files/.
        "files": [
            {
                "id": f.id,
                "name": f.filename,
                "title": f.title or f.filename,
                "mimetype": f.mimetype,
                "size": len(f.data or b""),
                "url": f"/sandbox/files/{f.id}",
            }
            for f in (slack.files.get(i) for i in m.files)
            if f is not None
        ],
    }


def _slack_state(sandbox: Sandbox, channels: tuple[str, ...]) -> dict[str, Any]:
    slack = sandbox.slack
    assert slack is not None
    with slack.lock:
        out: list[dict[str, Any]] = []
        for cid in channels:
            channel = slack.channels[cid]
            top: list[dict[str, Any]] = []
            replies: dict[str, list[dict[str, Any]]] = {}
            for m in slack.messages(cid):
                if m.is_reply and m.thread_ts:
                    replies.setdefault(m.thread_ts, []).append(_message(slack, m))
                else:
                    top.append(_message(slack, m))
            for msg in top:
                msg["replies"] = replies.get(msg["ts"], [])
            ephemerals = [
                {
                    "ts": e["message_ts"],
                    "thread_ts": e.get("thread_ts"),
                    "text": e["text"],
                    "blocks": e["blocks"],
                    "edited": len(e.get("edits") or []),
                    "author": "pgconn",
                    "bot": True,
                    "ephemeral": True,
                }
                for e in slack.ephemerals
                if e["channel"] == cid and e["user"] == ME and not e["deleted"]
            ]
            out.append({"id": cid, "name": channel.name, "messages": top, "ephemerals": ephemerals})
        users = {u.id: u.name for u in slack.users.values()}
    return {"channels": out, "users": users}


def _home_state(sandbox: Sandbox) -> dict[str, Any] | None:
    slack = sandbox.slack
    view = slack.home_view(ME) if slack is not None else None
    if view is None:
        return None
    return {"blocks": view["blocks"], "published_at": view.get("published_at")}


def _database_state(sandbox: Sandbox) -> dict[str, Any]:
    try:
        activity = sandbox.role_activity()
        limit = sandbox.role_limit()
    except psycopg.Error as exc:
        return {"error": str(exc).strip().splitlines()[-1][:200] if str(exc).strip() else "unreachable"}
    used = sum(r["count"] for r in activity)
    return {"used": used, "limit": limit, "activity": activity}


def _load_state(sandbox: Sandbox, database: dict[str, Any]) -> dict[str, Any]:
    load, traffic = sandbox.load, sandbox.traffic
    # What the dynos really hold is what the server says: a kill or a restart closes them
    # without the load generator noticing until it next uses them.
    held = sum(
        r["count"] for r in database.get("activity", []) if not r["application_name"].startswith("pgconn")
    )
    out: dict[str, Any] = {"mode": "idle", "held": held}
    if load is not None and load.failures:
        out["refused"] = len(load.failures)
        out["last_refusal"] = load.failures[-1]
    if load is not None and load.connections:
        out["mode"] = "direct"
        out["opened"] = len(load.connections)
    if traffic is not None:
        out.update(
            mode="pgbouncer",
            clients=traffic.clients,
            connected=traffic.connected,
            queries=traffic.queries,
            errors=len(traffic.errors),
            last_error=traffic.errors[-1] if traffic.errors else None,
        )
    return out


def _heroku_state(sandbox: Sandbox) -> dict[str, Any]:
    app = sandbox.app
    budget = sandbox.budget()
    # The emulator's thread changes these while we read: copy each one in a single step.
    formation, dynos, config = list(app.formation.values()), list(app.dynos.values()), dict(app.config_vars)
    return {
        "plan": app.plan,
        "formation": [{"type": f.type, "quantity": f.quantity, "command": f.command} for f in formation],
        "dynos": [{"name": d.name, "state": d.state} for d in dynos],
        "buildpacks": list(app.buildpacks),
        # The budget's own inputs only: the rest (DATABASE_URL) carries a password.
        "config": {k: v for k, v in config.items() if k in BUDGET_VARS},
        "releases": [
            {"version": r.version, "description": r.description} for r in list(app.releases)[-4:][::-1]
        ],
        "drains": [shown_url(d.url) for d in list(app.log_drains)],
        "budget": {
            "total": budget.total,
            "limit": budget.limit,
            "verdict": budget.verdict,
            "lines": [
                {"type": ln.process_type, "total": ln.total, "explanation": ln.explanation}
                for ln in budget.lines
            ],
            "headroom": budget.headroom,
        },
    }
