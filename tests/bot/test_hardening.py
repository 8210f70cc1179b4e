"""Pure parts of the hardening (issue 20): signatures, the scrubber's regex, Settings' repr,
Heroku path segments, configuration refusals."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from bot.config import Settings
from bot.errors import ConfigError, HerokuRejected
from bot.heroku import HerokuClient
from bot.logs import RedactingFilter
from bot.signing import headers_fresh, signature_valid
from bot.throttle import HerokuBudget
from emulators.heroku import HerokuEmulator
from emulators.slack import slack_signature
from tests.harness import ROOT
from tests.support import API_KEY, BOT_TOKEN

# --- signatures ------------------------------------------------------------------------------


@pytest.mark.parametrize("timestamp", ["9" * 5000, "1" * 4301, "1" * 13, "0" * 20 + "1700000000"])
def test_absurd_timestamps_are_refused_without_raising(timestamp: str) -> None:
    assert headers_fresh("s", timestamp, "v0=" + "0" * 64, now=1_700_000_000) is False
    assert signature_valid("s", b"x", timestamp, "v0=" + "0" * 64, now=1_700_000_000) is False


def test_headers_alone_refuse_what_no_body_could_make_valid() -> None:
    now = 1_700_000_000
    good = slack_signature("s", now, b"x")
    assert headers_fresh("s", str(now), good, now=now)
    assert not headers_fresh("s", str(now - 301), good, now=now)
    assert not headers_fresh("s", str(now), good[:-1], now=now)
    assert not headers_fresh("s", str(now), None, now=now)
    assert not headers_fresh("", str(now), good, now=now)


# --- the scrubber's URL-password regex is linear -------------------------------------------------

CRAFTED = {
    # Each took seconds to minutes with the unbounded regex: every start position rescanned the rest.
    "one long word": "a" * 400_000,
    "schemes and colons": "a://:" * 80_000,
    "a password that never ends": "x://a:" + "b" * 400_000,
    "at-signs without an end": "x://a:" + "@" * 400_000,
    "schemes": "a://" * 100_000,
}


@pytest.mark.parametrize("text", list(CRAFTED.values()), ids=list(CRAFTED))
def test_scrubbing_crafted_text_is_linear(text: str) -> None:
    redactor = RedactingFilter()
    started = time.process_time()
    redactor.scrub(text)
    # A bound a hundred times what the linear regex needs (~0.02 s for 400 KB here), so it
    # cannot flake; the quadratic one needed ~3 s for 40 KB, minutes for these.
    assert time.process_time() - started < 2.0


@pytest.mark.parametrize(
    ("text", "scrubbed"),
    [
        ("postgres://u:pw@h/db", "postgres://u:[redacted]@h/db"),
        ("URL=postgres://user:s3cr3t@host:5432/d x", "URL=postgres://user:[redacted]@host:5432/d x"),
        ("redis://:pw@h:1", "redis://:[redacted]@h:1"),
        ("rediss://h:6379/0", "rediss://h:6379/0"),
        ("postgres://u:p@ss@host/db", "postgres://u:[redacted]@host/db"),
        ("postgresql+psycopg://u:pw@h/db", "postgresql+psycopg://u:[redacted]@h/db"),
        ("see https://x:tok-1@host/drains/heroku/a now", "see https://x:[redacted]@host/drains/heroku/a now"),
    ],
)
def test_url_passwords_are_still_scrubbed(text: str, scrubbed: str) -> None:
    assert RedactingFilter().scrub(text) == scrubbed


# --- Settings never print their secrets ---------------------------------------------------------


def test_settings_repr_shows_no_secret() -> None:
    env = {
        "SLACK_BOT_TOKEN": "xoxb-repr-secret-bot",
        "SLACK_SIGNING_SECRET": "repr-secret-signing",
        "SLACK_APP_TOKEN": "xapp-repr-secret-app",
        "HEROKU_API_KEY": "repr-secret-heroku-key",
        "PGCONN_APPS": "my-app",
        "PGCONN_DRAIN_TOKEN": "repr-secret-drain-" + "d" * 32,
        "REDIS_URL": "rediss://:repr-secret-redis@redis.example.com:6379",
        "PGCONN_PUBLIC_URL": "https://pgconn.example.com",
    }
    settings = Settings.from_env(env)
    shown = repr(settings) + str(settings)
    assert "repr-secret" not in shown
    assert "my-app" in shown  # the rest is still there to read


# --- Heroku path segments ---------------------------------------------------------------------


@pytest.mark.parametrize("segment", [".", ".."])
async def test_dot_segments_never_reach_heroku(heroku: HerokuEmulator, segment: str) -> None:
    """httpx resolves dot segments: `DELETE /apps/my-app/dynos/..` would be `DELETE /apps/my-app/`."""
    heroku.requests.clear()
    async with httpx.AsyncClient(timeout=2) as http:
        client = HerokuClient(http, api_key=API_KEY, platform_url=heroku.url, data_url=heroku.url)
        calls = [
            client.restart("my-app", segment),
            client.remove_log_drain("my-app", segment),
            client.remove_webhook("my-app", segment),
            client.formation(segment),
        ]
        for call in calls:
            with pytest.raises(HerokuRejected):
                await call
    assert heroku.requests == []
    assert "my-app" in heroku.apps


# --- configuration that would expose a secret or split the state is refused at start ---------------

BASE_ENV = {
    "SLACK_BOT_TOKEN": BOT_TOKEN,
    "SLACK_SIGNING_SECRET": "s",
    "HEROKU_API_KEY": API_KEY,
    "PGCONN_APPS": "my-app",
}


@pytest.mark.parametrize(
    ("overrides", "refused"),
    [
        ({"PGCONN_DRAIN_TOKEN": "d" * 31}, "PGCONN_DRAIN_TOKEN must be at least 32 characters"),
        ({"PGCONN_PUBLIC_URL": "http://pgconn.example.com"}, "PGCONN_PUBLIC_URL must be an https:// URL"),
        ({"PGCONN_PUBLIC_URL": "http://10.0.0.5:3000"}, "PGCONN_PUBLIC_URL must be an https:// URL"),
    ],
)
def test_settings_that_would_expose_the_drain_password_are_refused(
    overrides: dict[str, str], refused: str
) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({**BASE_ENV, **overrides})
    assert info.value.message.startswith(refused)


def test_loopback_http_and_a_long_drain_master_are_accepted() -> None:
    settings = Settings.from_env(
        {**BASE_ENV, "PGCONN_DRAIN_TOKEN": "d" * 32, "PGCONN_PUBLIC_URL": "http://127.0.0.1:3000"}
    )
    assert settings.public_url == "http://127.0.0.1:3000"


def run_bot(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot"],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "refused"),
    [
        ({"DYNO": "web.1"}, "pgconn: no Slack or Heroku credentials are set, and the local sandbox"),
        ({**BASE_ENV, "DYNO": "web.1"}, "pgconn: REDIS_URL is not set, and an embedded Redis does not run"),
    ],
    ids=["sandbox", "embedded-redis"],
)
def test_on_a_dyno_neither_the_sandbox_nor_an_embedded_redis_starts(
    env: dict[str, str], refused: str
) -> None:
    result = run_bot(env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(refused), result.stderr
    assert API_KEY not in result.stderr


# --- the Heroku reserve refills -------------------------------------------------------------------


def test_heroku_budget_counts_the_refill_since_heroku_last_said() -> None:
    """Reads refused below the reserve make no Heroku call that could report a higher count:
    without the refill, one 429 would refuse reports for good."""
    now = [1000.0]
    budget = HerokuBudget(clock=lambda: now[0])
    assert budget.remaining is None
    budget.observe("0")
    assert budget.remaining == 0
    now[0] += 60
    assert budget.remaining == 75
    now[0] += 86400
    assert budget.remaining == 4500
    for junk in ("", "-1", "1" * 20, "x"):
        budget.observe(junk)
    assert budget.remaining == 4500


# --- who may do what: the one table ----------------------------------------------------------------


def test_every_verb_and_button_has_a_rule_and_the_changing_ones_are_admin_only() -> None:
    from bot.alerts.ownership import INCIDENT_BUTTONS
    from bot.authz import RULES
    from bot.commands import VERBS
    from bot.render.remediation import ACTION_IDS

    incident_ids = {b.id for b in INCIDENT_BUTTONS}
    assert set(RULES) == set(VERBS) | set(ACTION_IDS) | incident_ids
    admin_only = {what for what, who in RULES.items() if who == "admin"}
    assert admin_only == {"watch", "unwatch", *ACTION_IDS, *incident_ids}


@pytest.mark.parametrize(
    ("teams", "enterprises", "shared", "why"),
    [
        (("T0HOME", "T0HOME"), (None, None), False, None),
        (("T0HOME", "T0OTHER"), (None, None), False, "team T0OTHER"),
        (("T0HOME", None), (None, "E0OTHER"), False, "organisation E0OTHER"),
        (("T0HOME", "T0ALLOWED"), (None, None), False, None),
        (("T0HOME", "T0HOME"), (None, None), True, "an externally shared channel"),
    ],
)
def test_foreign_requests_are_named(
    teams: tuple[str | None, ...], enterprises: tuple[str | None, ...], shared: bool, why: str | None
) -> None:
    from bot.authz import foreign

    assert foreign(
        home_team="T0HOME", home_enterprise=None, teams=teams, enterprises=enterprises, ext_shared=shared,
        allowed=frozenset({"T0ALLOWED"}), allow_shared=False,
    ) == why


@pytest.mark.parametrize(
    ("event", "answered"),
    [
        ({"user": "UHUMAN01", "text": "x"}, True),
        ({"user": "UBOTSELF", "text": "x"}, False),
        ({"bot_id": "BSELF", "subtype": "bot_message"}, False),
        ({"bot_id": "B0OTHERPGCONN", "subtype": "bot_message"}, False),
        ({"bot_id": "B0DATADOG", "subtype": "bot_message"}, True),
        ({"bot_id": "B0X", "bot_profile": {"app_id": "A0PAGERDUTY"}}, True),
        ({"subtype": "bot_message", "username": "webhook"}, False),
    ],
)
def test_only_people_and_allowlisted_bots_make_pgconn_answer(
    event: dict[str, object], answered: bool
) -> None:
    from bot.authz import may_answer_message

    assert may_answer_message(
        event, own_bot_id="BSELF", own_user_id="UBOTSELF", bots=frozenset({"B0DATADOG", "A0PAGERDUTY"})
    ) is answered


@pytest.mark.parametrize(
    ("dsn", "mode"),
    [
        ("postgres://u:p@ec2-1-2-3-4.compute-1.amazonaws.com:5432/d?sslmode=disable", "require"),
        ("postgres://u:p@db.example.com/d?sslmode=allow", "require"),
        ("host=db.example.com sslmode=disable user=u", "require"),
        ("not a connection string ::", "require"),
        ("postgresql://u:p@127.0.0.1:5432/d?sslmode=disable", "prefer"),
        ("postgresql://u:p@localhost/d", "prefer"),
    ],
)
def test_pgconn_chooses_the_sslmode_not_the_url(dsn: str, mode: str) -> None:
    """Heroku's databases are never on loopback: there, TLS is required whatever the URL says."""
    from bot.postgres import sslmode_for

    assert sslmode_for(dsn) == mode
