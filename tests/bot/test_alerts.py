"""The incident lifecycle as pure decisions: no Redis, no Slack, no clock."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.alerts import (
    AlertPolicy,
    Decision,
    Observation,
    after_post,
    assess,
    decide,
    post_failed,
    reply_failed,
    update_failed,
)
from bot.detect import Severity
from bot.render.alert import alert_blocks, alert_text, downsample, resolved_reply, severity_reply, trend_line
from bot.state.incidents import Incident, from_hash, to_hash
from emulators.slack_blocks import validate_blocks

T = AlertPolicy(
    warn_share=0.8, critical_share=0.95, resolve_after_s=300, update_interval_s=5, reply_interval_s=60,
    post_timeout_s=120, max_post_backoff_s=60,
)
APP, DB, CH = "my-app", "postgresql-curved-12345", "C0ALERTS"
T0 = 1_700_000_000.0


def step(
    incident: Incident | None, obs: Observation, now: float, token: str = "proc-a"
) -> Decision:
    return decide(incident, obs, app=APP, database=DB, now=now, t=T, token=token, channel=CH)


def fatal(n: int = 1, limit: int | None = 20) -> Observation:
    return Observation(fatal=n, excerpt='FATAL:  too many connections for role "u1"', role="u1", limit=limit)


def readings(*values: int, limit: int = 20) -> Observation:
    return Observation(readings=values, limit=limit)


def posted(incident: Incident, now: float, ts: str = "1700000000.000100") -> Incident:
    """The state after the opener's post went through."""
    d = after_post(incident, incident, ts=ts, channel=CH, now=now, used=None)
    assert d.state is not None
    return d.state


def opened(obs: Observation | None = None, now: float = T0) -> Incident:
    d = step(None, obs or fatal(), now)
    assert d.state is not None and d.post
    return posted(d.state, now + 1)


# --- assessing one observation ---------------------------------------------------


def test_assess_boundaries_are_inclusive() -> None:
    # 16/20 is exactly the warn share, 19/20 exactly the critical share.
    assert assess(readings(15), 20, T).worst is None
    assert assess(readings(16), 20, T).worst is Severity.WARN
    assert assess(readings(19), 20, T).worst is Severity.CRITICAL
    assert assess(readings(25), 20, T).worst is Severity.CRITICAL


def test_assess_counts_bad_signals_only_from_the_drain() -> None:
    a = assess(Observation(fatal=3, readings=(5, 17, 19), probe=20, limit=20), 20, T)
    assert (a.worst, a.bad_signals, a.saw_ok) == (Severity.CRITICAL, 5, True)


def test_readings_without_a_known_limit_cannot_be_judged() -> None:
    assert assess(Observation(readings=(500,)), None, T).worst is None
    # ... but a refusal is a refusal whatever the limit.
    assert assess(Observation(fatal=1), None, T).worst is Severity.CRITICAL


# --- opening -----------------------------------------------------------------------


def test_nothing_happens_while_connections_are_fine() -> None:
    assert step(None, readings(3, 10, 15), T0) == Decision()
    assert step(None, Observation(), T0) == Decision()


def test_first_refusal_opens_an_incident_and_claims_the_post() -> None:
    d = step(None, fatal(7), T0, token="proc-a")
    assert d.post and not d.update and d.reply is None
    s = d.state
    assert s is not None
    assert (s.status, s.severity, s.signals, s.fatal) == ("open", "critical", 7, 7)
    assert (s.current, s.limit) == (20, 20)  # a refusal means the role is at its limit
    assert (s.poster, s.poster_at, s.ts, s.channel) == ("proc-a", T0, "", CH)
    assert s.role == "u1" and "too many connections" in s.excerpt


def test_metrics_crossing_warn_open_a_warning() -> None:
    d = step(None, readings(12, 17), T0)
    assert d.post and d.state is not None
    assert (d.state.severity, d.state.signals, d.state.current) == (Severity.WARN, 1, 17)


def test_while_one_caller_posts_the_others_only_count() -> None:
    first = step(None, fatal(1), T0, token="proc-a").state
    assert first is not None
    d = step(first, fatal(4), T0 + 1, token="proc-b")
    assert not d.post and d.state is not None
    assert (d.state.signals, d.state.poster) == (5, "proc-a")


