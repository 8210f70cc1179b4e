"""Text from outside reaches Slack as text: it pings no one, links nowhere, formats nothing.

Outside text here is anything pgconn did not write itself: application_name from
pg_stat_activity, pg:info values and error messages from Heroku, log lines from the drain
(role names included), values from button payloads, formation commands. Each test plants
Slack's control sequences there and then reads *everything* the bot sent to Slack during it.
"""

from __future__ import annotations

import json
import re

from tests.bot.samples import app_line, frame
from tests.conftest import System
from tests.harness import ADMIN, ALERT_CHANNEL, OPS_CHANNEL
from tests.hostile.helpers import (
    ACTIVE_MRKDWN,
    basic_auth,
    click,
    ephemeral,
    post_drain,
    post_report,
    slash,
    thread_reply,
)
from tests.support import blocks_text, drain_credentials

# Slack's control sequences: broadcast pings, a user-group ping, a user and a channel
# mention, links with a label, and formatting.
HOSTILE = [
    "<!channel>",
    "<!here|here>",
    "<!subteam^SOPSTEAM>",
    "<@UADMIN01>",
    "<#C0OPS>",
    "<https://evil.example|click>",
    "<mailto:x@evil.example|mail>",
    "*bold* _it_ ~gone~",
    "```",
]


PGCONN_DATE = re.compile(r"<!date\^\d+\^[^|>]*\|[^>]*>")


def sent_to_slack(system: System) -> list[str]:
    """Every text-bearing parameter of every call the bot made to Slack, as JSON."""
    return [json.dumps(call.params, ensure_ascii=False) for call in system.slack.received]


def assert_inert(system: System, *, allowed_mentions: tuple[str, ...] = ()) -> None:
    sent = sent_to_slack(system)
    assert sent, "the bot sent nothing to Slack"
    for body in sent:
        for token in allowed_mentions:
            body = body.replace(token, "")
        # pgconn's own timestamps (<!date^…^{date_short_pretty} …|fallback>) are the one
        # control sequence it writes on purpose.
        body = PGCONN_DATE.sub("", body)
        found = ACTIVE_MRKDWN.search(body)
        assert found is None, f"active mrkdwn {body[found.start():found.start() + 40]!r} in {body[:300]}"


async def test_application_names_are_shown_as_text(system: System) -> None:
    for name in HOSTILE:
        assert system.load.open(1, name) == 1
    report = await post_report(system)
    text = blocks_text(report.blocks)
    assert "`&lt;!channel&gt;`" in text
    assert "`&lt;https://evil.example|click&gt;`" in text
    assert "`'''`" in text  # backticks cannot close the code span
    assert_inert(system)


async def test_pg_info_values_from_heroku_are_shown_as_text(system: System) -> None:
    info = {
        "info": [
            {"name": "Plan", "values": ["<!channel> Essential 0"]},
            {"name": "Status", "values": ["<https://evil.example|Available>"]},
            {"name": "Connections", "values": ["3/20"]},
            {"name": "<@UADMIN01>", "values": ["*x*"]},
        ]
    }
    system.heroku.inject(path="/client/v11/databases/", method="GET", status=200,
                         body=json.dumps(info).encode(), times=5)
    report = await post_report(system)
    text = blocks_text(report.blocks)
    assert "&lt;!channel&gt; Essential 0" in text and "&lt;https://evil.example|Available&gt;" in text
    assert_inert(system)


async def test_heroku_error_messages_are_shown_as_text(system: System) -> None:
    body = json.dumps({"id": "forbidden", "message": "<!channel> see <https://evil.example|this>"}).encode()
    system.heroku.inject(path="/formation", status=403, body=body)
    await slash(system, "my-app")
    text = await ephemeral(system, "HTTP 403")
    assert "&lt;!channel&gt;" in text
    assert_inert(system)


async def test_heroku_error_messages_in_a_failed_action_are_shown_as_text(system: System) -> None:
    report = await post_report(system)
    body = json.dumps({"id": "invalid_params", "message": "<!channel> <https://evil.example|x>"}).encode()
    system.heroku.inject(path="/apps/my-app/dynos", method="DELETE", status=422, body=body)
    await click(system, report, "pgconn.restart")
    reply = await thread_reply(system, report, "Restart dynos")
    assert "&lt;!channel&gt;" in reply.text
    assert_inert(system, allowed_mentions=(f"<@{ADMIN}>",))


async def test_buildpack_names_and_commands_from_heroku_are_shown_as_text(system: System) -> None:
    app = system.heroku.apps["my-app"]
    app.formation["web"].command = "gunicorn app.wsgi <!channel> > /dev/null"
    report = await post_report(system)
    await click(system, report, "pgconn.add_pgbouncer")
    reply = await thread_reply(system, report, "Add PgBouncer")
    assert "bin/start-pgbouncer gunicorn app.wsgi &lt;!channel&gt; &gt; /dev/null" in reply.text
    assert_inert(system, allowed_mentions=(f"<@{ADMIN}>",))


async def test_log_lines_from_the_drain_are_shown_as_text(system: System) -> None:
    line = app_line('PG::ConnectionBad: FATAL:  too many connections for role "<!channel>" '
                    "<https://evil.example|details>")
    auth = basic_auth(*drain_credentials("my-app"))
    response = await post_drain(system.bot, "my-app", frame([line]), authorization=auth)
    assert response.status_code == 204
    parent = await system.slack.wait_for(
        lambda: next((m for m in system.slack.messages(ALERT_CHANNEL) if m.blocks), None), timeout=20
    )
    assert "&lt;!channel&gt;" in blocks_text(parent.blocks)
    assert_inert(system)


async def test_hostile_slash_command_text_is_quoted_back_as_text(system: System) -> None:
    for text in ("<!channel>", "my-app <https://evil.example|x>", "<@UADMIN01> budget"):
        await slash(system, text, user=ADMIN, channel=OPS_CHANNEL)
    await system.slack.wait_for(lambda: len(system.slack.ephemerals) >= 3)
    assert_inert(system)
