"""Incidents: spikes open one, later spikes update it, finer areas inhibit coarser ones,
neighbouring villages and the villages along a road merge, quiet incidents resolve and reopen,
people move incidents through a validated lifecycle, and re-running a window changes nothing."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from siaga import incidents, store
from siaga.incidents import AreaInfo
from siaga.spikes import Spike

T0 = datetime(2026, 1, 15, 0, 0, tzinfo=timezone.utc)
AREAS = {
    ("village", "v1"): AreaInfo("village", "v1", "Sangsit", "Sangsit", "Sawan"),
    ("district", "d1"): AreaInfo("district", "d1", "Sawan", None, "Sawan"),
    ("regency", "51.08"): AreaInfo("regency", "51.08", "Buleleng"),
    ("village", "v2"): AreaInfo("village", "v2", "Giri Emas", "Giri Emas", "Sawan"),
    ("village", "v3"): AreaInfo("village", "v3", "Bungkulan", "Bungkulan", "Sawan"),
    ("village", "far"): AreaInfo("village", "far", "Pemuteran", "Pemuteran", "Gerokgak"),
    ("road", "r1"): AreaInfo("road", "r1", "Jalan Raya Seririt", None, "Seririt", "Jalan Raya Seririt", villages=("v7", "v8", "v9")),
    ("village", "v8"): AreaInfo("village", "v8", "Lokapaksa", "Lokapaksa", "Seririt"),
}
# v1 borders v2, v2 borders v3; "far" borders nobody here
BORDERS = {"v1": ["v2"], "v2": ["v1", "v3"], "v3": ["v2"], "far": [], "v7": ["v8"], "v8": ["v7", "v9"], "v9": ["v8"]}


def adjacent(code):
    return BORDERS[code]
GAP = timedelta(hours=2)


def spike(level="village", code="v1", minutes=30, observed=5, first=0):
    """A spike citing posts first..first+observed-1 (posts that are not stored: each counts as
    its own author)."""
    end = T0 + timedelta(minutes=minutes)
    return Spike("flood", level, code, end - timedelta(hours=1), end, observed, 0.2, observed, 5.0, tuple(range(first, first + observed)))


def apply(url, spikes, severity="low"):
    with store.session_scope(url) as session:
        sev = {(s.hazard, s.level, s.area_code, s.window_end): severity for s in spikes}
        changes = incidents.apply_spikes(session, spikes, AREAS, sev, GAP, adjacent=adjacent, reopen_window=REOPEN)
        return [(c.kind, c.incident.id) for c in changes]


REOPEN = timedelta(hours=6)


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


def resolve(url, hours):
    with store.session_scope(url) as session:
        return [c.kind for c in incidents.resolve_quiet(session, T0 + timedelta(hours=hours), quiet=timedelta(hours=3))]


def events(url, incident_id):
    with store.session_scope(url) as session:
        rows = session.scalars(sa.select(store.IncidentEvent).where(store.IncidentEvent.incident_id == incident_id).order_by(store.IncidentEvent.id))
        return [(e.kind, e.actor) for e in rows]


def test_quiet_incident_resolves_and_a_spike_soon_after_reopens_it(db_url):
    ((_, first),) = apply(db_url, [spike()])
    assert resolve(db_url, 2) == []  # 90 minutes quiet is not yet quiet enough
    assert resolve(db_url, 5) == ["resolved"]
    with store.session_scope(db_url) as session:
        incident = session.get(store.Incident, first)
        assert (incident.state, incident.closed_by) == ("resolved", "siaga")
    # a spike within the reopen window: same incident, sent into its thread as an escalation
    assert apply(db_url, [spike(minutes=6 * 60, first=100)]) == [("escalation", first)]
    with store.session_scope(db_url) as session:
        incident = session.get(store.Incident, first)
        assert (incident.state, incident.reopened, incident.closed_at, incident.posts) == ("open", 1, None, 10)
    assert [k for k, _ in events(db_url, first)] == ["opened", "resolved", "reopened", "grew"]
    assert count(db_url, store.Incident) == 1
    # resolving again yields a resolved change the outbox will not confuse with the first one
    with store.session_scope(db_url) as session:
        (again,) = incidents.resolve_quiet(session, T0 + timedelta(hours=10), quiet=timedelta(hours=3))
        assert again.kind == "resolved" and again.alert is not None


def test_spike_after_the_reopen_window_opens_a_new_incident(db_url):
    ((_, first),) = apply(db_url, [spike()])
    resolve(db_url, 5)
    ((kind, second),) = apply(db_url, [spike(minutes=12 * 60)])
    assert kind == "new" and second != first


def test_incident_closed_by_a_person_is_not_reopened_by_the_machine(db_url):
    ((_, first),) = apply(db_url, [spike()])
    with store.session_scope(db_url) as session:
        incidents.transition(session, first, "resolved", "U123:wayan", T0 + timedelta(minutes=40))
    assert apply(db_url, [spike(minutes=35)]) == []  # the same posts, a window later: no news
    ((kind, second),) = apply(db_url, [spike(minutes=60, first=50)])
    assert kind == "new" and second != first


def test_adjacent_villages_join_one_incident_and_spread_escalates(db_url):
    ((_, first),) = apply(db_url, [spike("village", "v1")])
    assert apply(db_url, [spike("village", "v2", minutes=35, observed=3, first=10)]) == [("escalation", first)]  # 2 areas: medium
    assert apply(db_url, [spike("village", "v3", minutes=40, observed=3, first=20)]) == []  # borders v2, joins silently
    with store.session_scope(db_url) as session:
        incident = session.get(store.Incident, first)
        assert (incident.severity, incident.posts) == ("medium", 11)
        codes = set(session.scalars(sa.select(store.IncidentArea.area_code).where(store.IncidentArea.incident_id == first)))
    assert codes == {"v1", "v2", "v3"}
    assert ("area_added", "siaga") in events(db_url, first)
    # a village that borders none of them is its own incident
    ((kind, other),) = apply(db_url, [spike("village", "far", minutes=45)])
    assert kind == "new" and other != first


def test_villages_more_than_the_gap_apart_in_time_do_not_merge(db_url):
    apply(db_url, [spike("village", "v1")])
    ((kind, _),) = apply(db_url, [spike("village", "v2", minutes=30 + 3 * 60)])
    assert kind == "new"


def test_road_incident_spans_the_villages_along_the_road(db_url):
    ((_, road),) = apply(db_url, [spike("road", "r1")])
    with store.session_scope(db_url) as session:
        covered = set(session.scalars(sa.select(store.IncidentArea.area_code).where(store.IncidentArea.incident_id == road)))
    assert covered == {"r1", "v7", "v8", "v9"}
    # a flood report from a village on the road joins the road's incident
    changes = apply(db_url, [spike("village", "v8", minutes=40)])
    assert all(i == road for _, i in changes) and count(db_url, store.Incident) == 1


def test_transition_validates_and_records_who_and_when(db_url):
    ((_, first),) = apply(db_url, [spike()])
    at = T0 + timedelta(minutes=50)
    with store.session_scope(db_url) as session:
        assert incidents.transition(session, first, "acknowledged", "U1:made", at) is None
        assert incidents.transition(session, first, "acknowledged", "U1:made", at) is None  # double click
        with pytest.raises(incidents.InvalidTransition, match="cannot become open"):
            incidents.transition(session, first, "open", "U1:made", at)
        with pytest.raises(incidents.InvalidTransition, match="unknown incident state"):
            incidents.transition(session, first, "closed", "U1:made", at)
        with pytest.raises(incidents.InvalidTransition, match="actor"):
            incidents.transition(session, first, "resolved", " ", at)
        with pytest.raises(LookupError):
            incidents.transition(session, 9999, "resolved", "U1:made", at)
        change = incidents.transition(session, first, "false_alarm", "U2:ketut", at + timedelta(minutes=5), note="diskon banjir")
        assert change.kind == "resolved"
    with store.session_scope(db_url) as session:
        incident = session.get(store.Incident, first)
        assert (incident.state, incident.closed_by) == ("false_alarm", "U2:ketut")
        rows = session.scalars(sa.select(store.IncidentEvent).where(store.IncidentEvent.kind == "false_alarm")).all()
        assert rows[0].actor == "U2:ketut" and rows[0].detail["note"] == "diskon banjir"
        assert rows[0].at == at + timedelta(minutes=5)
    assert [k for k, _ in events(db_url, first)] == ["opened", "acknowledged", "false_alarm"]


def test_a_road_through_several_villages_inhibits_its_kecamatan(db_url):
    """A road's Place has no single district name; its villages' codes place it."""
    areas = {
        ("road", "r2"): AreaInfo("road", "r2", "Jalan Ahmad Yani", None, None, "Jalan Ahmad Yani", villages=("51.08.06.2001", "51.08.06.2002")),
        ("district", "51.08.06"): AreaInfo("district", "51.08.06", "Buleleng", None, "Buleleng"),
    }
    with store.session_scope(db_url) as session:
        same_tick = [spike("road", "r2"), spike("district", "51.08.06")]
        sev = {(s.hazard, s.level, s.area_code, s.window_end): "low" for s in same_tick}
        assert [c.kind for c in incidents.apply_spikes(session, same_tick, areas, sev, GAP)] == ["new"]
        later = [spike("district", "51.08.06", minutes=50)]
        sev = {(s.hazard, s.level, s.area_code, s.window_end): "low" for s in later}
        assert incidents.apply_spikes(session, later, areas, sev, GAP) == []
        assert session.scalar(sa.select(store.Incident.level)) == "road"


# --- a hazard's own incident gap (detection.incident_gap_minutes in its file) ---------------------
def drought_lists(tmp_path, gap_line):
    """The shipped lists, with drought's `incident_gap_minutes` line replaced by `gap_line`."""
    import shutil

    from siaga.hazard_config import default_hazard_dir
    from siaga.hazards import HazardSet

    directory = tmp_path / "hazards"
    shutil.copytree(default_hazard_dir(), directory)
    path = directory / "drought.yaml"
    text = path.read_text(encoding="utf-8")
    assert "  incident_gap_minutes: 1440\n" in text
    path.write_text(text.replace("  incident_gap_minutes: 1440\n", gap_line), encoding="utf-8")
    return HazardSet.load(directory).hazards


