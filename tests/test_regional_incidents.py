"""One incident per event: a regency-wide burst of an areal hazard (earthquake, windstorm,
widespread flooding) reported from several kecamatan is one incident listing its areas; finer
spikes join it as updates, not new incidents; a redundant coarser spike is stored with the finer
incident that tells its story (so it never comes back later as a stale "new" incident)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from siaga import alerts, incidents, messages, store
from siaga.incidents import AreaInfo
from siaga.regional import widespread
from siaga.spikes import Spike
from support.hazard_files import lists_with

T0 = datetime(2026, 1, 15, 20, 18, tzinfo=timezone.utc)  # 04:18 WITA
GAP = timedelta(hours=2)
AREAS = {
    ("regency", "51.08"): AreaInfo("regency", "51.08", "Buleleng"),
    ("district", "51.08.01"): AreaInfo("district", "51.08.01", "Gerokgak", None, "Gerokgak"),
    ("district", "51.08.06"): AreaInfo("district", "51.08.06", "Sukasada", None, "Sukasada"),
    ("district", "51.08.07"): AreaInfo("district", "51.08.07", "Buleleng", None, "Buleleng"),
    ("village", "51.08.06.2001"): AreaInfo("village", "51.08.06.2001", "Pancasari", "Pancasari", "Sukasada"),
    ("village", "51.08.07.1001"): AreaInfo("village", "51.08.07.1001", "Banyuasri", "Banyuasri", "Buleleng"),
    ("road", "r1"): AreaInfo("road", "r1", "Jalan Raya Kubutambahan", None, "Kubutambahan", "Jalan Raya Kubutambahan",
                             villages=("51.08.09.2001",)),
    ("district", "51.08.09"): AreaInfo("district", "51.08.09", "Kubutambahan", None, "Kubutambahan"),
}
# posts 0-11: 4 in Pancasari (Sukasada), 4 in Banyuasri (Buleleng), 4 with only kecamatan Gerokgak
POSTS = {
    **{i: {("village", "51.08.06.2001"): "Pancasari", ("district", "51.08.06"): "Sukasada"} for i in range(0, 4)},
    **{i: {("village", "51.08.07.1001"): "Banyuasri", ("district", "51.08.07"): "Buleleng"} for i in range(4, 8)},
    **{i: {("district", "51.08.01"): "Gerokgak"} for i in range(8, 12)},
}


def spike(hazard, level, code, post_ids, minutes=0, window=15):
    end = T0 + timedelta(minutes=minutes)
    n = len(post_ids)
    return Spike(hazard, level, code, end - timedelta(minutes=window), end, n, 0.01, n, 9.0, tuple(post_ids))


def quake_burst(minutes=0, ids=range(12)):
    ids = list(ids)
    return [
        spike("earthquake", "regency", "51.08", ids, minutes),
        spike("earthquake", "district", "51.08.06", [i for i in ids if i < 4], minutes),
        spike("earthquake", "district", "51.08.07", [i for i in ids if 4 <= i < 8], minutes),
        spike("earthquake", "district", "51.08.01", [i for i in ids if i >= 8], minutes),
        spike("earthquake", "village", "51.08.06.2001", [i for i in ids if i < 4], minutes),
        spike("earthquake", "village", "51.08.07.1001", [i for i in ids if 4 <= i < 8], minutes),
    ]


def apply(url, spikes, posts=POSTS, areas=AREAS, hazards=None):
    with store.session_scope(url) as session:
        sev = {(s.hazard, s.level, s.area_code, s.window_end): "low" for s in spikes}
        changes = incidents.apply_spikes(session, spikes, areas, sev, GAP, posts=posts,
                                         hazards=(hazards or _hazards()).hazards)
        return [(c.kind, c.incident.id) for c in changes]


def test_a_regency_wide_quake_is_one_incident_listing_its_kecamatan(db_url):
    changes = apply(db_url, quake_burst())
    assert [k for k, _ in changes] == ["new"]
    with store.session_scope(db_url) as session:
        (incident,) = session.scalars(sa.select(store.Incident)).all()
        assert (incident.level, incident.area_name) == ("regency", "Buleleng")
        covered = {(a.level, a.area_code) for a in session.scalars(sa.select(store.IncidentArea))}
        assert {("district", "51.08.01"), ("district", "51.08.06"), ("district", "51.08.07"),
                ("village", "51.08.06.2001"), ("village", "51.08.07.1001")} <= covered
        assert set(incidents.incident_posts(session, incident.id).post_ids) == set(range(12))  # every post told
        view = alerts.view_for(session, incidents.Change(incident, "new"), _hazards())
    place = messages.place_text(view)
    assert place.startswith("Kab. Buleleng") and "Gerokgak" in place and "Sukasada" in place


def test_finer_spikes_later_join_the_regional_incident_as_updates(db_url):
    apply(db_url, quake_burst())
    later = [spike("earthquake", "village", "51.08.06.2001", list(range(0, 4)) + list(range(20, 30)), minutes=10)]
    changes = apply(db_url, later, posts={**POSTS, **{i: POSTS[0] for i in range(20, 30)}})
    assert all(kind in ("update", "escalation") for kind, _ in changes)
    with store.session_scope(db_url) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(store.Incident)) == 1


def test_a_village_incident_widens_when_the_regency_burst_follows(db_url):
    apply(db_url, [spike("earthquake", "village", "51.08.06.2001", [0, 1, 2, 3])])
    apply(db_url, quake_burst(minutes=5))
    with store.session_scope(db_url) as session:
        (incident,) = session.scalars(sa.select(store.Incident)).all()
        assert incident.level == "regency"
        kinds = [e.kind for e in session.scalars(sa.select(store.IncidentEvent))]
        assert "widened" in kinds


def test_point_hazards_in_two_kecamatan_stay_two_incidents(db_url):
    fire = [spike("fire", "regency", "51.08", list(range(8))),
            spike("fire", "village", "51.08.06.2001", [0, 1, 2, 3]),
            spike("fire", "village", "51.08.07.1001", [4, 5, 6, 7])]
    assert not widespread(fire[0], POSTS, _hazards().hazards)
    assert [k for k, _ in apply(db_url, fire)] == ["new", "new"]


def test_a_redundant_coarser_window_is_stored_with_the_live_finer_incident(db_url):
    """Cause (3) of issue 18: a kecamatan window suppressed by a live road incident used to be
    dropped unstored, and re-checked after the road incident resolved it opened a stale "new"."""
    posts = {i: {("road", "r1"): "Jalan Raya Kubutambahan", ("district", "51.08.09"): "Kubutambahan"} for i in range(4)}
    road = spike("traffic_accident", "road", "r1", [0, 1, 2, 3], window=60)
    district = spike("traffic_accident", "district", "51.08.09", [0, 1, 2, 3], window=60)
    assert [k for k, _ in apply(db_url, [road, district], posts=posts)] == ["new"]
    with store.session_scope(db_url) as session:
        incidents.resolve_quiet(session, T0 + timedelta(hours=4), timedelta(hours=3))
    # the next run re-checks the same windows: nothing new
    assert apply(db_url, [district], posts=posts) == []
    with store.session_scope(db_url) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(store.Incident)) == 1
        joined = [a for a in session.scalars(sa.select(store.Alert)) if (a.explanation or {}).get("joined")]
        assert len(joined) == 1


def _hazards():
    from siaga.hazard_config import default_hazard_dir
    from siaga.hazards import HazardSet

    return HazardSet.load(default_hazard_dir())


def test_the_shipped_areal_hazards(hazard_set):
    """The values the code held before they moved into the hazard files (`areal: true`)."""
    assert {hid for hid, hz in hazard_set.hazards.items() if hz.areal} == {
        "earthquake", "tsunami", "strong_wind", "flood", "tidal_flood", "high_waves", "drought", "volcanic_eruption"}


def test_an_operator_makes_a_hazard_areal_or_not_in_its_file(db_url, tmp_path):
    """Earthquake without `areal: true` in its file: the regency-wide burst is no longer one
    regional incident but one per place (two villages and the kecamatan Gerokgak, whose posts
    name no village); fire with it: two fires' regency spike is one regional incident."""
    quake_not_areal = lists_with(tmp_path / "a", "earthquake", "areal: true\n", "")
    changes = apply(db_url, quake_burst(), hazards=quake_not_areal)
    assert [k for k, _ in changes] == ["new", "new", "new"]
    with store.session_scope(db_url) as session:
        assert sorted(i.area_name for i in session.scalars(sa.select(store.Incident))) == ["Banyuasri", "Gerokgak", "Pancasari"]

    fire_areal = lists_with(tmp_path / "b", "fire", "detection:\n", "areal: true\ndetection:\n")
    fire = [spike("fire", "regency", "51.08", list(range(100, 108)), minutes=30)]
    assert widespread(fire[0], {i + 100: POSTS[i] for i in range(8)}, fire_areal.hazards)
    assert [k for k, _ in apply(db_url, fire, posts={i + 100: POSTS[i] for i in range(8)}, hazards=fire_areal)] == ["new"]


