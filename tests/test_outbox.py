"""The outbox as the one owner of its rows: written once per key, claimed by one worker, moved only
along `vocabulary.OUTBOX_STATES`, dead letters re-queued by hand and nothing else; and no other
module of the core creates or updates a row."""
from __future__ import annotations

import ast
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings, strategies as st

from siaga import outbox, store
from siaga.vocabulary import OUTBOX_STATES
from support.incidents import sangsit_flood

T0 = datetime(2026, 1, 15, 1, 0, tzinfo=timezone.utc)
CORE = Path(__file__).resolve().parents[1] / "plugins" / "siaga"


def _incident(session) -> int:
    return sangsit_flood(session, T0).id


def _enqueue(session, key, incident_id=None, kind="new", due=T0, channel="#bpbd-siaga"):
    return outbox.enqueue(session, dedup_key=key, incident_id=incident_id, receiver="bpbd", channel=channel, kind=kind,
                          payload={"text": key}, due=due, now=T0)


def _rows(url):
    with store.session_scope(url) as session:
        return {r.dedup_key: (r.state, r.attempts) for r in session.scalars(sa.select(store.OutboxMessage))}


def test_enqueue_writes_each_key_once(db_url):
    with store.session_scope(db_url) as session:
        incident = _incident(session)
        assert _enqueue(session, "1:bpbd:new:7", incident)
        assert not _enqueue(session, "1:bpbd:new:7", incident, kind="update")  # same key, even in one transaction
        assert _enqueue(session, "1:bpbd:update:8", incident, kind="update", due=T0 + timedelta(hours=5))
        assert _enqueue(session, "digest:2026-01-15:managers", None, kind="digest", channel="#siaga-managers")
    with store.session_scope(db_url) as session:  # a re-run of the stage in a later transaction
        assert not _enqueue(session, "1:bpbd:new:7", incident)
        assert outbox.exists(session, "digest:2026-01-15:managers") and not outbox.exists(session, "nope")
        rows = {r.dedup_key: r for r in session.scalars(sa.select(store.OutboxMessage))}
    assert len(rows) == 3
    first = rows["1:bpbd:new:7"]
    assert (first.kind, first.state, first.attempts, first.incident_id) == ("new", "pending", 0, incident)
    assert rows["1:bpbd:update:8"].next_attempt_at == T0 + timedelta(hours=5)
    assert rows["digest:2026-01-15:managers"].incident_id is None


def test_requeue_takes_back_only_dead_letters(db_url):
    with store.session_scope(db_url) as session:
        for state in OUTBOX_STATES:
            _enqueue(session, state)
        session.flush()
        for row in session.scalars(sa.select(store.OutboxMessage)):
            row.state, row.attempts = row.dedup_key, outbox.MAX_ATTEMPTS
    later = T0 + timedelta(days=1)
    with store.session_scope(db_url) as session:
        ids = {r.dedup_key: r.id for r in session.scalars(sa.select(store.OutboxMessage))}
        assert [outbox.requeue(session, ids[s], later) for s in OUTBOX_STATES] == [False, False, False, True]
        assert not outbox.requeue(session, ids["dead"], later)  # no longer dead
        assert not outbox.requeue(session, 10_000, later)
        requeued = session.get(store.OutboxMessage, ids["dead"])
        assert requeued.next_attempt_at == later
    assert _rows(db_url) == {"pending": ("pending", 8), "claimed": ("claimed", 8), "sent": ("sent", 8),
                             "dead": ("pending", 1)}  # attempts = 1: delivery asks Slack before posting it again


LEASE = timedelta(minutes=5)