def drought(minutes, first):
    end = T0 + timedelta(minutes=minutes)
    return Spike("drought", "village", "v1", end - timedelta(days=1), end, 3, 0.2, 3, 5.0, (first, first + 1, first + 2))


def drought_run(url, minutes, first, hazards):
    """One detect run's incident stage: the spike, then quiet incidents resolve."""
    with store.session_scope(url) as session:
        spikes = [drought(minutes, first)]
        sev = {(s.hazard, s.level, s.area_code, s.window_end): "low" for s in spikes}
        changes = incidents.apply_spikes(session, spikes, AREAS, sev, GAP, adjacent=adjacent, reopen_window=REOPEN,
                                         hazards=hazards)
        changes += incidents.resolve_quiet(session, T0 + timedelta(minutes=minutes), timedelta(hours=3), hazards)
        return [c.kind for c in changes]


def test_drought_reports_hours_apart_are_one_incident_with_its_shipped_gap(db_url, hazard_set):
    """Drought's file sets a day-long gap: reports five and twenty hours after the first join its
    incident, which stays open through the quiet hours (the posts are not stored, so its last
    activity stays at its first spike)."""
    assert drought_run(db_url, 0, 0, hazard_set.hazards) == ["new"]
    assert drought_run(db_url, 5 * 60, 10, hazard_set.hazards) == ["update"]
    assert drought_run(db_url, 20 * 60, 20, hazard_set.hazards) == ["update"]
    assert count(db_url, store.Incident) == 1


