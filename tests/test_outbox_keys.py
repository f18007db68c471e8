"""Outbox keys: a change written twice (a retried detect run) is one message, while a later change
of the same kind to the same incident and alert is a message of its own, never silently dropped."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from siaga import alerts, store
from siaga.incidents import Change
from support.incidents import sangsit_flood

T0 = datetime(2026, 1, 15, 3, 0, tzinfo=timezone.utc)  # 11:00 WITA, outside any quiet hours


def _incident(session):
    return sangsit_flood(session, T0)


def _rows(session, incident_id):
    return session.scalars(sa.select(store.OutboxMessage).where(store.OutboxMessage.incident_id == incident_id)).all()


def test_the_same_change_written_twice_is_one_message(db_url, router, hazard_set):
    with store.session_scope(db_url) as session:
        incident = _incident(session)
        first = alerts.enqueue(session, [Change(incident, "update")], hazard_set, router, T0)
        again = alerts.enqueue(session, [Change(incident, "update")], hazard_set, router, T0)
        assert first >= 1 and again == 0
        assert len(_rows(session, incident.id)) == first


def test_a_later_change_of_the_same_kind_is_its_own_message(db_url, router, hazard_set):
    with store.session_scope(db_url) as session:
        incident = _incident(session)
        alerts.enqueue(session, [Change(incident, "update")], hazard_set, router, T0)
        incident.severity = "medium"
        later = alerts.enqueue(session, [Change(incident, "update")], hazard_set, router, T0 + timedelta(minutes=5))
        assert later >= 1
        rows = _rows(session, incident.id)
        assert len({r.dedup_key for r in rows}) == len(rows) == 2 * later
