"""Delivery through the outbox with the real slack-sdk client against the fake Slack server:
every message arrives exactly once, in its incident's thread, whatever Slack or Airflow does."""
from __future__ import annotations

import shutil
import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from siaga import alerts, delivery, outbox, store
from siaga_dev.fakeslack import FakeSlack
from siaga.slackclient import make_client
from support import delivery_chaos
from support.incidents import sangsit_flood

T0 = datetime(2026, 1, 15, 1, 0, tzinfo=timezone.utc)
TOKEN = "xoxb-test"


@pytest.fixture
def fake():
    with FakeSlack(token=TOKEN) as server:
        yield server


def client_for(fake, timeout=5):
    return make_client(token=TOKEN, base_url=fake.base_url, timeout=timeout, conn_id=None, backoff_factor=0.01, max_retry_after=2)


def incident_with_messages(db_url, kinds=("new",), channel="#bpbd-siaga", text="Banjir di Sangsit"):
    with store.session_scope(db_url) as session:
        incident = sangsit_flood(session, T0)
        for i, kind in enumerate(kinds):
            assert outbox.enqueue(
                session, dedup_key=f"{incident.id}:bpbd:{kind}:{i}", incident_id=incident.id, receiver="bpbd",
                channel=channel, kind=kind, payload={"text": f"{text} ({kind} {i})", "blocks": []}, due=T0, now=T0,
            )
        return incident.id


def outbox_states(db_url):
    with store.session_scope(db_url) as session:
        return [r.state for r in session.scalars(sa.select(store.OutboxMessage).order_by(store.OutboxMessage.id))]


def test_first_message_then_updates_in_its_thread_once(db_url, fake):
    incident_with_messages(db_url, kinds=("new", "update", "escalation"))
    report = delivery.deliver(client_for(fake), T0, db_url)
    assert report.sent == 3
    first, update, escalation = fake.messages("#bpbd-siaga")
    assert "thread_ts" not in first or not first.get("thread_ts")
    assert update["thread_ts"] == first["ts"] and not update.get("reply_broadcast")
    assert escalation["thread_ts"] == first["ts"] and escalation.get("reply_broadcast") is True
    again = delivery.deliver(client_for(fake), T0 + timedelta(minutes=5), db_url)
    assert again.sent == 0 and fake.requests_count("chat.postMessage") == 3
    with store.session_scope(db_url) as session:
        (thread,) = session.scalars(sa.select(store.IncidentThread)).all()
        assert thread.ts == first["ts"]
        kinds = [e.kind for e in session.scalars(sa.select(store.IncidentEvent))]
    assert kinds.count("delivered") == 3


def test_update_waits_until_the_first_message_is_out(db_url, fake):
    incident_with_messages(db_url, kinds=("new", "update"))
    fake.fail("chat.postMessage", "error", error="channel_not_found")  # not transient: dead
    report = delivery.deliver(client_for(fake), T0, db_url)
    assert report.dead == 1
    # with the first message dead, the update goes out on its own rather than waiting forever
    assert outbox_states(db_url) == ["dead", "sent"]


def test_server_errors_retry_later_then_dead_letter_visibly(db_url, fake):
    """Every attempt answered 5xx: each may have landed, so each retry looks in Slack first, and
    the last look (Slack: not there) dead-letters it."""
    incident_with_messages(db_url)
    fake.fail("chat.postMessage", "server_error", times=1000)
    now = T0
    for _ in range(outbox.MAX_ATTEMPTS + 1):
        delivery.deliver(client_for(fake), now, db_url, late_store=0)
        now += timedelta(hours=1)
    assert outbox_states(db_url) == ["dead"]
    with store.session_scope(db_url) as session:
        attempts = session.scalars(sa.select(store.DeliveryAttempt).order_by(store.DeliveryAttempt.id)).all()
        events = [e.kind for e in session.scalars(sa.select(store.IncidentEvent))]
        assert outbox.dead_letters(session)[0]["attempts"] == outbox.MAX_ATTEMPTS + 1
    assert [a.outcome for a in attempts] == ["unknown"] * outbox.MAX_ATTEMPTS + ["failed"]
    assert fake.requests_count("chat.postMessage") == outbox.MAX_ATTEMPTS  # one post per attempt, no blind re-send
    assert "delivery_failed" in events and fake.messages() == []


