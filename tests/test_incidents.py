"""Incidents: spikes open one, later spikes update it, finer areas inhibit coarser ones,
quiet incidents resolve, and re-running a window changes nothing."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from siaga import incidents, store
from siaga.incidents import AreaInfo
from siaga.spikes import Spike

T0 = datetime(2026, 1, 15, 0, 0, tzinfo=timezone.utc)
AREAS = {
    ("village", "v1"): AreaInfo("village", "v1", "Sangsit", "Sangsit", "Sawan"),
    ("district", "d1"): AreaInfo("district", "d1", "Sawan", None, "Sawan"),
    ("regency", "51.08"): AreaInfo("regency", "51.08", "Buleleng"),
}
GAP = timedelta(hours=2)


def spike(level="village", code="v1", minutes=30, observed=5):
    end = T0 + timedelta(minutes=minutes)
    return Spike("flood", level, code, end - timedelta(hours=1), end, observed, 0.2, observed, 5.0, tuple(range(observed)))


def apply(url, spikes, severity="low"):
    with store.session_scope(url) as session:
        sev = {(s.hazard, s.level, s.area_code, s.window_end): severity for s in spikes}
        return [(c.kind, c.incident.id) for c in incidents.apply_spikes(session, spikes, AREAS, sev, GAP)]


def count(url, model):
    with store.session_scope(url) as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model))


def test_first_spike_opens_an_incident_with_a_timeline(db_url):
    assert [k for k, _ in apply(db_url, [spike()])] == ["new"]
    with store.session_scope(db_url) as session:
        (incident,) = session.scalars(sa.select(store.Incident)).all()
        assert (incident.village, incident.district, incident.state) == ("Sangsit", "Sawan", "open")
        (event,) = session.scalars(sa.select(store.IncidentEvent)).all()
        assert event.kind == "opened" and event.detail["observed"] == 5


def test_rerunning_the_same_window_changes_nothing(db_url):
    apply(db_url, [spike()])
    assert apply(db_url, [spike()]) == []
    assert count(db_url, store.Incident) == 1 and count(db_url, store.Alert) == 1


def test_growth_updates_and_escalation_is_its_own_kind(db_url):
    ((_, first),) = apply(db_url, [spike()])
    assert apply(db_url, [spike(minutes=35, observed=6)]) == []  # grew, but not enough to ping
    assert apply(db_url, [spike(minutes=40, observed=9)]) == [("update", first)]
    assert apply(db_url, [spike(minutes=45, observed=10)], severity="high") == [("escalation", first)]
    assert count(db_url, store.Incident) == 1


def test_finer_area_inhibits_district_and_regency(db_url):
    changes = apply(db_url, [spike("regency", "51.08"), spike("district", "d1"), spike()])
    assert [k for k, _ in changes] == ["new"]
    with store.session_scope(db_url) as session:
        assert session.scalar(sa.select(store.Incident.level)) == "village"
    # later coarser spikes stay inhibited while the village incident is live
    assert apply(db_url, [spike("district", "d1", minutes=60)]) == []


def test_quiet_incident_resolves_and_a_new_spike_opens_a_new_one(db_url):
    ((_, first),) = apply(db_url, [spike()])
    with store.session_scope(db_url) as session:
        resolved = incidents.resolve_quiet(session, T0 + timedelta(hours=5), quiet=timedelta(hours=3))
        assert [c.kind for c in resolved] == ["resolved"]
    ((kind, second),) = apply(db_url, [spike(minutes=6 * 60)])
    assert kind == "new" and second != first
