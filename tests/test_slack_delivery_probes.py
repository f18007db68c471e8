"""Slack delivery probed from outside: the real slack-sdk client against the fake Slack Web API on
127.0.0.1, through `delivery.deliver` as the deliver DAG runs it. Each test is a misbehaviour of
Slack (or of the people using it) that once broke a promise: no token in what Siaga records, an
incident's updates reach its channel (in its thread) even after its alert was deleted in Slack
or held by quiet hours."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from siaga import delivery, outbox, store
from siaga.slackclient import make_client
from siaga_dev.fakeslack import FakeSlack

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
        incident = store.Incident(
            hazard="flood", level="village", area_code="51.08.07.2001", area_name="Sangsit", village="Sangsit",
            district="Sawan", state="open", severity="low", posts=5, authors=4, notified_posts=5,
            opened_at=T0, last_activity_at=T0,
        )
        session.add(incident)
        session.flush()
        return incident.id


def queue(db_url: str, incident_id: int | None, kind: str, text: str, due: datetime = T0) -> None:
    with store.session_scope(db_url) as session:
        assert outbox.enqueue(session, dedup_key=f"{incident_id}:bpbd:{kind}:{text}", incident_id=incident_id,
                              receiver="bpbd", channel=CHANNEL, kind=kind, payload={"text": text, "blocks": []},
                              due=due, now=T0)


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