@pytest.fixture(scope="module")
def migrated_sqlite(tmp_path_factory):
    """A migrated, empty SQLite database to copy: one per hypothesis example, without paying
    for the migrations each time."""
    path = tmp_path_factory.mktemp("template") / "siaga.db"
    store.migrate(f"sqlite:///{path}")
    store.engine_for(f"sqlite:///{path}").dispose()
    return path


# What Slack does with one post: stores it and answers 5xx, answers 5xx without storing it,
# stores it and drops the connection, or just posts it ("delay" of 0 s).
POST_FAULTS = st.one_of(
    st.tuples(st.sampled_from(["stored_server_error", "server_error"]), st.sampled_from([500, 502, 503, 504])),
    st.tuples(st.sampled_from(["drop", "delay"]), st.just(500)),
)


@settings(max_examples=15, deadline=None)
@given(incidents=st.integers(1, 3), faults=st.lists(POST_FAULTS, max_size=10),
       lookup_errors=st.lists(st.sampled_from([500, 502, 503]), max_size=3))
def test_any_run_of_5xx_and_lost_answers_reaches_slack_exactly_once(migrated_sqlite, incidents, faults, lookup_errors):
    """Property: whatever sequence of 5xx (stored or not), dropped answers and clean posts Slack
    gives the posts, and 5xx on the looks, run after run of the real deliver worker with the
    real client leaves every outbox row in Slack exactly once, in its incident's thread, and
    recorded with the ts Slack gave it."""
    path = migrated_sqlite.parent / f"{uuid.uuid4().hex}.db"
    shutil.copy(migrated_sqlite, path)
    url = f"sqlite:///{path}"
    try:
        delivery_chaos.seed_outbox(url, incidents, updates=1)
        with FakeSlack(token=TOKEN) as fake:
            for mode, status in faults:
                fake.fail("chat.postMessage", mode, status=status)
            for status in lookup_errors:
                fake.fail("conversations.history", "server_error", status=status)
            now = T0
            while delivery_chaos.unfinished(url)[0] and now < T0 + timedelta(hours=40):
                delivery.deliver(client_for(fake), now, url, late_store=0)
                now += timedelta(hours=1)
            result = delivery_chaos.tally(fake.messages(), url)
        assert result.problems == []
        assert (result.expected, result.received) == (2 * incidents, 2 * incidents) and result.exactly_once
    finally:
        store.engine_for(url).dispose()
        path.unlink()


def test_rate_limit_is_honoured_by_the_client(db_url, fake):
    incident_with_messages(db_url)
    fake.fail("chat.postMessage", "ratelimit", times=1, seconds=1)
    report = delivery.deliver(client_for(fake), T0, db_url)
    assert report.sent == 1 and fake.requests_count("chat.postMessage") == 2
    assert len(fake.messages()) == 1