def test_a_late_post_in_an_already_joined_coarser_window_widens_its_row(db_url):
    """A post that arrives a run late, in a window whose redundant coarser spike was already
    stored with the finer incident: the coarser window is joined again with more posts. It was
    inserted as a second row for the same window and failed on uq_alerts_window, so every later
    detect run failed too (seen with a lagging Mastodon search in bench_latency.py)."""
    posts = {**POSTS, 12: POSTS[0]}
    first = [spike("fire", "village", "51.08.06.2001", [0, 1, 2, 3]), spike("fire", "regency", "51.08", [0, 1, 2, 3])]
    assert [k for k, _ in apply(db_url, first, posts=posts)] == ["new"]
    late = [spike("fire", "village", "51.08.06.2001", [0, 1, 2, 3, 12]), spike("fire", "regency", "51.08", [0, 1, 2, 3, 12])]
    apply(db_url, late, posts=posts)
    with store.session_scope(db_url) as session:
        rows = [a for a in session.scalars(sa.select(store.Alert)) if a.level == "regency"]
        assert len(rows) == 1 and rows[0].explanation.get("joined")
        assert set(rows[0].explanation["post_ids"]) == {0, 1, 2, 3, 12}
        assert session.scalar(sa.select(sa.func.count()).select_from(store.Incident)) == 1


