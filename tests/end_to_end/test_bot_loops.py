"""Bot-to-bot loops (issue 20, item 5): pgconn's own report text says "Connections: 19/20",
which its mention detector takes for an alert. It answers once per thread, never itself, and
other bots only when PGCONN_ALERT_BOTS lists them."""

from __future__ import annotations

from tests.end_to_end.conftest import Alerts
from tests.end_to_end.test_message_events import marker, replies
from tests.harness import OPS_CHANNEL, settled

# What another pgconn deployment (or any bot echoing messages) posts: pgconn's own report text.
ECHOED_REPORT = "*my-app* · Essential 0\n*Connections:* *19/20* `███████████████████░`\nLikely cause: …"


async def test_another_bot_posting_pgconns_report_text_gets_no_answer(alerts: Alerts) -> None:
    echo = await alerts.slack.post_as(OPS_CHANNEL, ECHOED_REPORT, bot_id="B0OTHERPGCONN", username="pgconn")
    in_thread = await alerts.slack.post_as(
        OPS_CHANNEL, ECHOED_REPORT, bot_id="B0ECHOBOT", thread_ts=echo.ts
    )
    answered = await marker(alerts)  # an allowlisted tool's alert, answered after both were handled
    assert replies(alerts, echo) == [in_thread]  # nothing from pgconn in that thread
    mine = [m for m in alerts.slack.messages(OPS_CHANNEL) if m.bot_id == alerts.slack.bot_id]
    assert [m.thread_ts for m in mine] == [answered.ts]


async def test_a_thread_is_answered_once_however_many_alerts_it_gets(alerts: Alerts) -> None:
    root = await alerts.slack.post_as(OPS_CHANNEL, "my-app: too many connections", user="UHUMAN01")
    for text in ("still out of connections on my-app", "my-app connections 20/20", "my-app 53300 again"):
        await alerts.slack.post_as(OPS_CHANNEL, text, user="UHUMAN02", thread_ts=root.ts)
    await marker(alerts)
    # The marker's app (bare-app: its database refuses at once) can be answered before my-app's
    # report is read: wait until the bot has nothing pending (in a loaded full run it had not).
    await settled(alerts.bot)
    ours = [m for m in alerts.slack.thread(OPS_CHANNEL, root.ts) if m.bot_id == alerts.slack.bot_id]
    assert len(ours) == 1
