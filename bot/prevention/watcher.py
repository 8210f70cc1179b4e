"""Prevention, the I/O half: a formation or release change → the budget anew → a warning
thread in the alert channel, its follow-ups, and its resolution.

One evaluation per app at a time across processes (a Redis lock), each reading the
app afresh from Heroku, so however deliveries interleave, the thread ends up telling
the state Heroku has now. The decisions themselves are decisions.py's `decide`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from slack_sdk.web.async_client import AsyncWebClient

from bot.budget import Budget
from bot.config import Settings
from bot.errors import PgconnError, StateUnavailable
from bot.heroku import HerokuClient
from bot.prevention.decisions import (
    BudgetSnapshot,
    Fixes,
    OpenWarning,
    Step,
    WatchState,
    decide,
    describe_change,
    fixes,
)
from bot.readings import AppContext, ProcessType
from bot.render.prevention import (
    follow_up_reply,
    resolved_blocks,
    resolved_reply,
    warning_blocks,
    warning_text,
)
from bot.report import budget_for, load_app_context
from bot.state.prevention import BudgetWatchStore
from bot.webhooks import WebhookEvent

log = logging.getLogger(__name__)


class BudgetWatcher:
    def __init__(
        self,
        settings: Settings,
        *,
        heroku: HerokuClient,
        slack: AsyncWebClient,
        store: BudgetWatchStore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.heroku = heroku
        self.slack = slack
        self.store = store
        self.clock = clock

    async def measure(self, app: str) -> tuple[AppContext, Budget]:
        """The app as Heroku has it now, and its budget against the plan's limit."""
        context = await load_app_context(self.heroku, app)
        return context, await budget_for(self.heroku, context, headroom=self.settings.budget_headroom)

    async def baseline(self, app: str) -> Budget:
        """Remember the budget as it is (at `watch`), so the first change has a 'before'."""
        context, budget = await self.measure(app)
        async with self.store.lock(app):
            state = await self.store.load(app)
            await self.store.save(app, replace(state, snapshot=BudgetSnapshot.of(budget, *_inputs(context))))
        return budget

    async def handle(self, app: str, event: WebhookEvent, delivery_id: str) -> Step | None:
        """Evaluate a delivery; None when that failed. A failure frees the delivery id, so Heroku's
        retry of it (level "sync") can try again; nothing half-posted is stored."""
        try:
            step = await self.on_change(app, event)
            await self.store.finish_delivery(app, delivery_id)
            return step
        except PgconnError as exc:
            log.warning("budget watch %s: %s not evaluated: %s", app, event.resource, exc.message)
        except Exception:  # noqa: BLE001 - Slack refusals, network errors and bugs alike are logged
            log.exception("budget watch %s: %s not evaluated", app, event.resource)
        await self.store.release_delivery(app, delivery_id)
        return None

    async def on_change(self, app: str, event: WebhookEvent | None) -> Step:
        async with self.store.lock(app):
            context, budget = await self.measure(app)
            state = await self.store.load(app)
            new = BudgetSnapshot.of(budget, *_inputs(context))
            decision = decide(state, new)
            change = describe_change(event, state.snapshot, new)
            log.info(
                "budget watch %s: %s → %s (%d of %d): %s",
                app,
                state.snapshot.verdict if state.snapshot else "unknown",
                new.verdict,
                new.total,
                new.limit,
                decision.step,
            )
            stored = decision.state
            seen = _Change(app, change, context, budget, event)
            if decision.step == "warn":
                stored = await self._warn(seen, stored)
            elif decision.step == "follow_up" and state.warning is not None:
                await self._follow_up(seen, state.warning)
            elif decision.step == "resolve" and state.warning is not None:
                await self._resolve(app, change, budget, state.warning)
            await self.store.save(app, stored)
            return decision.step

    async def _warn(self, seen: _Change, state: WatchState) -> WatchState:
        app, change, budget = seen.app, seen.change, seen.budget
        # The app's own channel (bot.apps), else PGCONN_ALERT_CHANNEL.
        channel = self.settings.directory.for_app(app).channel
        if channel is None:
            log.warning("budget watch %s: over budget but no alert channel is set for it: no warning", app)
            return state
        result = await self.slack.chat_postMessage(
            channel=channel,
            text=warning_text(app, change, budget),
            blocks=warning_blocks(app, change, budget, self._fixes(seen), at=self.clock()),
        )
        ts, channel = str(result["ts"]), str(result.get("channel") or channel)
        log.info("budget watch %s: warning posted (%s)", app, ts)
        warning = OpenWarning(channel, ts, self.clock(), change, budget.verdict, budget.total)
        return replace(state, warning=warning)

    async def _follow_up(self, seen: _Change, warning: OpenWarning) -> None:
        app, change, budget = seen.app, seen.change, seen.budget
        await self.slack.chat_postMessage(
            channel=warning.channel, thread_ts=warning.ts, text=follow_up_reply(change, budget)
        )
        # The reply is what matters; a parent that keeps its old numbers is no reason to fail.
        with contextlib.suppress(Exception):
            await self.slack.chat_update(
                channel=warning.channel,
                ts=warning.ts,
                text=warning_text(app, warning.change, budget),
                blocks=warning_blocks(
                    app,
                    warning.change,
                    budget,
                    self._fixes(seen),
                    at=warning.opened_at,
                ),
            )

    async def _resolve(self, app: str, change: str, budget: Budget, warning: OpenWarning) -> None:
        await self.slack.chat_postMessage(
            channel=warning.channel, thread_ts=warning.ts, text=resolved_reply(change, budget)
        )
        log.info("budget watch %s: warning %s resolved", app, warning.ts)
        with contextlib.suppress(Exception):
            await self.slack.chat_update(
                channel=warning.channel,
                ts=warning.ts,
                text=f"{app}: the connection budget fits again",
                blocks=resolved_blocks(app, warning.change, change, budget, at=self.clock()),
            )

    def _fixes(self, seen: _Change) -> Fixes:
        event = seen.event
        changed = event.formation.process_type if event is not None and event.formation else None
        return fixes(
            seen.app,
            seen.budget,
            seen.context.formation,
            seen.context.config_vars,
            changed_type=changed,
            headroom=self.settings.budget_headroom,
        )

    async def forget(self, app: str) -> None:
        """`unwatch`: no thread to follow, no baseline to compare with."""
        with contextlib.suppress(StateUnavailable):
            await self.store.forget(app)


@dataclass(frozen=True)
class _Change:
    """One evaluated change: the app, what changed (a sentence), the app as read now, its budget,
    and the webhook event that said so (None when the change came from elsewhere)."""

    app: str
    change: str
    context: AppContext
    budget: Budget
    event: WebhookEvent | None


def _inputs(context: AppContext) -> tuple[tuple[ProcessType, ...], dict[str, str]]:
    return context.formation, context.config_vars
