"""Slack delivery probed from outside: the real slack-sdk client against the fake Slack Web API on
127.0.0.1, through `delivery.deliver` as the deliver DAG runs it. Each test is a misbehaviour of
Slack (or of the people using it) that once broke a promise: no token in what Siaga records; an
incident's updates reach its channel, in its thread and in order, even after its alert was
deleted in Slack or held by quiet hours; a rate limit is waited out, not spent into; an answer
that is not Slack's is looked up, not dead-lettered; a look in Slack does not mistake another
database's post for this row's."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from siaga import delivery, outbox, store
from siaga.slackclient import make_client
from siaga_dev.fakeslack import FakeSlack
from support.incidents import sangsit_flood

T0 = datetime(2026, 1, 15, 1, 0, tzinfo=timezone.utc)
TOKEN = "xoxb-1234567890-0987654321-probeSecretValue"
CHANNEL = "#bpbd-siaga"


@pytest.fixture
def fake():
    with FakeSlack(token=TOKEN) as server:
        yield server


def client_for(fake: FakeSlack):
    return make_client(token=TOKEN, base_url=fake.base_url, timeout=5, conn_id=None, backoff_factor=0.01,
                       max_retry_after=2)


def new_incident(db_url: str) -> int:
    with store.session_scope(db_url) as session:
        return sangsit_flood(session, T0).id


def queue(db_url: str, incident_id: int | None, kind: str, text: str, due: datetime = T0) -> None:
    """One pending message, written at `due`."""
    with store.session_scope(db_url) as session:
        assert outbox.enqueue(session, dedup_key=f"{incident_id}:bpbd:{kind}:{text}", incident_id=incident_id,
                              receiver="bpbd", channel=CHANNEL, kind=kind, payload={"text": text, "blocks": []},
                              due=due, now=due)


def rows(db_url: str) -> list[store.OutboxMessage]:
    with store.session_scope(db_url) as session:
        found = session.scalars(sa.select(store.OutboxMessage).order_by(store.OutboxMessage.id)).all()
        session.expunge_all()
        return list(found)


def everything_recorded(db_url: str) -> str:
    """Every row of the tables a delivery writes, as text."""
    with store.session_scope(db_url) as session:
        return "\n".join(
            repr([getattr(row, column.key) for column in sa.inspect(model).columns])
            for model in (store.OutboxMessage, store.DeliveryAttempt, store.IncidentEvent)
            for row in session.scalars(sa.select(model))
        )


# --- secrets ---------------------------------------------------------------------------------------

ECHO = "<html><body>400 Bad Request. Your request: {authorization}</body></html>"


@pytest.mark.parametrize("method", ["chat.postMessage", "conversations.history"])
def test_an_answer_quoting_the_token_back_leaves_it_in_no_row_log_or_report(sqlite_url, fake, caplog, method):
    """A proxy in front of Slack answers 200 with its own HTML page quoting the request back,
    `Authorization: Bearer xoxb-…` included. slack-sdk puts the page's start into the error,
    and that error was recorded as it was: the bot token sat in `outbox.last_error`,
    `delivery_attempts.error`, the deliver task's result (its XCom), the WARNING line, and
    slack-sdk's own ERROR line; a dead letter's error is also quoted in the managers' digest,
    in Slack."""
    caplog.set_level(logging.DEBUG)
    incident_id = new_incident(sqlite_url)
    queue(sqlite_url, incident_id, "new", "Banjir di Sangsit")
    if method == "conversations.history":  # the look in Slack after an unknown outcome
        fake.fail("chat.postMessage", "drop")  # stored, then the connection closed unanswered
        delivery.deliver(client_for(fake), T0, sqlite_url, late_store=0)
    fake.fail(method, "garbled", body=ECHO)
    report = delivery.deliver(client_for(fake), T0 + timedelta(hours=1), sqlite_url, late_store=0)
    assert report.errors and "non-JSON" in report.errors[0]  # the error itself is still said
    assert TOKEN not in repr(report)
    assert TOKEN not in everything_recorded(sqlite_url)
    assert "non-JSON" in caplog.text and TOKEN not in caplog.text
    # and it is still delivered exactly once once Slack answers properly
    delivery.deliver(client_for(fake), T0 + timedelta(hours=2), sqlite_url)
    assert len(fake.messages(CHANNEL)) == 1 and [r.state for r in rows(sqlite_url)] == ["sent"]


# --- threads whose first message is gone ------------------------------------------------------------


def test_updates_after_the_alert_was_deleted_in_slack_go_out_once_and_thread_again(db_url, fake):
    """A duty officer deletes the alert in Slack (noise, or a test). Replying to it is
    'thread_not_found', which was a permanent refusal: every later message of the incident in
    that channel, its resolution too, was dead-lettered. The first of them now goes out on its
    own, once, and the next reply in its thread, not as new pings."""
    incident_id = new_incident(db_url)
    queue(db_url, incident_id, "new", "Banjir di Sangsit")
    delivery.deliver(client_for(fake), T0, db_url)
    (alert,) = fake.messages(CHANNEL)
    fake.delete(CHANNEL, alert["ts"])
    queue(db_url, incident_id, "update", "Banjir meluas")
    queue(db_url, incident_id, "resolved", "Banjir selesai")
    report = delivery.deliver(client_for(fake), T0 + timedelta(minutes=5), db_url)
    assert report.dead == 0 and report.sent == 2
    assert [r.state for r in rows(db_url)] == ["sent", "sent", "sent"]
    update, resolved = fake.messages(CHANNEL)
    assert update["text"] == "Banjir meluas" and not update.get("thread_ts")
    assert resolved["text"] == "Banjir selesai" and resolved["thread_ts"] == update["ts"]
    again = delivery.deliver(client_for(fake), T0 + timedelta(hours=1), db_url)
    assert again.sent == 0 and len(fake.messages(CHANNEL)) == 2


def test_a_reply_whose_outcome_is_unknown_when_its_thread_is_deleted_is_looked_up_not_dead_lettered(db_url, fake):
    """A reply answered 5xx (it may be in the thread), then the thread's first message deleted:
    the look in the thread ('thread_not_found') was taken for a permanent refusal of the
    message and dead-lettered it unseen. A deleted thread holds nothing; the channel is
    searched, and the message goes out once."""
    incident_id = new_incident(db_url)
    queue(db_url, incident_id, "new", "Banjir di Sangsit")
    queue(db_url, incident_id, "update", "Banjir meluas")
    fake.fail("chat.postMessage", "delay")  # the alert goes out
    fake.fail("chat.postMessage", "server_error", status=502)  # the reply: not stored, outcome unknown
    delivery.deliver(client_for(fake), T0, db_url, late_store=0)
    assert [r.state for r in rows(db_url)] == ["sent", "pending"]
    (alert,) = fake.messages(CHANNEL)
    fake.delete(CHANNEL, alert["ts"])
    report = delivery.deliver(client_for(fake), T0 + timedelta(hours=1), db_url, late_store=0)
    assert report.dead == 0 and report.sent == 1
    (update,) = fake.messages(CHANNEL)
    assert update["text"] == "Banjir meluas" and [r.state for r in rows(db_url)] == ["sent", "sent"]


# --- a first message held by quiet hours ----------------------------------------------------------


def test_an_escalation_past_quiet_hours_is_not_held_behind_its_held_first_message(db_url, fake, router, hazard_set):
    """Shipped routing: Dishub's quiet hours (22:00-05:00 WITA) hold low-severity jams. A low jam
    at 23:00 is held; at 23:30 it escalates to high, which the routing says must not wait. The
    escalation waited for its thread, the held first message, until 05:00: five and a half
    hours of a severe jam unseen. Now the first message goes out with it, at 23:30, the
    escalation in its thread (shown in the channel), each once."""
    from siaga import alerts
    from siaga.incidents import Change, WhatChanged

    night = datetime(2026, 1, 15, 15, 0, tzinfo=timezone.utc)  # 23:00 WITA
    later = night + timedelta(minutes=30)
    with store.session_scope(db_url) as session:
        incident = sangsit_flood(session, night, hazard="traffic_jam", level="road", area_code="road-1",
                                 area_name="Jalan Ahmad Yani", road="Jalan Ahmad Yani", village=None, district="Buleleng")
        alerts.enqueue(session, [Change(incident, "new")], hazard_set, router, night)
        incident_id = incident.id
    assert delivery.deliver(client_for(fake), night, db_url).sent == 0  # held, as configured
    with store.session_scope(db_url) as session:
        incident = session.get(store.Incident, incident_id)
        incident.severity = "high"
        alerts.enqueue(session, [Change(incident, "escalation", what=WhatChanged(severity=("low", "high")))],
                       hazard_set, router, later)
    report = delivery.deliver(client_for(fake), later, db_url)
    assert report.sent == 2 and report.waiting_for_thread == 0
    first, escalation = fake.messages("#dishub-siaga")
    assert not first.get("thread_ts") and "quiet hours" in first["text"]
    assert escalation["thread_ts"] == first["ts"] and escalation.get("reply_broadcast") is True
    with store.session_scope(db_url) as session:
        (released,) = session.scalars(sa.select(store.IncidentEvent).where(store.IncidentEvent.kind == "released")).all()
    assert "early" in released.detail["note"]
    morning = delivery.deliver(client_for(fake), datetime(2026, 1, 15, 21, 0, tzinfo=timezone.utc), db_url)
    assert morning.sent == 0 and len(fake.messages("#dishub-siaga")) == 2


def test_a_held_first_message_stays_held_while_nothing_of_its_incident_is_due(sqlite_url, fake, router, hazard_set):
    """The other side: a held low jam with a held (low) update stays held until 05:00."""
    from siaga import alerts
    from siaga.incidents import Change, WhatChanged

    night = datetime(2026, 1, 15, 15, 0, tzinfo=timezone.utc)
    with store.session_scope(sqlite_url) as session:
        incident = sangsit_flood(session, night, hazard="traffic_jam", level="road", area_code="road-1",
                                 area_name="Jalan Ahmad Yani", road="Jalan Ahmad Yani", village=None, district="Buleleng")
        alerts.enqueue(session, [Change(incident, "new")], hazard_set, router, night)
        alerts.enqueue(session, [Change(incident, "update", what=WhatChanged(new_post_ids=(1,), posts=6, authors=5))],
                       hazard_set, router, night + timedelta(minutes=20))
    assert delivery.deliver(client_for(fake), night + timedelta(minutes=30), sqlite_url).sent == 0
    assert fake.messages() == []
    assert delivery.deliver(client_for(fake), datetime(2026, 1, 15, 21, 0, tzinfo=timezone.utc), sqlite_url).sent == 2


# --- Slack's rate limit ------------------------------------------------------------------------------



def _http_date(delta: timedelta) -> str:
    from email.utils import format_datetime

    return format_datetime(datetime.now(timezone.utc) + delta, usegmt=True)


@pytest.mark.parametrize("header, waits", [
    ("600", timedelta(seconds=600)),  # longer than the client sleeps through: honoured by the outbox
    ("99999999999999999999", timedelta(minutes=30)),  # absurd: no longer than the longest backoff
    ("hour-date", timedelta(minutes=30)),  # an HTTP-date an hour away, the same
    ("0", timedelta(seconds=30)),  # "now", slept through by the client 3 times, then the usual backoff
    ("-5", timedelta(seconds=30)),
    ("1.5", timedelta(seconds=30)),  # not delta-seconds: unreadable, as if absent
    ("", timedelta(seconds=30)),  # no Retry-After at all
    ("past-date", timedelta(seconds=30)),
])
def test_a_rate_limit_is_waited_out_and_stops_the_run(sqlite_url, fake, monkeypatch, header, waits):
    """Slack answers 429 to every post. The row was retried after the usual 30 s backoff however
    long Slack asked to wait, and the run went on posting every other due row into the limit
    (each refused, each an attempt spent: a limit of two hours dead-lettered every alert after
    one). Now the retry waits what Slack asked (up to the longest backoff), and the first 429
    the client could not wait out ends the run's posting: the other rows stay due, untried."""
    monkeypatch.setattr("siaga.slackclient.time.sleep", lambda seconds: None)  # the client's own waits
    value = {"hour-date": _http_date(timedelta(hours=1)), "past-date": _http_date(-timedelta(hours=1))}.get(header, header)
    for text in ("satu", "dua", "tiga"):
        queue(sqlite_url, new_incident(sqlite_url), "new", text)
    fake.fail("chat.postMessage", "ratelimit", times=100, retry_after=value)
    report = delivery.deliver(client_for(fake), T0, sqlite_url)
    assert report.retry_later == 1 and report.left == 2 and report.dead == 0
    first, second, third = rows(sqlite_url)
    assert first.next_attempt_at == T0 + waits and first.attempts == 1
    assert (second.attempts, third.attempts) == (0, 0) and fake.messages() == []
    posts = fake.requests_count("chat.postMessage")
    assert posts in (1, 4)  # one request, or that and the client's 3 retries within its limit
    fake.clear_failures()
    delivery.deliver(client_for(fake), T0 + waits, sqlite_url)
    assert sorted(m["text"] for m in fake.messages(CHANNEL)) == ["dua", "satu", "tiga"]
    assert [r.state for r in rows(sqlite_url)] == ["sent"] * 3


