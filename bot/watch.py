"""`/pgconn APP watch|unwatch`: pgconn's log drain and webhook subscription on the app.

The drain brings the log lines alerts come from; the webhook tells pgconn at once when
the app's formation or config changes, so it stops trusting what it cached. Each is
added once: a second `watch` changes nothing. Neither the drain token nor the webhook
secret ever appears in a message.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from slack_sdk.errors import SlackApiError

from bot.drain_auth import drain_password, new_nonce
from bot.errors import (
    ActionBusy,
    ConfigError,
    HerokuError,
    HerokuRejected,
    PgconnError,
    StateUnavailable,
)
from bot.heroku import HerokuClient
from bot.prevention.watcher import BudgetWatcher
from bot.state.drains import DrainNonces
from bot.state.remediation import AuditRecord
from bot.state.webhooks import WebhookSecrets
from bot.webhooks import INCLUDE

if TYPE_CHECKING:
    from bot.dependencies import Services

log = logging.getLogger(__name__)

DRAIN_PATH = "/drains/heroku/{app}"
WEBHOOK_PATH = "/webhooks/heroku/{app}"


def drain_url(public_url: str, app: str, master: str, nonce: str) -> str:
    """https://NONCE:PASSWORD@host/drains/heroku/APP — logplex sends them as Basic auth.

    The password is the app's own, derived from the master secret (bot.drain_auth)."""
    parts = urlsplit(public_url)
    password = drain_password(master, app, nonce)
    netloc = f"{nonce}:{password}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/") + DRAIN_PATH.format(app=app), "", ""))


def webhook_url(public_url: str, app: str) -> str:
    """https://host/webhooks/heroku/APP — deliveries prove themselves by their signature."""
    parts = urlsplit(public_url)
    netloc = str(parts.hostname) + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/") + WEBHOOK_PATH.format(app=app), "", ""))


def _ours(url: str, public_url: str, path: str) -> bool:
    target = urlsplit(public_url)
    parts = urlsplit(url)
    return parts.hostname == target.hostname and parts.path.rstrip("/").endswith(path)


def _mine(items: list[dict[str, Any]], public_url: str, path: str) -> list[dict[str, Any]]:
    """The drains or webhook subscriptions (Heroku's JSON) that point at this pgconn's `path`."""
    return [i for i in items if _ours(str(i.get("url", "")), public_url, path)]


def _require(public_url: str | None, token: str | None) -> tuple[str, str]:
    if not public_url:
        raise ConfigError("PGCONN_PUBLIC_URL is not set, so pgconn cannot tell Heroku where to send logs")
    if not token:
        raise ConfigError("PGCONN_DRAIN_TOKEN is not set, so the drain route would accept nothing")
    return public_url, token


@dataclass(frozen=True)
class Subscription:
    """What `watch` did about the webhook: changed it or not, and the sentence saying so."""

    changed: bool
    sentence: str


async def watch(
    heroku: HerokuClient,
    app: str,
    public_url: str | None,
    token: str | None,
    secrets: WebhookSecrets,
    watcher: BudgetWatcher | None = None,
    alert_channel: str | None = None,
    nonces: DrainNonces | None = None,
) -> str:
    public_url, token = _require(public_url, token)
    drain_added = await _add_drain(heroku, app, public_url, token, nonces)
    webhook = await _subscribe(heroku, app, public_url, secrets)
    budget = await _baseline(watcher, app, alert_channel) if watcher is not None else ""
    rotated = (
        " Its drain password was rotated: the URL it had before is refused from a minute on."
        if nonces is not None
        else ""
    )
    if not drain_added and not webhook.changed:
        return f"pgconn already receives `{app}`'s logs and webhooks.{rotated or ' Nothing changed.'}{budget}"
    if drain_added:
        head = (
            f"pgconn now receives `{app}`'s logs and will open an alert thread when its database runs "
            "out of connections."
        )
    else:
        head = f"pgconn already receives `{app}`'s logs.{rotated}"
    return f"{head}\n{webhook.sentence}{budget}"