def test_a_poster_that_never_reports_back_is_replaced() -> None:
    first = step(None, fatal(1), T0, token="proc-a").state
    assert first is not None
    assert not step(first, fatal(1), T0 + T.post_timeout_s - 1, token="proc-b").post
    d = step(first, Observation(), T0 + T.post_timeout_s, token="proc-b")
    assert d.post and d.state is not None and d.state.poster == "proc-b"


def test_failed_post_is_retried_after_a_back_off_by_anyone() -> None:
    first = step(None, fatal(1), T0, token="proc-a").state
    assert first is not None
    failed = post_failed(first, first, error="Slack: ratelimited", now=T0 + 1, t=T).state
    assert failed is not None
    assert (failed.poster, failed.post_failures, failed.next_post_at) == ("", 1, T0 + 3)
    assert failed.needs_attention and failed.last_error == "Slack: ratelimited"
    assert not step(failed, fatal(1), T0 + 2, token="proc-b").post
    d = step(failed, Observation(), T0 + 3, token="proc-b")
    assert d.post and d.state is not None and d.state.poster == "proc-b"
    # A second failure backs off longer, up to the cap.
    again = post_failed(d.state, d.state, error="x", now=T0 + 4, t=T).state
    assert again is not None and again.next_post_at == T0 + 4 + 4
    many = replace(again, post_failures=40, poster="proc-b")
    capped = post_failed(many, many, error="x", now=T0, t=T).state
    assert capped is not None and capped.next_post_at == T0 + T.max_post_backoff_s


def test_post_failure_of_a_stale_claim_does_not_free_the_new_posters_claim() -> None:
    first = step(None, fatal(1), T0, token="proc-a").state
    assert first is not None
    taken_over = replace(first, poster="proc-b", poster_at=T0 + 200)
    assert post_failed(taken_over, first, error="x", now=T0 + 201, t=T) == Decision()


def test_after_post_records_the_thread_and_redraws_only_if_something_moved() -> None:
    first = step(None, fatal(1), T0).state
    assert first is not None
    quiet = after_post(first, first, ts="1.2", channel=CH, now=T0 + 1, used=20)
    assert quiet.state is not None and not quiet.update
    assert (quiet.state.ts, quiet.state.poster, quiet.state.current) == ("1.2", "", 20)
    # 50 more refusals arrived while the report was being built: the parent is stale.
    busier = replace(first, signals=51, fatal=51)
    moved = after_post(busier, first, ts="1.2", channel=CH, now=T0 + 1, used=20)
    assert moved.update and moved.state is not None and moved.state.dirty is True
    # Someone else already posted (a stale claim race): nothing to do.
    assert after_post(replace(first, ts="9.9"), first, ts="1.2", channel=CH, now=T0, used=None) == Decision()


def test_report_count_does_not_override_metric_samples() -> None:
    first = step(None, readings(17), T0).state
    assert first is not None
    d = after_post(first, first, ts="1.2", channel=CH, now=T0 + 1, used=12)
    assert d.state is not None and d.state.current == 17
    newer = replace(first, current=19, last_metric_at=T0 + 0.5)
    d = after_post(newer, first, ts="1.2", channel=CH, now=T0 + 1, used=12)
    assert d.state is not None and d.state.current == 19 and d.update


# --- updates and replies -------------------------------------------------------------


def test_more_signals_redraw_the_parent_at_most_every_update_interval() -> None:
    s = opened(now=T0)  # last redraw at T0 + 1
    d = step(s, fatal(10), T0 + 2)
    assert d.state is not None and not d.update and d.state.dirty and d.state.signals == 11
    # Nothing new, but the parent is stale and the interval has passed: redraw.
    d2 = step(d.state, Observation(), T0 + 7)
    assert d2.update and d2.state is not None and not d2.state.dirty and d2.state.last_update_at == T0 + 7
    # And with nothing stale, an empty observation writes nothing at all.
    assert step(d2.state, Observation(), T0 + 60) == Decision()


def test_severity_change_redraws_at_once_and_replies_rate_limited() -> None:
    s = opened(readings(16), now=T0)
    assert s.severity is Severity.WARN
    up = step(s, readings(19), T0 + 2)
    assert up.update and up.reply == "severity" and up.state is not None
    assert (up.state.severity, up.state.told, up.state.peak) == ("critical", "critical", "critical")
    down = step(up.state, readings(17), T0 + 3)
    assert down.update and down.reply is None  # within the reply interval
    assert down.state is not None and (down.state.severity, down.state.told) == ("warn", "critical")
    later = step(down.state, Observation(), T0 + 2 + T.reply_interval_s)
    assert later.reply == "severity" and later.state is not None and later.state.told == "warn"
    assert later.state.peak is Severity.CRITICAL


