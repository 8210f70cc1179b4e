"""Writing the post-mortem when an incident ends (the thin I/O around bot.postmortem.summary).

AlertEngine calls `on_ended` once an incident's thread has been told it is resolved, by itself
or by hand (`AlertEngine.resolve_by_hand`); build_services points it here. Exactly one process
writes each post-mortem (a Redis claim). It reads what was recorded during the incident (holder
samples, the first report's cause and budget, the audit), reads the budget now, posts the
summary in the thread, then uploads the chart and the Markdown with Slack's file flow
(files.getUploadURLExternal → POST → files.completeUploadExternal, through slack-sdk's
files_upload_v2), and keeps it all in Redis for `/pgconn APP postmortem`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError, SlackClientError

from bot.errors import PgconnError, StateUnavailable
from bot.postmortem.chart import HolderSample, holders_chart
from bot.postmortem.summary import (
    Action,
    BudgetFigure,
    PostMortem,
    Verified,
    build_postmortem,
    to_markdown,
    with_verification,
)
from bot.prevention.decisions import fixes
from bot.render.postmortem import CHART_TITLE, postmortem_blocks, postmortem_text
from bot.render.text import code, inert
from bot.report import budget_for
from bot.state.incidents import Incident
from bot.state.postmortems import PostmortemStore

if TYPE_CHECKING:
    from bot.dependencies import Services

log = logging.getLogger(__name__)

CHART_FILE = "connections-by-holder.png"


def first_signal(incident: Incident) -> str:
    if incident.excerpt:
        who = f" (logged by {code(incident.source, 20)})" if incident.source else ""
        return f"{code(incident.excerpt, 160)}{who}"
    conn = (
        f" at {incident.current}/{incident.limit}" if incident.current is not None and incident.limit else ""
    )
    return f"connections {incident.peak.value}{conn}"


async def gather(
    services: Services, store: PostmortemStore, incident: Incident
) -> tuple[PostMortem, list[HolderSample]]:
    """Everything the post-mortem says, read from Redis (and the budget now, from Heroku)."""
    settings = services.settings
    end = incident.resolved_at or time.time()
    samples = await store.holders(incident.id)
    start = await store.start(incident.id)
    counts: list[tuple[float, int]] = []
    metrics = services.alerts.metrics
    if metrics is not None:
        counts = [
            (s.at, s.active)
            for s in await metrics.recent(incident.app, incident.database, end)
            if incident.opened_at - 1 <= s.at <= end + 1
        ]
    actions = []
    try:
        for rec in await services.audit.recent(incident.app, count=50):
            if incident.opened_at - 1 <= rec.at <= end + 1:
                actions.append(Action(rec.at, rec.user, rec.action, rec.ok, inert(rec.result)))
        # Each fix's verified effect (bot.verification), wherever it was clicked.
        checked = [
            Verified(r.action, r.user, r.acted_at, r.line)
            for r in await services.verifications.for_app(incident.app)
        ]
        actions = with_verification(actions, checked)
    except StateUnavailable as exc:
        log.warning("post-mortem of %s without actions or their verification: %s", incident.id, exc.message)
    budget_after: BudgetFigure | None = None
    fix_texts: list[str] = []
    try:
        context = await services.contexts.load(incident.app)
        budget = await budget_for(services.heroku, context, headroom=settings.budget_headroom)
        budget_after = BudgetFigure(budget.total, budget.limit, budget.verdict)
        found = fixes(
            incident.app, budget, context.formation, context.config_vars, headroom=settings.budget_headroom
        )
        fix_texts = [f.text + (f" (`{f.command}`)" if f.command else "") for f in found.items]
    except PgconnError as exc:
        log.warning("post-mortem of %s without the budget now: %s", incident.id, exc.message)
    pm = build_postmortem(
        app=incident.app,
        database=incident.database,
        incident=incident.id,
        opened_at=incident.opened_at,
        resolved_at=end,
        resolved_by=incident.resolved_by,
        resolve_after_s=float(settings.resolve_after_s),
        first_signal=first_signal(incident),
        limit=incident.limit,
        refused=incident.fatal,
        samples=samples,
        counts=counts,
        actions=actions,
        start=start,
        budget_after=budget_after,
        fixes=fix_texts,
    )
    return pm, samples


def chart_of(pm: PostMortem, samples: list[HolderSample]) -> bytes:
    marks = [(a.at, a.label) for a in pm.actions]
    return holders_chart(
        samples, pm.limit, title=f"{pm.app} - connections by holder", marks=marks, end=pm.resolved_at
    )


async def write_postmortem(services: Services, incident: Incident) -> dict[str, Any] | None:
    """Post the incident's post-mortem in its thread (once, whichever process gets here first)."""
    store = PostmortemStore(services.redis)
    try:
        if not await store.claim(incident.id):
            return None
    except StateUnavailable as exc:
        log.warning("post-mortem of %s not written: %s", incident.id, exc.message)
        return None
    began = time.monotonic()
    try:
        pm, samples = await gather(services, store, incident)
        png = chart_of(pm, samples)
        markdown = to_markdown(pm, chart_name=CHART_FILE)
    except Exception:
        await store.release(incident.id)
        raise
    built_ms = (time.monotonic() - began) * 1000
    slack = services.slack
    try:
        await slack.chat_postMessage(
            channel=incident.channel,
            thread_ts=incident.ts,
            text=postmortem_text(pm),
            blocks=postmortem_blocks(pm),
        )
    except SlackApiError as exc:
        log.warning("post-mortem of %s not posted: %s", incident.id, exc.response.get("error"))
        await store.release(incident.id)
        return None
    files: list[dict[str, Any]] = []
    upload_error = ""
    try:
        uploaded = await slack.files_upload_v2(
            file_uploads=[
                {
                    "content": png,
                    "filename": CHART_FILE,
                    "title": CHART_TITLE,
                    "alt_txt": f"Stacked chart of {pm.app}'s connections by holder over the incident",
                },
                {
                    "content": markdown,
                    "filename": f"postmortem-{pm.app}.md",
                    "title": "Post-mortem (Markdown)",
                },
            ],
            channel=incident.channel,
            thread_ts=incident.ts,
            initial_comment=f"{CHART_TITLE}, and this post-mortem as Markdown for your own document.",
        )
        files = [
            {"id": f.get("id"), "name": f.get("name"), "permalink": f.get("permalink")}
            for f in uploaded.get("files") or []
        ]
    except (SlackApiError, SlackClientError) as exc:
        # The summary is in the thread already; say plainly what is missing and why.
        upload_error = (
            str(exc.response.get("error")) if isinstance(exc, SlackApiError) else type(exc).__name__
        )
        log.warning("post-mortem chart of %s not uploaded: %s", incident.id, upload_error)
        hint = (
            " (pgconn's Slack app needs the `files:write` scope)" if upload_error == "missing_scope" else ""
        )
        text = (
            f":warning: The chart of this post-mortem could not be uploaded: {inert(upload_error)}{hint}. "
            f"`/pgconn {pm.app} postmortem` shows the rest again."
        )
        with contextlib.suppress(SlackApiError):
            await slack.chat_postMessage(channel=incident.channel, thread_ts=incident.ts, text=text)
    record = {
        "postmortem": pm.to_dict(),
        "markdown": markdown,
        "channel": incident.channel,
        "thread_ts": incident.ts,
        "files": files,
        "upload_error": upload_error,
        "png_bytes": len(png),
        "built_ms": round(built_ms, 1),
    }
    try:
        await store.save(pm.app, incident.id, record)
    except StateUnavailable as exc:
        log.warning("post-mortem of %s posted but not kept: %s", incident.id, exc.message)
    log.info(
        "post-mortem of %s posted: built in %.0f ms, chart %d bytes, %d samples",
        incident.id,
        built_ms,
        len(png),
        pm.samples,
    )
    return record


async def latest_postmortem(services: Services, app: str) -> tuple[PostMortem, str | None] | None:
    """The app's latest post-mortem and a link to its thread (None when there is none yet)."""
    record = await PostmortemStore(services.redis).latest(app)
    if record is None:
        return None
    pm = PostMortem.from_dict(record["postmortem"])
    permalink = None
    try:
        found = await services.slack.chat_getPermalink(
            channel=record["channel"], message_ts=record["thread_ts"]
        )
        permalink = str(found.get("permalink") or "") or None
    except SlackApiError as exc:
        log.info("no permalink for the post-mortem of %s: %s", app, exc.response.get("error"))
    return pm, permalink