def test_one_claim_per_row_only_of_due_rows_each_with_its_own_token(db_url):
    with store.session_scope(db_url) as session:
        _enqueue(session, "a")
        _enqueue(session, "b", due=T0 + timedelta(minutes=10))
    with store.session_scope(db_url) as session:
        assert outbox.due_ids(session, T0) == [1]
        assert outbox.due_ids(session, T0 + timedelta(minutes=10)) == [1, 2]
        assert outbox.claim(session, 2, "w1", T0, LEASE) is None  # not due yet: next_attempt_at holds
        claim = outbox.claim(session, 1, "w1", T0, LEASE)
    assert (claim.row_id, claim.worker) == (1, "w1") and len(claim.token) == 32
    with store.session_scope(db_url) as session:
        assert outbox.claim(session, 1, "w2", T0 + timedelta(days=1), LEASE) is None  # live, whatever the logical time
        assert outbox.due_ids(session, T0 + timedelta(minutes=10)) == [2]
        assert outbox.claim(session, 99, "w2", T0, LEASE) is None
        other = outbox.claim(session, 2, "w2", T0 + timedelta(minutes=10), LEASE)
    assert other.token != claim.token
    with store.session_scope(db_url) as session:
        assert outbox.release(session, claim)
    assert _rows(db_url)["a"] == ("pending", 0)  # handed back untried: no attempt counted


def test_an_expired_claim_is_taken_over_and_marked_as_possibly_in_slack(db_url):
    with store.session_scope(db_url) as session:
        _enqueue(session, "old")
        _enqueue(session, "fresh")
    wall = store.utcnow()
    with store.session_scope(db_url) as session:
        dead = outbox.claim(session, 1, "dead-worker", T0, LEASE, wall=wall - LEASE - timedelta(seconds=1))
        outbox.claim(session, 2, "live-worker", T0, LEASE, wall=wall)
    with store.session_scope(db_url) as session:
        assert outbox.due_ids(session, T0, wall=wall) == [1]
        taken = outbox.claim(session, 1, "new-worker", T0, LEASE, wall=wall)
    assert taken is not None and taken.token != dead.token
    with store.session_scope(db_url) as session:
        old, fresh = session.get(store.OutboxMessage, 1), session.get(store.OutboxMessage, 2)
        assert (old.state, old.claimed_by, old.may_be_posted, old.attempts) == ("claimed", "new-worker", True, 0)
        assert (fresh.state, fresh.claimed_by, fresh.may_be_posted) == ("claimed", "live-worker", False)
        # the dead worker comes back: it records nothing and the row is left to the new holder
        assert outbox.record_outcome(session, dead, "sent", T0, ts="1.000001") is None
        assert outbox.renew(session, dead, LEASE) is None
    with store.session_scope(db_url) as session:
        assert outbox.record_outcome(session, taken, "found", T0, ts="1.000002") == "sent"
        assert outbox.record_outcome(session, taken, "failed", T0, error="late") is None  # sent stays sent
    assert _rows(db_url)["old"] == ("sent", 1)


def test_an_unknown_outcome_holds_the_row_in_real_time_then_asks_for_a_look(db_url):
    claim = _claimed(db_url)
    wall = store.utcnow()
    with store.session_scope(db_url) as session:
        assert outbox.record_outcome(session, claim, "unknown", T0, error="timeout",
                                     late_store=timedelta(minutes=1), wall=wall) == "pending"
    later = T0 + timedelta(hours=1)  # past the backoff in logical time
    with store.session_scope(db_url) as session:
        row = session.get(store.OutboxMessage, claim.row_id)
        assert row.may_be_posted and row.held_until == wall + timedelta(minutes=1)
        assert outbox.due_ids(session, later, wall=wall) == []
        assert outbox.due_ids(session, later, wall=wall + timedelta(minutes=1)) == [claim.row_id]
        again = outbox.claim(session, claim.row_id, "w2", later, LEASE, wall=wall + timedelta(minutes=1))
    with store.session_scope(db_url) as session:  # a look that failed leaves it possibly in Slack
        outbox.record_outcome(session, again, "failed", later, error="could not check Slack")
        assert session.get(store.OutboxMessage, claim.row_id).may_be_posted
    with store.session_scope(db_url) as session:
        third = outbox.claim(session, claim.row_id, "w3", later + timedelta(hours=1), LEASE)
        outbox.record_outcome(session, third, "failed", later, error="HTTP 500", looked=True)  # not there
        assert not session.get(store.OutboxMessage, claim.row_id).may_be_posted