def test_backoff_before_retry(db_url, fake):
    incident_with_messages(db_url)
    fake.fail("chat.postMessage", "server_error")
    first = delivery.deliver(client_for(fake), T0, db_url, late_store=0)
    assert first.retry_later == 1
    too_soon = delivery.deliver(client_for(fake), T0, db_url, late_store=0)
    assert too_soon.sent == 0
    later = delivery.deliver(client_for(fake), T0 + timedelta(minutes=5), db_url, late_store=0)
    assert later.sent == 1 and len(fake.messages()) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_post_slack_stored_before_answering_5xx_is_found_not_posted_again(db_url, fake, status):
    """A gateway's 5xx after Slack stored the post: once re-sent by slack-sdk (500, 503) or by
    the next run (502, 504), showing the alert twice. Now it is looked up, found, and its
    update goes into its thread."""
    incident_with_messages(db_url, kinds=("new", "update"))
    fake.fail("chat.postMessage", "stored_server_error", status=status)
    first = delivery.deliver(client_for(fake), T0, db_url, late_store=0)
    assert (first.sent, first.retry_later, first.waiting_for_thread) == (0, 1, 1)
    assert len(fake.messages()) == 1
    later = delivery.deliver(client_for(fake), T0 + timedelta(hours=1), db_url, late_store=0)
    assert (later.found_already_sent, later.sent) == (1, 1)
    again = delivery.deliver(client_for(fake), T0 + timedelta(hours=2), db_url, late_store=0)
    assert again.sent == again.found_already_sent == 0
    first_post, update = fake.messages("#bpbd-siaga")
    assert update["thread_ts"] == first_post["ts"] and fake.requests_count("chat.postMessage") == 2
    assert outbox_states(db_url) == ["sent", "sent"]
    with store.session_scope(db_url) as session:
        assert session.get(store.OutboxMessage, 1).sent_ts == first_post["ts"]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_post_refused_with_5xx_is_looked_up_then_delivered_once(db_url, fake, status):
    """Nothing stored: the 5xx is still an unknown outcome (the client cannot tell), so the next
    run looks, finds nothing, and posts it once."""
    incident_with_messages(db_url)
    fake.fail("chat.postMessage", "server_error", status=status)
    first = delivery.deliver(client_for(fake), T0, db_url, late_store=0)
    assert first.retry_later == 1 and fake.messages() == []
    def looks() -> int:  # the channel's id, then its history (no channel yet: nothing in it)
        return fake.requests_count("conversations.list") + fake.requests_count("conversations.history")

    before = looks()
    later = delivery.deliver(client_for(fake), T0 + timedelta(hours=1), db_url, late_store=0)
    assert later.sent == 1 and looks() > before
    assert len(fake.messages()) == 1 and fake.requests_count("chat.postMessage") == 2
    with store.session_scope(db_url) as session:
        attempts = session.scalars(sa.select(store.DeliveryAttempt).order_by(store.DeliveryAttempt.id)).all()
        assert [a.outcome for a in attempts] == ["unknown", "sent"]


def test_unknown_outcome_is_checked_before_posting_again(db_url, fake):
    incident_with_messages(db_url)
    fake.fail("chat.postMessage", "drop")  # stored by Slack, but the answer is lost
    # late_store=0: Slack stored the post before the answer was lost, so a look at once settles it
    first = delivery.deliver(client_for(fake), T0, db_url, late_store=0)
    assert first.sent == 0 and len(fake.messages()) == 1
    second = delivery.deliver(client_for(fake), T0 + timedelta(hours=1), db_url, late_store=0)
    assert second.found_already_sent == 1
    assert len(fake.messages()) == 1 and fake.requests_count("chat.postMessage") == 1
    assert outbox_states(db_url) == ["sent"]


@pytest.mark.parametrize("mode", ["garbled", "no_ts"])
def test_a_post_answered_with_garbage_is_looked_up_not_dead_lettered_or_recorded_without_its_ts(db_url, fake, mode):
    """Slack stored the post, and the answer was not JSON (once a permanent refusal: dead-lettered
    at once, its updates never threaded) or had no ts (once recorded as sent with ts "None")."""
    incident_with_messages(db_url, kinds=("new", "update"))
    fake.fail("chat.postMessage", mode)
    first = delivery.deliver(client_for(fake), T0, db_url, late_store=0)
    assert first.sent == 0 and len(fake.messages()) == 1
    delivery.deliver(client_for(fake), T0 + timedelta(hours=1), db_url, late_store=0)
    assert outbox_states(db_url) == ["sent", "sent"]
    first_post, reply = fake.messages()[0], fake.messages()[1]
    assert len(fake.messages()) == 2 and reply["thread_ts"] == first_post["ts"]
    with store.session_scope(db_url) as session:
        assert session.get(store.OutboxMessage, 1).sent_ts == first_post["ts"]


