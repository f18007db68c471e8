"""Two people pressing Resolve and False alarm on the same incident at the same moment (or one
person clicking twice): exactly one decision is recorded and the thread hears "resolved" once,
on SQLite too, where FOR UPDATE is silently ignored.

The race is made certain, not hoped for: each request, once it has read the incident and decided
the move is allowed, waits for the other at a barrier before writing. With the incident locked
before it is read, the second request cannot reach the barrier until the first has committed;
the first gives up waiting (a bounded wait, no timed assertion) and goes on alone."""
from __future__ import annotations

import threading

import sqlalchemy as sa
from fastapi.testclient import TestClient

from siaga import incidents, store
from siaga.timelines.web import create_app
from test_web import HAZARDS, seed

SAME_SITE = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}


def test_concurrent_closing_clicks_record_one_decision(sqlite_url, monkeypatch):
    ids = seed(sqlite_url)
    app = create_app(sqlite_url, hazards=HAZARDS, actor="ayu.manager")
    barrier = threading.Barrier(2, timeout=3)
    original = incidents._event

    def meet_then_record(*args, **kwargs):  # both requests have read the incident and passed its checks
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass  # the other request is waiting for this one's lock: go on alone
        return original(*args, **kwargs)

    monkeypatch.setattr(incidents, "_event", meet_then_record)
    results: dict[str, str] = {}

    def click(action: str) -> None:
        r = TestClient(app, follow_redirects=False).post(f"/incidents/{ids['jam']}/actions/{action}", headers=SAME_SITE)
        results[action] = r.headers.get("location", str(r.status_code))

    threads = [threading.Thread(target=click, args=(a,)) for a in ("resolve", "false-alarm")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with store.session_scope(sqlite_url) as s:
        closings = s.scalars(sa.select(store.IncidentEvent.kind).where(
            store.IncidentEvent.incident_id == ids["jam"], store.IncidentEvent.kind.in_(["resolved", "false_alarm"]))).all()
        replies = s.scalars(sa.select(store.OutboxMessage.kind).where(store.OutboxMessage.incident_id == ids["jam"])).all()
        state = s.get(store.Incident, ids["jam"]).state
    assert len(closings) == 1 and state == closings[0], (closings, state)
    assert replies == ["resolved"]  # the thread hears it once
    assert sorted(r.split("result=")[1].split("#")[0] for r in results.values()) == ["ok", "refused"], results