def test_the_last_attempt_of_a_row_possibly_in_slack_is_not_dead_lettered_unseen(db_url):
    claim = _claimed(db_url)
    with store.session_scope(db_url) as session:
        session.get(store.OutboxMessage, claim.row_id).attempts = outbox.MAX_ATTEMPTS - 1
    with store.session_scope(db_url) as session:
        assert outbox.record_outcome(session, claim, "unknown", T0, error="timeout") == "pending"
    with store.session_scope(db_url) as session:
        last = outbox.claim(session, claim.row_id, "w2", T0 + timedelta(hours=1), LEASE)
        assert outbox.record_outcome(session, last, "failed", T0, error="timeout (not in Slack)", looked=True) == "dead"


# Operations of three workers on one row, in any order: claim it (with a lease that is live, or
# already run out, as a dead or stalled worker's would be), renew the claim, record an outcome,
# hand it back. Stale claims are kept and used again, as a worker that woke up would.
_OPS = st.lists(st.tuples(
    st.sampled_from(("claim", "claim-expired", "renew", "record", "release")),
    st.integers(0, 2),
    st.sampled_from(outbox.OUTCOMES),
), max_size=25)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_OPS)
def test_only_the_latest_claim_changes_a_row_and_a_sent_row_stays_sent(sqlite_url, ops):
    with store.session_scope(sqlite_url) as session:
        session.execute(sa.delete(store.OutboxMessage))
        _enqueue(session, "m")
    with store.session_scope(sqlite_url) as session:
        row_id = session.scalar(sa.select(store.OutboxMessage.id))
    claims: dict[int, outbox.Claim] = {}
    latest: outbox.Claim | None = None
    sent_ts = None
    for n, (op, worker, outcome) in enumerate(ops):
        now = T0 + timedelta(days=n)  # past any backoff
        with store.session_scope(sqlite_url) as session:
            before = session.get(store.OutboxMessage, row_id)
            before = (before.state, before.attempts, before.claim_token, before.sent_ts)
            if op.startswith("claim"):
                lease = timedelta(0) if op == "claim-expired" else timedelta(hours=1)
                claim = outbox.claim(session, row_id, f"w{worker}", now, lease)
                live = latest is not None and latest.held_until > store.utcnow() and before[0] == "claimed"
                if before[0] in ("sent", "dead") or live:
                    assert claim is None
                else:
                    assert claim is not None
                    claims[worker], latest = claim, claim
            elif worker in claims:
                mine = claims[worker]
                holds = latest is not None and mine.token == latest.token and before[0] == "claimed"
                if op == "renew":
                    renewed = outbox.renew(session, mine, timedelta(hours=1))
                    assert (renewed is not None) == holds
                    if renewed is not None:
                        claims[worker] = latest = renewed
                elif op == "release":
                    assert outbox.release(session, mine) == holds
                else:
                    ts = f"1.{n:06d}" if outcome in outbox.DELIVERED else None
                    state = outbox.record_outcome(session, mine, outcome, now, ts=ts, error="e")
                    assert (state is not None) == holds
                    if state == "sent":
                        sent_ts = ts
            session.flush()
            after = session.get(store.OutboxMessage, row_id)
            after_state = (after.state, after.attempts, after.claim_token, after.sent_ts)
        if before[0] in ("sent", "dead"):
            assert after_state == before  # nothing moves a delivered or dead row (but a re-queue)
        if after_state[0] == "sent":
            assert after_state[3] == sent_ts


def _claimed(url, key="m", incident=True, kind="new"):
    with store.session_scope(url) as session:
        incident_id = _incident(session) if incident else None
        _enqueue(session, key, incident_id, kind=kind)
    with store.session_scope(url) as session:
        row_id = session.scalar(sa.select(store.OutboxMessage.id).where(store.OutboxMessage.dedup_key == key))
        return outbox.claim(session, row_id, "w1", T0, timedelta(minutes=5))