def test_a_worker_that_died_mid_send_does_not_cause_a_second_post(db_url, fake):
    """The real failure: the worker claimed the row, Slack stored its post, and it died before
    recording anything, so the row is still claimed with attempts = 0."""
    incident_with_messages(db_url)
    client = client_for(fake)
    with store.session_scope(db_url) as session:
        # a lease of zero: expired at once, as the dead worker's lease would be by now
        assert outbox.claim(session, 1, "dead-worker", T0, lease=timedelta(0)) is not None
    from siaga.slackclient import outbox_metadata, post_message

    post_message(client, "#bpbd-siaga", {"text": "x"}, metadata=outbox_metadata(1))  # posted, then died
    with store.session_scope(db_url) as session:
        row = session.get(store.OutboxMessage, 1)
        assert (row.state, row.attempts) == ("claimed", 0)
    report = delivery.deliver(client, T0 + timedelta(minutes=1), db_url)
    assert report.found_already_sent == 1 and report.sent == 0
    assert len(fake.messages()) == 1 and fake.requests_count("chat.postMessage") == 1
    with store.session_scope(db_url) as session:
        row = session.get(store.OutboxMessage, 1)
        assert (row.state, row.sent_ts) == ("sent", fake.messages()[0]["ts"])


def test_a_live_claim_is_not_taken_by_a_run_whose_logical_time_is_later(db_url, fake):
    """Leases are real time: a deliver run an hour ahead (or behind) in logical time leaves a
    live claim alone."""
    incident_with_messages(db_url)
    with store.session_scope(db_url) as session:
        live = outbox.claim(session, 1, "slow-worker", T0, lease=timedelta(minutes=5))
    report = delivery.deliver(client_for(fake), T0 + timedelta(hours=1), db_url)
    assert report.sent == 0 and fake.messages() == []
    with store.session_scope(db_url) as session:
        assert outbox.record_outcome(session, live, "sent", T0, ts="1.000001") == "sent"


def test_a_lost_claim_records_nothing_and_posts_nothing(db_url, fake):
    incident_with_messages(db_url)
    with store.session_scope(db_url) as session:
        stale = outbox.claim(session, 1, "stalled", T0, lease=timedelta(0))
    assert delivery.deliver(client_for(fake), T0, db_url).sent == 1
    with store.session_scope(db_url) as session:  # the stalled worker wakes up with a failure to record
        assert outbox.record_outcome(session, stale, "failed", T0, error="HTTP 500") is None
        assert outbox.renew(session, stale, timedelta(minutes=5)) is None
        assert not outbox.release(session, stale)
    assert outbox_states(db_url) == ["sent"] and len(fake.messages()) == 1


def test_an_unknown_outcome_on_the_last_attempt_is_looked_up_before_dead_letter(db_url, fake):
    incident_with_messages(db_url, kinds=("new", "update"))
    with store.session_scope(db_url) as session:
        session.get(store.OutboxMessage, 1).attempts = outbox.MAX_ATTEMPTS - 1
    fake.fail("chat.postMessage", "drop")  # the 8th attempt lands, but its answer is lost
    first = delivery.deliver(client_for(fake), T0, db_url, late_store=0)
    assert first.dead == 0 and first.retry_later == 1
    later = delivery.deliver(client_for(fake), T0 + timedelta(hours=1), db_url, late_store=0)
    assert later.found_already_sent == 1 and later.sent == 1
    first_msg, update = fake.messages("#bpbd-siaga")
    assert update["thread_ts"] == first_msg["ts"]  # the update went into its thread
    assert outbox_states(db_url) == ["sent", "sent"]