_LEVELS = {"village": "51.08.06.2001", "district": "51.08.06", "regency": "51.08"}


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(runs=st.lists(st.tuples(
    st.lists(st.tuples(st.sampled_from(["fire", "earthquake", "flood"]), st.sets(st.sampled_from(sorted(_LEVELS)), min_size=1),
                       st.sampled_from([0, 5, 10]), st.integers(3, 8)), min_size=1, max_size=4),
    st.booleans()), min_size=1, max_size=4))
def test_runs_that_see_the_same_windows_again_with_late_posts_never_fail(tmp_path_factory, runs):
    """Detect runs evaluate their look-back again every time, and posts keep arriving late (a
    lagging search, a source back from an outage), sometimes after the incident resolved:
    whatever windows, levels and late posts, a run stores one alert row per window and never
    fails (a failing run stops every later one)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('late') / 'siaga.db'}"
    store.migrate(url)
    posts = {i: POSTS[0] for i in range(40)}
    try:
        for run, then_resolve in runs:
            # as detect finds them: the same posts counted at each level they are placed in
            spikes = {(h, lv, m): spike(h, lv, _LEVELS[lv], list(range(n)), minutes=m) for h, levels, m, n in run for lv in levels}
            apply(url, list(spikes.values()), posts=posts)
            if then_resolve:
                with store.session_scope(url) as session:
                    incidents.resolve_quiet(session, T0 + timedelta(hours=4), timedelta(hours=3))
    finally:
        store.engine_for(url).dispose()


def test_a_late_post_in_the_window_of_a_resolved_incident_grows_it_as_history(db_url):
    """The joined regency window of a fire that has since resolved, seen again with one more
    post: no new incident over old posts (a second row for that window failed every run);
    the resolved incident grows, marked late."""
    apply(db_url, [spike("fire", "district", "51.08.06", [0, 1, 2]), spike("fire", "regency", "51.08", [0, 1, 2])])
    with store.session_scope(db_url) as session:
        incidents.resolve_quiet(session, T0 + timedelta(hours=4), timedelta(hours=3))
    assert apply(db_url, [spike("fire", "regency", "51.08", [0, 1, 2, 3])]) == []
    with store.session_scope(db_url) as session:
        (incident,) = session.scalars(sa.select(store.Incident)).all()
        assert incident.state == "resolved"
        assert set(incidents.incident_posts(session, incident.id).post_ids) == {0, 1, 2, 3}
        grew = [e for e in session.scalars(sa.select(store.IncidentEvent)) if e.kind == "grew"]
        assert len(grew) == 1 and grew[0].detail.get("late") is True