def test_without_its_gap_in_the_file_drought_takes_the_deployments(db_url, tmp_path):
    """The line removed from drought.yaml: the deployment's two-hour gap and three-hour quiet
    period apply, and a report five hours later is another incident."""
    without = drought_lists(tmp_path, "")
    assert without["drought"].incident_gap_minutes is None
    assert drought_run(db_url, 0, 0, without) == ["new"]
    assert drought_run(db_url, 5 * 60, 10, without) == ["new", "resolved"]
    assert count(db_url, store.Incident) == 2


def test_a_quiet_slow_incident_stays_open_for_its_hazards_gap(db_url, hazard_set):
    """Resolved after the deployment's three quiet hours, a drought's next report within its
    day-long gap would reopen it (a "resolved" and an "escalation" in the thread) or split it."""
    drought_run(db_url, 0, 0, hazard_set.hazards)
    with store.session_scope(db_url) as session:
        assert incidents.resolve_quiet(session, T0 + timedelta(hours=20), timedelta(hours=3), hazard_set.hazards) == []
        [change] = incidents.resolve_quiet(session, T0 + timedelta(hours=25), timedelta(hours=3), hazard_set.hazards)
        assert change.kind == "resolved"
        assert change.what.resolved["quiet_minutes"] == 24 * 60