def test_the_last_attempt_dead_letters_only_after_slack_says_it_is_not_there(db_url, fake):
    incident_with_messages(db_url)
    with store.session_scope(db_url) as session:
        session.get(store.OutboxMessage, 1).attempts = outbox.MAX_ATTEMPTS - 1
    from siaga.slackclient import post_message

    post_message(client_for(fake), "#bpbd-siaga", {"text": "another message"})  # the channel has history
    fake.fail("chat.postMessage", "hang", seconds=2)  # times out, stores nothing
    delivery.deliver(client_for(fake, timeout=1), T0, db_url, late_store=0)
    assert outbox_states(db_url) == ["pending"]
    history = fake.requests_count("conversations.history")
    report = delivery.deliver(client_for(fake), T0 + timedelta(hours=1), db_url, late_store=0)
    assert report.dead == 1 and fake.requests_count("conversations.history") > history
    assert fake.requests_count("chat.postMessage") == 2 and outbox_states(db_url) == ["dead"]


def test_a_post_slack_stores_after_the_client_gave_up_is_waited_for_not_reposted(db_url, fake):
    incident_with_messages(db_url)
    fake.fail("chat.postMessage", "delay", seconds=1.5)  # slower than the client's timeout
    first = delivery.deliver(client_for(fake, timeout=1), T0, db_url, late_store=60)
    assert first.retry_later == 1
    # past the backoff in logical time, but Slack may still be storing it: the row is held
    again = delivery.deliver(client_for(fake), T0 + timedelta(hours=1), db_url, late_store=60)
    assert again.sent == 0 and again.found_already_sent == 0
    assert fake.wait_idle()
    with store.session_scope(db_url) as session:  # the hold ends
        session.get(store.OutboxMessage, 1).held_until = store.utcnow()
    last = delivery.deliver(client_for(fake), T0 + timedelta(hours=2), db_url)
    assert last.found_already_sent == 1 and len(fake.messages()) == 1


def test_two_deliver_tasks_at_once_post_each_message_once(db_url, fake):
    for i in range(6):
        incident_with_messages(db_url, kinds=("new", "update"), text=f"incident {i}")
    fake.fail("chat.postMessage", "delay", times=100, seconds=0.02)
    barrier = threading.Barrier(2)
    errors = []

    def run():
        try:
            barrier.wait()
            delivery.deliver(client_for(fake), T0, db_url)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    delivery.deliver(client_for(fake), T0 + timedelta(minutes=1), db_url)  # whatever waited for a thread
    texts = [m["text"] for m in fake.messages()]
    assert len(texts) == 12 and len(set(texts)) == 12
    assert set(outbox_states(db_url)) == {"sent"}


def test_quiet_hours_hold_only_named_alerts_and_release_them_with_a_note(sqlite_url, fake):
    """Shipped routing at 23:00 WITA: a low-severity flood (BPBD) and a low-severity road accident
    (Dishub) go out at once; a low-severity jam (Dishub holds those) waits until 05:00, says so
    on the timeline and in the message, and is released with a note."""
    from siaga.hazard_config import default_hazard_dir
    from siaga.hazards import HazardSet
    from siaga.incidents import Change
    from siaga.routing import Router
    from siaga import settings

    router = Router.load(settings.config_dir() / "routing.yaml")
    hazard_set = HazardSet.load(default_hazard_dir())
    night = datetime(2026, 1, 15, 15, 0, tzinfo=timezone.utc)  # 23:00 in Bali (WITA)
    with store.session_scope(sqlite_url) as session:
        for hazard, road in (("flood", None), ("traffic_accident", "Jalan Ahmad Yani"), ("traffic_jam", "Jalan Ahmad Yani")):
            incident = store.Incident(
                hazard=hazard, level="village", area_code=f"v-{hazard}", area_name="Sangsit", village="Sangsit",
                district="Sawan", road=road, state="open", severity="low", posts=5, authors=4, notified_posts=5,
                opened_at=night, last_activity_at=night,
            )
            session.add(incident)
            session.flush()
            alerts.enqueue(session, [Change(incident, "new")], hazard_set, router, night)
    with store.session_scope(sqlite_url) as session:
        due = {r.dedup_key.split(":")[0]: r.next_attempt_at for r in session.scalars(sa.select(store.OutboxMessage))}
        held = session.scalars(sa.select(store.IncidentEvent).where(store.IncidentEvent.kind == "held")).all()
    assert due["1"] == night and due["2"] == night
    assert due["3"] == datetime(2026, 1, 15, 21, 0, tzinfo=timezone.utc)  # 05:00 WITA
    assert [e.incident_id for e in held] == [3]
    assert datetime.fromisoformat(held[0].detail["until"]) == due["3"] and held[0].detail["receiver"] == "dishub"

    delivery.deliver(client_for(fake), night, sqlite_url)
    assert len(fake.messages()) == 2
    delivery.deliver(client_for(fake), due["3"], sqlite_url)
    jam = [m for m in fake.messages() if "quiet hours" in m["text"]]
    assert len(jam) == 1 and "15 Jan 23:00" in jam[0]["text"] and "16 Jan 05:00" in jam[0]["text"]
    with store.session_scope(sqlite_url) as session:
        released = session.scalars(sa.select(store.IncidentEvent).where(store.IncidentEvent.kind == "released")).all()
    assert [e.incident_id for e in released] == [3]
    assert datetime.fromisoformat(released[0].detail["until"]) == due["3"] and "quiet hours" in released[0].detail["note"]