def test_a_flap_back_to_what_the_thread_was_told_needs_no_reply() -> None:
    s = opened(readings(16), now=T0)
    up = step(s, readings(19), T0 + 2).state
    assert up is not None
    down = step(up, readings(17), T0 + 3).state
    back = step(down, readings(19), T0 + 4)
    assert back.reply is None and back.update
    assert back.state is not None and back.state.told == back.state.severity == "critical"
    assert step(back.state, Observation(), T0 + 500).reply is None


# --- resolution ---------------------------------------------------------------------


def test_resolves_only_after_staying_below_warn_for_resolve_after() -> None:
    s = opened(readings(19), now=T0)
    low = step(s, readings(10), T0 + 10).state
    assert low is not None and low.ok_since == T0 + 10 and low.status == "open"
    # A new bad sample restarts the clock.
    bad = step(low, readings(18), T0 + 200).state
    assert bad is not None and bad.ok_since is None and bad.last_bad == T0 + 200
    low2 = step(bad, readings(4), T0 + 210).state
    assert low2 is not None and low2.ok_since == T0 + 210
    assert step(low2, readings(3), T0 + 210 + T.resolve_after_s - 1).state.status == "open"  # type: ignore[union-attr]
    d = step(low2, readings(3), T0 + 210 + T.resolve_after_s)
    assert d.state is not None and d.state.status == "resolved" and d.update and d.reply == "resolved"
    assert d.state.resolved_at == T0 + 510 and d.state.told_resolved and not d.state.needs_attention


def test_the_periodic_check_resolves_without_new_samples() -> None:
    s = opened(readings(19), now=T0)
    low = step(s, readings(10), T0 + 10).state
    d = step(low, Observation(), T0 + 10 + T.resolve_after_s)
    assert d.state is not None and d.state.status == "resolved" and d.reply == "resolved"


def test_fatal_only_incident_resolves_from_probes() -> None:
    s = opened(fatal(20), now=T0)
    assert s.current == 20
    full = step(s, Observation(probe_full=True, limit=20), T0 + 30).state
    assert full is not None and full.last_bad == T0 + 30 and full.signals == 20  # probes are not signals
    ok = step(full, Observation(probe=2, limit=20), T0 + 60).state
    assert ok is not None and ok.ok_since == T0 + 60 and ok.current == 2
    # A new refusal in between keeps it open.
    again = step(ok, fatal(1), T0 + 100).state
    assert again is not None and again.ok_since is None and again.fatal == 21
    ok2 = step(again, Observation(probe=1, limit=20), T0 + 130).state
    d = step(ok2, Observation(probe=1, limit=20), T0 + 130 + T.resolve_after_s)
    assert d.state is not None and d.state.status == "resolved"


def test_a_new_signal_after_resolution_opens_a_new_incident() -> None:
    s = opened(readings(19), now=T0)
    low = step(s, readings(1), T0 + 1).state
    resolved = step(low, readings(1), T0 + 1 + T.resolve_after_s).state
    assert resolved is not None and resolved.status == "resolved"
    assert step(resolved, readings(2), T0 + 2000) == Decision()
    d = step(resolved, fatal(1), T0 + 3000, token="proc-b")
    assert d.post and d.state is not None
    assert d.state.id != resolved.id and d.state.ts == "" and d.state.signals == 1
    assert d.state.version == resolved.version  # the store's compare-and-set expects the old one


def test_resolved_while_posting_tells_the_thread_once() -> None:
    first = step(None, readings(19), T0).state
    assert first is not None
    low = step(first, readings(2), T0 + 1).state
    assert low is not None and not step(low, Observation(), T0 + 2).post  # claim still fresh
    resolved_meanwhile = replace(low, status="resolved", resolved_at=T0 + 400)
    d = after_post(resolved_meanwhile, first, ts="1.2", channel=CH, now=T0 + 401, used=None)
    assert d.reply == "resolved" and d.update and d.state is not None and d.state.told_resolved


