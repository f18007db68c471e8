"""Delivery through the outbox with the real slack-sdk client against the fake Slack server:
every message arrives exactly once, in its incident's thread, whatever Slack or Airflow does."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from siaga import alerts, delivery, outbox, store
from siaga_dev.fakeslack import FakeSlack
from siaga.slackclient import make_client

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
        incident = store.Incident(
            hazard="flood", level="village", area_code="51.08.07.2001", area_name="Sangsit", village="Sangsit",
            district="Sawan", state="open", severity="low", posts=5, authors=4, notified_posts=5,
            opened_at=T0, last_activity_at=T0,
        )
        session.add(incident)
        session.flush()
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
    incident_with_messages(db_url)
    fake.fail("chat.postMessage", "server_error", times=1000)
    now = T0
    for _ in range(outbox.MAX_ATTEMPTS):
        delivery.deliver(client_for(fake), now, db_url)
        now += timedelta(hours=1)
    assert outbox_states(db_url) == ["dead"]
    with store.session_scope(db_url) as session:
        attempts = session.scalars(sa.select(store.DeliveryAttempt)).all()
        events = [e.kind for e in session.scalars(sa.select(store.IncidentEvent))]
        assert outbox.dead_letters(session)[0]["attempts"] == outbox.MAX_ATTEMPTS
    assert len(attempts) == outbox.MAX_ATTEMPTS and all(a.outcome == "failed" for a in attempts)
    assert "delivery_failed" in events and fake.messages() == []


def test_rate_limit_is_honoured_by_the_client(db_url, fake):
    incident_with_messages(db_url)
    fake.fail("chat.postMessage", "ratelimit", times=1, seconds=1)
    report = delivery.deliver(client_for(fake), T0, db_url)
    assert report.sent == 1 and fake.requests_count("chat.postMessage") == 2
    assert len(fake.messages()) == 1


def test_backoff_before_retry(db_url, fake):
    incident_with_messages(db_url)
    fake.fail("chat.postMessage", "server_error", times=3)  # the client's own retries use them up
    first = delivery.deliver(client_for(fake), T0, db_url)
    assert first.retry_later == 1
    too_soon = delivery.deliver(client_for(fake), T0, db_url)
    assert too_soon.sent == 0
    later = delivery.deliver(client_for(fake), T0 + timedelta(minutes=5), db_url)
    assert later.sent == 1 and len(fake.messages()) == 1


def test_unknown_outcome_is_checked_before_posting_again(db_url, fake):
    incident_with_messages(db_url)
    fake.fail("chat.postMessage", "drop")  # stored by Slack, but the answer is lost
    first = delivery.deliver(client_for(fake), T0, db_url)
    assert first.sent == 0 and len(fake.messages()) == 1
    second = delivery.deliver(client_for(fake), T0 + timedelta(hours=1), db_url)
    assert second.found_already_sent == 1
    assert len(fake.messages()) == 1 and fake.requests_count("chat.postMessage") == 1
    assert outbox_states(db_url) == ["sent"]


def test_a_worker_that_died_mid_send_does_not_cause_a_second_post(db_url, fake):
    incident_with_messages(db_url)
    client = client_for(fake)
    with store.session_scope(db_url) as session:
        assert outbox.claim(session, 1, "dead-worker", T0) is not None
    # the dead worker had posted before dying
    from siaga.slackclient import outbox_metadata, post_message

    post_message(client, "#bpbd-siaga", {"text": "x"}, metadata=outbox_metadata(1))
    with store.session_scope(db_url) as session:
        session.get(store.OutboxMessage, 1).attempts = 1
    later = T0 + outbox.STALE_CLAIM + timedelta(minutes=1)
    with store.session_scope(db_url) as session:
        session.get(store.OutboxMessage, 1).claimed_at = T0
    report = delivery.deliver(client, later, db_url)
    assert report.found_already_sent == 1 and len(fake.messages()) == 1


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


def test_quiet_hours_hold_low_severity_but_not_high(sqlite_url):
    from siaga.hazard_config import default_hazard_dir
    from siaga.hazards import HazardSet
    from siaga.incidents import Change
    from siaga.routing import Router
    from siaga import settings

    router = Router.load(settings.config_dir() / "routing.yaml")
    hazard_set = HazardSet.load(default_hazard_dir())
    night = datetime(2026, 1, 15, 15, 0, tzinfo=timezone.utc)  # 23:00 in Bali (WITA)
    with store.session_scope(sqlite_url) as session:
        for severity in ("low", "high"):
            incident = store.Incident(
                hazard="flood", level="village", area_code=f"v-{severity}", area_name="Sangsit", village="Sangsit",
                district="Sawan", state="open", severity=severity, posts=5, authors=4, notified_posts=5,
                opened_at=night, last_activity_at=night,
            )
            session.add(incident)
            session.flush()
            alerts.enqueue(session, [Change(incident, "new")], hazard_set, router, night)
    with store.session_scope(sqlite_url) as session:
        due = {r.dedup_key.split(":")[0]: r.next_attempt_at for r in session.scalars(sa.select(store.OutboxMessage))}
        held = session.scalars(sa.select(store.IncidentEvent).where(store.IncidentEvent.kind == "held")).all()
    assert due["2"] == night  # high overrides quiet hours
    assert due["1"] == datetime(2026, 1, 15, 22, 0, tzinfo=timezone.utc)  # 06:00 WITA
    assert len(held) == 1 and held[0].incident_id == 1