# --- answers that are JSON but not Slack's ---------------------------------------------------------


@pytest.mark.parametrize("body", ["[]", "null", "{}", '{"ok": false}'])
def test_a_json_answer_that_is_not_slacks_is_an_unknown_outcome_looked_up_not_a_crash_or_a_dead_letter(db_url, fake, body):
    """A gateway stores the post and answers HTTP 200 with JSON that is not Slack's answer. With
    `[]` reading its error raised AttributeError from inside the error's handler: the deliver run
    ended there (the other due rows unsent, the row left claimed); `null`, `{}` and
    `{"ok": false}`, which name no error, counted as Slack refusing the message for good and
    dead-lettered it at once. Slack names every refusal: this may have landed, so it is looked
    up, found, and not posted again."""
    first, second = new_incident(db_url), new_incident(db_url)
    queue(db_url, first, "new", "Banjir di Sangsit")
    queue(db_url, second, "new", "Longsor di Sukasada")
    fake.fail("chat.postMessage", "garbled", body=body)  # stored, then the odd answer
    report = delivery.deliver(client_for(fake), T0, db_url, late_store=0)
    assert report.dead == 0 and report.sent == 1 and report.retry_later == 1
    assert "slack error: none, the answer was" in report.errors[0]
    assert [r.state for r in rows(db_url)] == ["pending", "sent"] and rows(db_url)[0].may_be_posted
    later = delivery.deliver(client_for(fake), T0 + timedelta(hours=1), db_url, late_store=0)
    assert later.found_already_sent == 1 and [r.state for r in rows(db_url)] == ["sent", "sent"]
    assert sorted(m["text"] for m in fake.messages(CHANNEL)) == ["Banjir di Sangsit", "Longsor di Sukasada"]
    assert fake.requests_count("chat.postMessage") == 2