def test_a_runs_timeline_read_without_flushing_is_the_one_a_flush_would_store(db_url):
    """Inside `apply_spikes` nothing is flushed before reading what changed since the last
    message: the pending timeline rows are read in the order a flush would have numbered them,
    among the stored ones by time (a late window's row falls before a stored later one)."""
    t = [T0 + timedelta(minutes=m) for m in (0, 10, 20, 30)]
    with store.session_scope(db_url) as session:
        incident = store.Incident(hazard="flood", level="village", area_code="v1", area_name="Sangsit",
                                  opened_at=t[0], last_activity_at=t[0])
        session.add(incident)
        session.flush()

        def grew(at, posts, before):
            incidents.add_event(session, incident, at, "grew", {"post_ids": [posts], "posts": posts, "posts_before": before,
                                                                "authors": posts, "authors_before": before})

        incidents.add_event(session, incident, t[0], "opened", {incidents.TOLD: True})
        incidents.add_event(session, incident, t[0], "escalated", {"from": "low", "to": "medium", incidents.TOLD: True})
        grew(t[2], 3, 2)
        session.flush()  # stored: opened, escalated (told), grew at t2
        grew(t[1], 2, 1)  # pending: a late window's growth, before the stored one
        incidents.add_event(session, incident, t[3], "area_added", {"areas": [{"name": "Giri Emas"}]})
        incidents.add_event(session, incident, t[3], "escalated", {"from": "medium", "to": "high", incidents.TOLD: True})
        session.info[incidents._ROWS] = incidents._RunRows({})
        try:
            in_run = incidents.what_changed_since_told(session, incident)
        finally:
            del session.info[incidents._ROWS]
        session.flush()
        flushed = incidents.what_changed_since_told(session, incident)
    assert in_run == flushed
    assert (flushed.posts_before, flushed.posts, flushed.new_post_ids) == (1, 3, (2, 3))


def test_an_incidents_posts_kept_within_a_run_follow_every_alert_that_cites_a_new_post(db_url):
    """Inside `apply_spikes` an incident's posts are read once and kept until one of its alerts
    cites a post it did not (a sliding window, a neighbour joining, a re-run window with a late
    post merged into its own row): the counts stored and told equal those read afresh."""
    apply(db_url, [spike(), spike(minutes=35, observed=6), spike(minutes=40, observed=6, first=3),
                   spike(code="v2", minutes=40, observed=3, first=20)])
    apply(db_url, [spike(minutes=40, observed=7, first=3), spike(code="v2", minutes=45, observed=4, first=20)])
    with store.session_scope(db_url) as session:
        (incident,) = session.scalars(sa.select(store.Incident)).all()
        fresh = incidents.incident_posts(session, incident.id)
        grew = session.scalars(sa.select(store.IncidentEvent).where(store.IncidentEvent.kind == "grew")
                               .order_by(store.IncidentEvent.id)).all()
        assert (incident.posts, incident.authors) == (fresh.posts, fresh.authors) == (14, 14)
        assert grew and grew[-1].detail["posts"] == fresh.posts


def test_a_village_incident_widened_to_its_road_is_on_the_road(db_url, hazard_set):
    """A landslide first counted in the village (Gitgit), then on the road through it: the one
    incident now sits on that road, so routing's on_road label (Dishub's route for a hazard on a
    road) and the message's road line must say so, as for an incident opened on the road."""
    from siaga.alerts import incident_labels

    ((_, first),) = apply(db_url, [spike("village", "v8")])
    changes = apply(db_url, [spike("road", "r1", minutes=40, first=5)])
    assert all(i == first for _, i in changes) and count(db_url, store.Incident) == 1
    with store.session_scope(db_url) as session:
        incident = session.get(store.Incident, first)
        assert (incident.level, incident.road) == ("road", "Jalan Raya Seririt")
        assert incident_labels(incident, hazard_set)["on_road"] == "true"