def test_never_posted_incident_that_resolves_is_still_posted() -> None:
    first = step(None, readings(19), T0).state
    assert first is not None
    failed = post_failed(first, first, error="Slack: channel_not_found", now=T0, t=T).state
    low = step(failed, readings(2), T0 + 1).state
    d = step(low, Observation(), T0 + 1 + T.resolve_after_s)
    assert d.post and d.state is not None and d.state.status == "resolved" and d.state.told_resolved


# --- failures of updates and replies ---------------------------------------------------


def test_failed_update_leaves_the_parent_marked_stale() -> None:
    s = opened(now=T0)
    d = update_failed(s, error="Slack: internal_error").state
    assert d is not None and d.dirty and d.needs_attention
    assert step(d, Observation(), T0 + 100).update


def test_slack_errors_no_retry_can_fix_are_not_retried_forever() -> None:
    s = opened(now=T0)
    gone = update_failed(s, error="Slack: message_not_found").state
    assert gone is not None and not gone.dirty and gone.last_error == "Slack: message_not_found"
    resolved = replace(s, status="resolved", told_resolved=True)
    kicked = reply_failed(resolved, "resolved", told_before=Severity.OK, error="Slack: not_in_channel").state
    assert kicked is not None and not kicked.needs_attention


def test_failed_replies_are_retried() -> None:
    s = opened(readings(16), now=T0)
    up = step(s, readings(19), T0 + 2)
    assert up.state is not None and up.reply == "severity"
    undone = reply_failed(up.state, "severity", told_before=Severity.WARN, error="x").state
    assert undone is not None and undone.told is Severity.WARN
    assert step(undone, Observation(), T0 + 2 + T.reply_interval_s).reply == "severity"

    low = step(s, readings(1), T0 + 3).state
    resolved = step(low, Observation(), T0 + 3 + T.resolve_after_s).state
    assert resolved is not None and resolved.told_resolved
    lost = reply_failed(resolved, "resolved", told_before=Severity.WARN, error="x").state
    assert lost is not None and lost.needs_attention
    retry = step(lost, Observation(), T0 + 3 + T.resolve_after_s + T.reply_interval_s)
    assert retry.reply == "resolved" and retry.state is not None and not retry.state.needs_attention


# --- a property: whatever arrives, in whatever order, from whichever process ---------------------


observations = st.one_of(
    st.builds(Observation),
    st.builds(lambda n: fatal(n), st.integers(1, 50)),
    st.builds(
        lambda xs: Observation(readings=tuple(xs), limit=20),
        st.lists(st.integers(0, 25), min_size=1, max_size=5),
    ),
    st.builds(lambda p: Observation(probe=p, limit=20), st.integers(0, 21)),
    st.just(Observation(probe_full=True, limit=20)),
)
events = st.tuples(
    st.floats(0, 400),  # seconds since the previous event
    st.sampled_from(["proc-a", "proc-b", "proc-c"]),
    observations,
    st.sampled_from(["none", "post-ok", "post-fail"]),  # what happens to a post this claims
)


@settings(max_examples=300, deadline=None)
@given(st.lists(events, min_size=1, max_size=40))
def test_lifecycle_invariants(script: list[tuple[float, str, Observation, str]]) -> None:
    now = T0
    state: Incident | None = None
    posts_per_incident: dict[str, int] = {}
    bad_signals_per_incident: dict[str, int] = {}
    for gap, token, obs, outcome in script:
        now += gap
        before = state
        d = step(state, obs, now, token=token)
        if d.state is None:
            continue
        s = d.state
        opened_new = before is None or before.id != s.id
        if opened_new:
            bad_signals_per_incident[s.id] = 0
        bad_signals_per_incident[s.id] += assess(obs, s.limit, T).bad_signals
        assert s.signals == bad_signals_per_incident[s.id]
        if d.post:
            # Only one claim at a time: the previous one was free or timed out.
            if before is not None and not opened_new:
                assert not before.poster or now - before.poster_at >= T.post_timeout_s
            assert not s.posted and s.poster == token
        if s.status == "resolved" and (before is None or before.status != "resolved"):
            assert s.ok_since is not None and now - s.ok_since >= T.resolve_after_s
        if d.reply == "severity":
            assert before is not None and now - before.last_reply_at >= T.reply_interval_s
        state = s
        if d.post and outcome == "post-ok":
            posts_per_incident[s.id] = posts_per_incident.get(s.id, 0) + 1
            done = after_post(s, s, ts=f"{now:.6f}", channel=CH, now=now, used=None).state
            assert done is not None
            state = done
        elif d.post and outcome == "post-fail":
            failed = post_failed(s, s, error="x", now=now, t=T).state
            assert failed is not None
            state = failed
    # Exactly one thread per incident, ever.
    assert all(n == 1 for n in posts_per_incident.values())