async def _baseline(watcher: BudgetWatcher, app: str, alert_channel: str | None) -> str:
    """The budget as it is now, remembered so the first change has a 'before'; one sentence."""
    try:
        budget = await watcher.baseline(app)
    except PgconnError as exc:
        log.warning("watch %s: budget baseline not taken: %s", app, type(exc).__name__)
        return f"\nThe budget could not be computed now ({exc.message}); the first change will set it."
    where = (
        f"<#{alert_channel}>"
        if alert_channel
        else "the alert channel (neither PGCONN_APP_ROUTES nor PGCONN_ALERT_CHANNEL names one)"
    )
    now = f"{budget.total} of {budget.limit} connections ({budget.verdict})"
    if budget.verdict == "fits":
        return f"\nBudget now: {now}. pgconn warns in {where} if a scale-up or release breaks it."
    return (
        f"\nBudget now: {now} — it already does not fit (`/pgconn {app} budget`). pgconn warns in "
        f"{where} when a change makes it worse, and says when it fits again."
    )


async def _add_drain(
    heroku: HerokuClient, app: str, public_url: str, token: str, nonces: DrainNonces | None
) -> bool:
    """Add pgconn's drain; with `nonces`, replace one already there by a URL with a new password.

    True when the app had no drain of pgconn's before. The new drain is added before the old
    one is removed, so no line is lost in between (the old password stays valid for a minute).
    """
    path = DRAIN_PATH.format(app=app)

    async def ours() -> list[dict[str, Any]]:
        return _mine(await heroku.log_drains(app), public_url, path)

    before = await ours()
    if before and nonces is None:
        return False
    try:
        nonce = await nonces.rotate(app) if nonces is not None else new_nonce()
    except StateUnavailable:
        if before:
            return False  # keep the drain that works rather than rotate into a state nobody keeps
        nonce = new_nonce()  # without Redis, any password pgconn made for the app is taken
    try:
        await heroku.add_log_drain(app, drain_url(public_url, app, token, nonce))
    except HerokuRejected:
        if nonces is None and await ours():  # another pgconn process added it a moment ago
            return False
        raise
    for drain in before:
        await heroku.remove_log_drain(app, str(drain.get("id")))
    log.info("watch %s: log drain %s", app, "replaced (password rotated)" if before else "added")
    return not before


async def _subscribe(
    heroku: HerokuClient, app: str, public_url: str, secrets: WebhookSecrets
) -> Subscription:
    """Subscribe to the app's formation and release webhooks, signed with a secret kept in Redis.

    The secret is stored before Heroku hears of it: a subscription whose secret no process
    knows would have every delivery refused.
    """
    try:
        secret, made_now = await secrets.ensure(app)
    except StateUnavailable as exc:
        return Subscription(True, _not_subscribed(app, exc.message))
    url = webhook_url(public_url, app)
    path = WEBHOOK_PATH.format(app=app)
    try:
        mine = _mine(await heroku.webhooks(app), public_url, path)
        if mine and not made_now:
            return Subscription(False, f"pgconn is already subscribed to `{app}`'s webhooks.")
        # A subscription whose secret was lost (Redis emptied) can never be verified again:
        # Heroku does not show secrets, so it is replaced by one signed with the new secret.
        for hook in mine:
            await heroku.remove_webhook(app, str(hook.get("id")))
        try:
            await heroku.add_webhook(app, url, include=INCLUDE, secret=secret)
        except HerokuRejected:
            # Another pgconn process subscribed a moment ago, with the same secret (SET NX).
            if _mine(await heroku.webhooks(app), public_url, path):
                return Subscription(False, f"pgconn is already subscribed to `{app}`'s webhooks.")
            raise
    except HerokuError as exc:
        log.warning("watch %s: webhook subscription failed: %s", app, type(exc).__name__)
        if made_now:
            # Whatever Heroku kept, the next `watch` must not take it for a working subscription.
            with contextlib.suppress(StateUnavailable):
                await secrets.delete(app)
        return Subscription(True, _not_subscribed(app, exc.message))
    log.info("watch %s: webhook subscription %s", app, "replaced" if mine else "added")
    what = "formation and release webhooks"
    if mine:
        return Subscription(
            True,
            f"Its subscription to `{app}`'s {what} was replaced: the secret that verifies them had been "
            "lost from pgconn's state store.",
        )
    return Subscription(
        True,
        f"It is also subscribed to `{app}`'s {what}, so scaling, deploys and config changes are "
        "seen at once.",
    )


def _not_subscribed(app: str, why: str) -> str:
    return (
        f":warning: Heroku webhooks for `{app}` could not be set up: {why}. pgconn still notices "
        f"scaling and config changes, only minutes later; run `/pgconn {app} watch` again to retry."
    )