def test_a_failure_retries_with_backoff_until_the_last_attempt_dead_letters(sqlite_url):
    claim = _claimed(sqlite_url)
    now = T0
    states = []
    for attempt in range(1, outbox.MAX_ATTEMPTS + 1):
        with store.session_scope(sqlite_url) as session:
            if attempt > 1:
                claim = outbox.claim(session, claim.row_id, "w1", now, timedelta(minutes=5))
            states.append(outbox.record_outcome(session, claim, "failed", now, error="HTTP 500"))
            row = session.get(store.OutboxMessage, claim.row_id)
            if row.state == "pending":
                assert row.next_attempt_at == now + outbox.backoff(attempt)
                assert row.claimed_by is None
        now += timedelta(hours=1)
    assert states == ["pending"] * (outbox.MAX_ATTEMPTS - 1) + ["dead"]
    with store.session_scope(sqlite_url) as session:
        (dead,) = outbox.dead_letters(session)
        kinds = [e.kind for e in session.scalars(sa.select(store.IncidentEvent))]
        outcomes = [a.outcome for a in session.scalars(sa.select(store.DeliveryAttempt))]
    assert dead["attempts"] == outbox.MAX_ATTEMPTS and dead["error"] == "HTTP 500"
    assert kinds == ["delivery_failed"] and outcomes == ["failed"] * outbox.MAX_ATTEMPTS


def test_a_refusal_dead_letters_at_once_and_a_delivery_opens_the_thread(sqlite_url):
    refused = _claimed(sqlite_url, "refused", incident=False)
    posted = _claimed(sqlite_url, "posted")
    with store.session_scope(sqlite_url) as session:
        assert outbox.record_outcome(session, refused, "dead", T0, error="channel_not_found") == "dead"
        assert outbox.record_outcome(session, posted, "sent", T0, ts="1700000000.000100") == "sent"
    with store.session_scope(sqlite_url) as session:
        row = session.get(store.OutboxMessage, posted.row_id)
        assert (row.state, row.sent_ts, row.attempts, row.last_error) == ("sent", "1700000000.000100", 1, None)
        assert outbox.thread_ts(session, row) == "1700000000.000100"
        (thread,) = session.scalars(sa.select(store.IncidentThread)).all()
        assert (thread.incident_id, thread.channel) == (row.incident_id, "#bpbd-siaga")
        assert [e.kind for e in session.scalars(sa.select(store.IncidentEvent))] == ["delivered"]  # a digest has no timeline
        assert outbox.summary(session) == {"dead": 1, "sent": 1}
        with pytest.raises(ValueError, match="outcome"):
            outbox.record_outcome(session, posted, "posted", T0)


def test_dead_letters_oldest_or_newest_first(sqlite_url):
    with store.session_scope(sqlite_url) as session:
        for key in ("a", "b", "c"):
            _enqueue(session, key)
        session.flush()
        for row in session.scalars(sa.select(store.OutboxMessage)):
            row.state = "dead" if row.dedup_key != "b" else "sent"
    with store.session_scope(sqlite_url) as session:
        assert [d["id"] for d in outbox.dead_letters(session)] == [1, 3]
        assert [d["id"] for d in outbox.dead_letters(session, newest_first=True)] == [3, 1]


def test_backoff_doubles_from_30_seconds_to_a_30_minute_cap():
    assert [outbox.backoff(n).total_seconds() for n in (0, 1, 2, 3, 6, 7, 20)] == [30, 30, 60, 120, 960, 1800, 1800]


def _writes_outbox_rows(tree: ast.AST) -> list[int]:
    """Lines that construct an OutboxMessage or run an UPDATE/INSERT/DELETE on its table."""
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
        args = [a.attr if isinstance(a, ast.Attribute) else getattr(a, "id", None) for a in node.args]
        if name == "OutboxMessage" or (name in {"update", "insert", "delete"} and "OutboxMessage" in args):
            lines.append(node.lineno)
    return lines


def test_no_other_core_module_writes_outbox_rows():
    offenders = {}
    for path in sorted(CORE.rglob("*.py")):
        lines = _writes_outbox_rows(ast.parse(path.read_text(encoding="utf-8")))
        if lines and path.name != "outbox.py":
            offenders[str(path.relative_to(CORE))] = lines
    assert offenders == {}
    assert _writes_outbox_rows(ast.parse((CORE / "outbox.py").read_text(encoding="utf-8")))  # the check sees them
