"""Audit rendering: pure."""

from __future__ import annotations

from bot.render.audit import audit_text
from bot.state.remediation import AuditRecord


def test_audit_lists_newest_first_with_who_and_result_escaped_once() -> None:
    records = [
        AuditRecord(
            at=1_700_000_060,
            user="U1",
            action="pgconn.killall",
            app="a1",
            ok=True,
            result="terminated 18 of 20 connections",
        ),
        AuditRecord(
            at=1_700_000_000,
            user="U2",
            action="pgconn.restart",
            app="a1",
            ok=False,
            result="failed: Heroku said `&lt;!channel&gt;`",
        ),
    ]
    text = audit_text("a1", records)
    lines = text.splitlines()
    assert lines[1].startswith(
        ":white_check_mark: 2023-11-14 22:14 UTC — <@U1> ran *Kill all*: terminated 18"
    )
    assert "<@U2> ran *Restart dynos*: failed: Heroku said `&lt;!channel&gt;`" in lines[2]
    assert "&amp;lt;" not in text


def test_empty_audit_says_so() -> None:
    assert audit_text("a1", []) == "No pgconn actions recorded for `a1` yet."