# --- storage round trip -----------------------------------------------------------------------


def test_incident_survives_the_redis_hash_round_trip() -> None:
    s = opened(fatal(3), now=T0)
    s = replace(s, ok_since=T0 + 0.25, resolved_at=None, current=None, role=None, dirty=True)
    assert from_hash(to_hash(s)) == s
    assert all(isinstance(v, str) for v in to_hash(s).values())
    # Fields a newer version added are ignored, not fatal.
    assert from_hash({**to_hash(s), "from_the_future": "x"}) == s


# --- rendering ------------------------------------------------------------------------------------


REPORT: list[dict[str, Any]] = [
    {"type": "header", "text": {"type": "plain_text", "text": "my-app · postgresql-curved-12345 (DATABASE)"}},
    {"type": "section", "text": {"type": "mrkdwn", "text": "*Connections:* 20/20"}},
    {
        "type": "actions",
        "block_id": "pgconn.actions",
        "elements": [
            {
                "type": "button",
                "action_id": "pgconn.kill_idle",
                "text": {"type": "plain_text", "text": "Kill idle"},
                "value": "my-app",
            }
        ],
    },
]


def test_parent_message_open_form() -> None:
    s = replace(opened(fatal(1000), now=T0), current=20, limit=20)
    blocks = alert_blocks(s, samples=list(range(21)) * 20, report=REPORT, now=T0 + 5, resolve_after_s=300)
    assert validate_blocks(blocks) == []
    text = "\n".join(str(b) for b in blocks)
    assert "my-app · postgresql-curved-12345" in blocks[0]["text"]["text"]
    assert "1,000 signals" in text and "1,000 refused connections" in text
    assert "*20/20*" in text and "Last 30 min" in text
    assert sum(1 for b in blocks if b["type"] == "header") == 1  # the report's own header is dropped
    assert any(b.get("block_id") == "pgconn.actions" for b in blocks)
    assert "out of database connections: 20/20" in alert_text(s)


def test_parent_message_resolved_form_drops_the_buttons() -> None:
    s = replace(opened(fatal(3), now=T0), status="resolved", resolved_at=T0 + 725, current=2, limit=20)
    blocks = alert_blocks(s, samples=[20, 20, 5, 2], report=REPORT, now=T0 + 725, resolve_after_s=300)
    assert validate_blocks(blocks) == []
    assert blocks[0]["text"]["text"].startswith(":white_check_mark: Resolved")
    assert "Resolved* after 12m 05s" in blocks[1]["text"]["text"]
    assert not any(b["type"] == "actions" for b in blocks)
    assert "Resolved after 12m 05s" in resolved_reply(s, 300)
    assert alert_text(s).startswith("Resolved:")


def test_hostile_excerpt_and_huge_report_stay_within_slack_limits() -> None:
    s = replace(opened(fatal(1), now=T0), excerpt="<!channel> *boom* `x` " + "y" * 5000, role="<@U1>")
    report = [{"type": "section", "text": {"type": "mrkdwn", "text": f"row {i}"}} for i in range(80)]
    blocks = alert_blocks(s, samples=[], report=report, now=T0, resolve_after_s=300)
    assert validate_blocks(blocks) == []
    assert len(blocks) == 50
    flat = str(blocks)
    assert "<!channel>" not in flat and "<@U1>" not in flat


def test_sparkline_keeps_spikes_and_is_pinned_to_the_limit() -> None:
    values = [1] * 500 + [20] + [1] * 499
    assert max(downsample(values)) == 20 and len(downsample(values)) == 40
    line = trend_line([10, 10, 10], 20)
    assert line is not None and "`▅▅▅`" in line  # half-way up, not "the top" of its own range
    assert "`▁██`" in (trend_line([0, 20, 20], 20) or "")
    assert trend_line([], 20) is None


def test_severity_reply_names_the_numbers() -> None:
    s = replace(opened(readings(19), now=T0), current=19, limit=20)
    assert "*19/20*" in severity_reply(s) and "critical" in severity_reply(s)