# --- the marker a look in Slack goes by --------------------------------------------------------------


def test_a_row_is_not_taken_for_another_databases_post_of_the_same_id(db_url, fake, tmp_path):
    """Outbox ids start again in a database restored from a backup or re-created (and a second
    deployment may share the channel). The look in Slack after an unknown outcome searched the
    channel's whole history for the row's id alone: it found the earlier database's post of
    that id, recorded this row as already sent, and its alert never reached Slack. A post also
    carries a key of what its row is, and a post with another key is not this row's."""
    earlier = f"sqlite:///{tmp_path / 'before-restore.db'}"
    store.migrate(earlier)
    queue(earlier, new_incident(earlier), "new", "Banjir di Sangsit")
    delivery.deliver(client_for(fake), T0, earlier)
    store.engine_for(earlier).dispose()
    assert [m["text"] for m in fake.messages(CHANNEL)] == ["Banjir di Sangsit"]

    incident_id = new_incident(db_url)  # the new database: its first row has id 1 again
    queue(db_url, incident_id, "new", "Longsor di Sukasada", due=T0 + timedelta(days=1))
    assert rows(db_url)[0].id == 1
    fake.fail("chat.postMessage", "server_error", status=503)  # not stored; the outcome unknown to us
    delivery.deliver(client_for(fake), T0 + timedelta(days=1), db_url, late_store=0)
    report = delivery.deliver(client_for(fake), T0 + timedelta(days=1, hours=1), db_url, late_store=0)
    assert report.found_already_sent == 0 and report.sent == 1
    assert [m["text"] for m in fake.messages(CHANNEL)] == ["Banjir di Sangsit", "Longsor di Sukasada"]
    again = delivery.deliver(client_for(fake), T0 + timedelta(days=2), db_url)
    assert again.sent == 0 and len(fake.messages(CHANNEL)) == 2