async def unwatch(
    heroku: HerokuClient,
    app: str,
    public_url: str | None,
    secrets: WebhookSecrets,
    watcher: BudgetWatcher | None = None,
    nonces: DrainNonces | None = None,
) -> str:
    if not public_url:
        raise ConfigError("PGCONN_PUBLIC_URL is not set, so pgconn cannot tell which drain is its own")
    drains = _mine(await heroku.log_drains(app), public_url, DRAIN_PATH.format(app=app))
    for drain in drains:
        await heroku.remove_log_drain(app, str(drain.get("id")))
    hooks = _mine(await heroku.webhooks(app), public_url, WEBHOOK_PATH.format(app=app))
    for hook in hooks:
        await heroku.remove_webhook(app, str(hook.get("id")))
    try:
        await secrets.delete(app)
    except StateUnavailable:
        # Harmless: no subscription signs with it any more, and the next watch reuses it.
        log.warning("unwatch %s: the webhook secret could not be deleted (Redis unavailable)", app)
    if watcher is not None:
        await watcher.forget(app)
    if nonces is not None:
        try:
            await nonces.revoke(app)
        except StateUnavailable:
            log.warning("unwatch %s: the drain password could not be retired (Redis unavailable)", app)
    log.info("unwatch %s: %d log drain(s), %d webhook subscription(s) removed", app, len(drains), len(hooks))
    if drains and hooks:
        return (
            f"Removed pgconn's log drain and webhook subscription from `{app}`: no more automatic "
            "alerts for it."
        )
    if drains:
        return f"Removed pgconn's log drain from `{app}`: no more automatic alerts for it."
    if hooks:
        return f"Removed pgconn's webhook subscription from `{app}` (it had no log drain there)."
    return f"pgconn had no log drain or webhook subscription on `{app}`; nothing changed."


async def as_admin(services: Services, app: str, verb: Literal["watch", "unwatch"], user: str) -> str:
    """`/pgconn APP watch|unwatch` run by `user`, with what each needs taken from `services`."""
    s = services.settings

    async def run() -> str:
        if verb == "watch":
            return await watch(
                services.heroku,
                app,
                s.public_url,
                s.drain_token,
                services.webhook_secrets,
                services.budget_watch,
                services.apps.for_app(app).channel,
                services.drain_nonces,
            )
        return await unwatch(
            services.heroku,
            app,
            s.public_url,
            services.webhook_secrets,
            services.budget_watch,
            services.drain_nonces,
        )

    return await as_admin_action(services, app, verb, user, run)


async def as_admin_action(
    services: Services, app: str, verb: str, user: str, run: Callable[[], Awaitable[str]]
) -> str:
    """`watch` / `unwatch` as the admin actions they are (bot.authz): one at a time per app
    (the remediation lock: two rotations at once could leave the drain on a retired password),
    recorded in the audit stream, and announced in the alert channel, where a silenced app
    would otherwise go unnoticed. Returns the sentence for the person who ran it."""
    token: str | None = None
    try:
        token = await services.ledger.lock(app)
    except ActionBusy as exc:
        return f":hourglass: `/pgconn {app} {verb}` not run: {exc.message}."
    except StateUnavailable:
        pass  # without Redis, watch still adds the drain (and says webhooks could not be set up)
    try:
        try:
            message = await run()
        except PgconnError as exc:
            await _record(services, app, verb, user, ok=False, result=f"failed: {exc.message}")
            raise
    finally:
        if token is not None:
            await services.ledger.unlock(app, token)
    first = message.split("\n", 1)[0]
    await _record(services, app, verb, user, ok=True, result=first)
    # The app's own channel (bot.apps): another team's channel never hears of this app.
    channel = services.apps.for_app(app).channel
    if channel:
        try:
            await services.slack.chat_postMessage(
                channel=channel, text=f":information_source: <@{user}> ran `/pgconn {app} {verb}`: {first}"
            )
        except SlackApiError as exc:
            error = exc.response.get("error")
            log.warning("%s %s: the notice in the alert channel failed: %s", verb, app, error)
    return message


async def _record(services: Services, app: str, verb: str, user: str, *, ok: bool, result: str) -> None:
    recorded = await services.audit.record(
        AuditRecord(at=time.time(), user=user, action=verb, app=app, ok=ok, result=result[:300])
    )
    if not recorded:
        log.warning("%s %s by %s: not written to the audit log (state store unavailable)", verb, app, user)