@pytest.mark.parametrize("token", ["xoxb-revoked", ""], ids=["invalid_auth", "not_authed"])
def test_a_refused_token_is_retried_later_and_each_message_goes_out_once_it_is_fixed(db_url, fake, token):
    """A token mistyped or rotated at the wrong moment: Slack refuses every call ('invalid_auth',
    'not_authed'). Those rows were dead-lettered at the first refusal, so every alert of the
    hour the token was wrong was given up for good; they are the deployment's fault, not the
    message's, and wait for the fix like an outage."""
    incident_with_messages(db_url, kinds=("new", "update"))
    wrong = make_client(token="xoxb-placeholder", base_url=fake.base_url, timeout=5, conn_id=None, backoff_factor=0.01,
                        max_retry_after=2)
    wrong.token = token or None  # none at all: the request carries no token, 'not_authed'
    report = delivery.deliver(wrong, T0, db_url)
    assert report.dead == 0 and report.retry_later == 1 and fake.messages() == []
    assert outbox_states(db_url) == ["pending", "pending"]
    fixed = delivery.deliver(client_for(fake), T0 + timedelta(hours=1), db_url)
    assert fixed.sent == 2 and outbox_states(db_url) == ["sent", "sent"]
    first, update = fake.messages("#bpbd-siaga")
    assert update["thread_ts"] == first["ts"] and fake.requests_count("chat.postMessage") == 3  # the refused one, then two


def test_a_message_whose_blocks_slack_refuses_goes_out_as_its_text_once(db_url, fake):
    """Slack's block validation is stricter than any builder: 'invalid_blocks' was a permanent
    refusal, dead-lettered at once, and a re-queued dead letter of this kind failed the same way
    for ever: the alert never reached the channel. Slack posted nothing, so the text, which says
    what, where and how bad, goes out instead, once."""
    incident_id = incident_with_messages(db_url, kinds=())
    too_long = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
    with store.session_scope(db_url) as session:
        assert outbox.enqueue(session, dedup_key=f"{incident_id}:bpbd:new:blocks", incident_id=incident_id, receiver="bpbd",
                              channel="#bpbd-siaga", kind="new", payload={"text": "Banjir di Sangsit: tingkat tinggi", "blocks": too_long},
                              due=T0, now=T0)
    report = delivery.deliver(client_for(fake), T0, db_url)
    assert report.sent == 1 and report.dead == 0 and outbox_states(db_url) == ["sent"]
    (message,) = fake.messages("#bpbd-siaga")
    assert message["text"] == "Banjir di Sangsit: tingkat tinggi" and not message.get("blocks")
    again = delivery.deliver(client_for(fake), T0 + timedelta(hours=1), db_url)
    assert again.sent == 0 and len(fake.messages("#bpbd-siaga")) == 1
