"""The page app.json's `success_url` lands on (`GET /setup`): what is still missing, and the Slack
app manifest with this deployment's own URL filled in. Pure: rendered from settings and facts.

It names variables, never their values: anyone who can reach the URL can read it.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

from bot.config import Settings

MANIFEST_PATH = Path(__file__).resolve().parent.parent / "manifest.yml"
# The placeholder manifest.yml carries; replaced by the deployment's URL.
MANIFEST_PLACEHOLDER = "https://pgconn.example.com"


@dataclass(frozen=True)
class Step:
    variable: str
    done: bool
    what_for: str


def steps(settings: Settings, redis_up: bool) -> list[Step]:
    """What a new deployment still lacks, feature by feature."""
    routes = {app: settings.directory.for_app(app) for app in settings.apps}
    return [
        Step("PGCONN_PUBLIC_URL", settings.public_url is not None, "`watch` registers the log drain at it"),
        Step(
            "PGCONN_DRAIN_TOKEN", settings.drain_token is not None, "the log drain route refuses everything"
        ),
        # Done when every app has a channel / admins, its own (PGCONN_APP_ROUTES) or the default.
        Step(
            "PGCONN_ALERT_CHANNEL",
            all(routes[app].channel for app in settings.apps),
            "alert threads open in this channel, for apps that name none in PGCONN_APP_ROUTES",
        ),
        Step(
            "PGCONN_ADMINS",
            all(routes[app].admins or routes[app].admin_groups for app in settings.apps),
            "only these users and groups may press the buttons of apps that name no admins in "
            "PGCONN_APP_ROUTES; empty: nobody may",
        ),
        Step("REDIS_URL", redis_up, "buttons, alerts and `watch` need a reachable Redis"),
    ]


def manifest(base_url: str, template: str | None = None) -> str:
    """manifest.yml with every Slack request URL pointing at `base_url`."""
    if template is None:
        template = MANIFEST_PATH.read_text() if MANIFEST_PATH.exists() else ""
    return template.replace(MANIFEST_PLACEHOLDER, base_url.rstrip("/"))


def render(settings: Settings, base_url: str, redis_up: bool, template: str | None = None) -> str:
    e = html.escape
    rows = "".join(
        f"<li>{'✅' if s.done else '⬜'} <code>{e(s.variable)}</code>"
        f"{' is set' if s.done else ' is not set'}: {e(s.what_for.replace('`', ''))}</li>"
        for s in steps(settings, redis_up)
    )
    missing = [s.variable for s in steps(settings, redis_up) if not s.done]
    hint = ""
    if settings.public_url is None:
        hint = f"<p>Set it with <code>heroku config:set PGCONN_PUBLIC_URL={e(base_url)}</code>.</p>"
    text = manifest(base_url, template)
    manifest_block = (
        f"<pre>{e(text)}</pre>" if text else "<p>manifest.yml is not in this build; use the repository's.</p>"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pgconn setup</title></head>
<body>
<h1>pgconn is running</h1>
<p>{"Still to do: " + e(", ".join(missing)) if missing else "Everything is configured."}</p>
<ul>{rows}</ul>
{hint}
<h2>The Slack app</h2>
<p>At <a href="https://api.slack.com/apps">api.slack.com/apps</a>: <b>Create New App → From an app
manifest</b> (or, for the app you already made, <b>App Manifest</b>) and paste this manifest, whose
request URLs point at this deployment ({e(base_url)}). Then invite the bot to the alert channel and
type <code>/pgconn help</code>.</p>
{manifest_block}
</body></html>
"""