# --- a thread in order -----------------------------------------------------------------------------


def test_a_thread_reads_in_order_when_a_message_in_it_fails_once(db_url, fake):
    """An incident's escalation and then its resolution are due; Slack answers the escalation
    503. The resolution went out at once and the escalation an hour later, after it, broadcast
    to the channel: officers were told a resolved incident had got worse. A message waits for
    the earlier messages of its incident to that channel; each goes out once, in order."""
    incident_id = new_incident(db_url)
    for kind in ("new", "escalation", "resolved"):
        queue(db_url, incident_id, kind, kind)
    fake.fail("chat.postMessage", "delay")  # the alert
    fake.fail("chat.postMessage", "server_error", status=503)  # the escalation: not stored
    first = delivery.deliver(client_for(fake), T0, db_url, late_store=0)
    assert first.sent == 1 and first.retry_later == 1 and first.waiting_for_thread == 1
    delivery.deliver(client_for(fake), T0 + timedelta(hours=1), db_url, late_store=0)
    alert, escalation, resolved = fake.messages(CHANNEL)
    assert [alert["text"], escalation["text"], resolved["text"]] == ["new", "escalation", "resolved"]
    assert escalation["thread_ts"] == resolved["thread_ts"] == alert["ts"]
    assert [r.state for r in rows(db_url)] == ["sent"] * 3 and fake.requests_count("chat.postMessage") == 4


def test_a_dead_letter_does_not_hold_the_messages_after_it(sqlite_url, fake):
    """The order waits for a message still to go, not for one Slack refused for good."""
    incident_id = new_incident(sqlite_url)
    for kind in ("new", "update", "resolved"):
        queue(sqlite_url, incident_id, kind, kind)
    fake.fail("chat.postMessage", "delay")
    fake.fail("chat.postMessage", "error", error="msg_too_long")  # the update: refused for good
    report = delivery.deliver(client_for(fake), T0, sqlite_url)
    assert report.sent == 2 and report.dead == 1
    assert [m["text"] for m in fake.messages(CHANNEL)] == ["new", "resolved"]
