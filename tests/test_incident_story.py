"""The incident story on stored posts: detections are recorded as changes, one count of posts
and authors, road incidents placed in their kecamatan, updates that say what changed since the
last message, the newest evidence, the page link from Airflow's address, and a timeline people
read as sentences."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from hypothesis import given, settings as settings_h, strategies as st

from siaga import alerts, incidents, messages, settings, store
from siaga.incidents import AreaInfo
from siaga.spikes import Spike
from siaga.timelines.story import event_sentence

T0 = datetime(2026, 1, 15, 0, 0, tzinfo=timezone.utc)  # 08:00 WITA
SANGSIT = AreaInfo("village", "51.08.07.2012", "Sangsit", "Sangsit", "Sawan", lon=115.14, lat=-8.09)
ROAD = AreaInfo("road", "jl-ahmad-yani", "Jalan Ahmad Yani", None, None, "Jalan Ahmad Yani", villages=("51.08.06.1024",))
AREAS = {(a.level, a.code): a for a in (SANGSIT, ROAD)}
VILLAGES = {"51.08.06.1024": ("Kaliuntu", "Buleleng"), "51.08.05.2001": ("Panji", "Sukasada")}
GAP = timedelta(hours=2)


def place_of(code):
    return VILLAGES.get(code)


def add_posts(url, minutes, author=None, hazard="flood", cues=(), places=()):
    """Stored posts at T0 + each of `minutes`, each by its own author unless one is given; with
    the hazard matched (and severity cues) and the given geotags (code, village, district)."""
    ids = []
    with store.session_scope(url) as s:
        for m in minutes:
            p = store.Post(source="t", source_id=f"{hazard}-{m}-{author}", created_at=T0 + timedelta(minutes=m),
                           author=author or f"warga{m}", text=f"banjir menit {m}", text_hash=f"{hazard}{m}{author}", raw={})
            s.add(p)
            s.flush()
            s.add(store.HazardMatchRow(post_id=p.id, hazard=hazard, terms=["banjir"], severity_cues=list(cues), via_road=False,
                                       lists_fingerprint="f"))
            for code, village, district in places:
                s.add(store.Geotag(post_id=p.id, kind="village" if village else "landmark", name=village or district,
                                   village=village, district=district, code=code, confidence=0.9, reason="t", in_region=True))
            ids.append(p.id)
    return ids


def window(url, area, end_minutes, post_ids, hazard="flood", minutes=30):
    end = T0 + timedelta(minutes=end_minutes)
    return Spike(hazard, area.level, area.code, end - timedelta(minutes=minutes), end, len(post_ids), 0.01, len(post_ids), 9.0,
                 tuple(post_ids))


def detect(url, spikes, severity="low"):
    with store.session_scope(url) as s:
        sev = {(x.hazard, x.level, x.area_code, x.window_end): severity for x in spikes}
        changes = incidents.apply_spikes(s, spikes, AREAS, sev, GAP, place_of=place_of)
        return [(c.kind, c.incident.id, c.what, list(c.evidence)) for c in changes]


def rows(url, model, **where):
    with store.session_scope(url) as s:
        stmt = sa.select(model)
        for k, v in where.items():
            stmt = stmt.where(getattr(model, k) == v)
        out = s.scalars(stmt).all()
        s.expunge_all()
        return out


def test_sliding_windows_over_the_same_posts_add_no_rows(db_url):
    ids = add_posts(db_url, [1, 5, 9])
    ((kind, incident_id, _, _),) = detect(db_url, [window(db_url, SANGSIT, 10, ids)])
    assert kind == "new"
    # the next three detection runs see the same three posts in their windows: nothing changed
    for end in (15, 20, 25):
        assert detect(db_url, [window(db_url, SANGSIT, end, ids)]) == []
    assert len(rows(db_url, store.Alert)) == 1
    assert [e.kind for e in rows(db_url, store.IncidentEvent)] == ["opened"]
    (alert,) = rows(db_url, store.Alert)
    assert alert.window_end == T0 + timedelta(minutes=25)  # the alert's window covers them, for the baseline
    (incident,) = rows(db_url, store.Incident)
    assert incident.last_activity_at == T0 + timedelta(minutes=9)  # the newest post, not the last detection


def test_a_new_post_is_a_change_and_counts_are_one_definition(db_url):
    first = add_posts(db_url, [1, 5, 9])
    detect(db_url, [window(db_url, SANGSIT, 10, first)])
    later = add_posts(db_url, [31], author="warga1")  # an author seen before: a post, not an account
    assert detect(db_url, [window(db_url, SANGSIT, 35, first[1:] + later)]) == []  # 4 < 3 x 1.5: no message
    (incident,) = rows(db_url, store.Incident)
    assert (incident.posts, incident.authors) == (4, 3)
    assert incident.last_activity_at == T0 + timedelta(minutes=31)
    events = rows(db_url, store.IncidentEvent)
    assert [e.kind for e in events] == ["opened", "grew"] and events[1].detail["post_ids"] == later
    with store.session_scope(db_url) as s:
        counted = incidents.incident_posts(s, incident.id)
    assert (counted.posts, counted.authors) == (incident.posts, incident.authors)
    assert set(counted.post_ids) == set(first + later)


def test_update_names_everything_since_the_last_message_and_quotes_the_newest(db_url):
    first = add_posts(db_url, [1, 5, 9])
    detect(db_url, [window(db_url, SANGSIT, 10, first)])
    quiet_growth = add_posts(db_url, [12])
    detect(db_url, [window(db_url, SANGSIT, 15, first + quiet_growth)])  # 4 posts: recorded, not sent
    with store.session_scope(db_url) as s:
        (incident,) = s.scalars(sa.select(store.Incident)).all()
        incidents.transition(s, incident.id, "acknowledged", "U07DUTY", T0 + timedelta(minutes=16))
    more = add_posts(db_url, [17, 18], cues=["terjebak"])
    ((kind, _, what, evidence),) = detect(db_url, [window(db_url, SANGSIT, 20, first + quiet_growth + more)], severity="high")
    assert kind == "escalation"
    assert set(what.new_post_ids) == set(quiet_growth + more)  # since the message, not since the last detection
    assert (what.posts_before, what.posts, what.authors) == (3, 6, 6)
    assert what.severity == ("low", "high") and what.severity_why == {"cues": {"terjebak": 2}, "posts": 2}
    assert what.states == (("open", "acknowledged", "U07DUTY"),)
    assert evidence[:2] == [more[1], more[0]]  # the newest first
    # the next message starts from here
    last = add_posts(db_url, [40, 41, 42, 43])
    ((kind, _, what, _),) = detect(db_url, [window(db_url, SANGSIT, 45, first + quiet_growth + more + last, minutes=60)], severity="high")
    assert kind == "update" and set(what.new_post_ids) == set(last) and what.states == () and what.severity is None


def test_road_incident_is_in_the_kecamatan_of_its_villages_and_posts(db_url):
    ids = add_posts(db_url, [1, 4, 8], hazard="traffic_jam", places=[("51.08.05.2001", "Panji", "Sukasada")])
    with store.session_scope(db_url) as s:
        sev = {}
        (change,) = incidents.apply_spikes(s, [window(db_url, ROAD, 10, ids, hazard="traffic_jam")], AREAS, sev, GAP,
                                           place_of=place_of)
        incident = change.incident
        assert incident.district == "Sukasada"  # named by the posts
        assert incidents.kecamatan_of(s, incident) == ["Sukasada", "Buleleng"]
        areas = {(a.level, a.area_code): a.name for a in s.scalars(sa.select(store.IncidentArea))}
        assert areas[("village", "51.08.06.1024")] == "Kaliuntu"  # the road's village, by name
        assert areas[("village", "51.08.05.2001")] == "Panji" and areas[("district", "51.08.06")] == "Buleleng"
        assert s.scalars(sa.select(store.Incident).where(incidents.in_kecamatan("buleleng"))).all() == [incident]


def test_alert_links_to_the_incident_page_under_airflows_address(db_url, monkeypatch, hazard_set):
    monkeypatch.delenv("SIAGA_TIMELINE_BASE_URL", raising=False)
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.bpbd.example/")
    assert settings.timeline_base_url() == "https://airflow.bpbd.example/siaga"
    monkeypatch.setenv("SIAGA_TIMELINE_BASE_URL", "https://siaga.example")
    assert settings.timeline_base_url() == "https://siaga.example"
    monkeypatch.setenv("SIAGA_TIMELINE_BASE_URL", " https://siaga.example\n")  # as an .env file may give it
    assert settings.timeline_base_url() == "https://siaga.example"
    monkeypatch.setenv("SIAGA_TIMELINE_BASE_URL", "")
    assert settings.timeline_base_url() == "https://airflow.bpbd.example/siaga"
    monkeypatch.delenv("SIAGA_TIMELINE_BASE_URL")
    ids = add_posts(db_url, [1, 5, 9])
    with store.session_scope(db_url) as s:
        (change,) = incidents.apply_spikes(s, [window(db_url, SANGSIT, 10, ids)], AREAS, {}, GAP)
        view = alerts.view_for(s, change, hazard_set)
    assert view.timeline_url == f"https://airflow.bpbd.example/siaga/incidents/{change.incident.id}"
    assert view.window_minutes == 30 and (view.posts, view.incident_authors) == (3, 3)
    assert [p.text for p in view.evidence] == ["banjir menit 9", "banjir menit 5", "banjir menit 1"]
    text = "\n".join(str(b) for b in messages.build_message(view)["blocks"])
    assert f"<https://airflow.bpbd.example/siaga/incidents/{change.incident.id}|halaman insiden (incident page)>" in text
    assert "3 warga melapor dalam 30 menit; biasanya hampir tidak ada" in text


def test_every_timeline_event_reads_as_a_sentence_without_json(db_url):
    ids = add_posts(db_url, [1, 5, 9], cues=["terjebak"])
    detect(db_url, [window(db_url, SANGSIT, 10, ids)], severity="medium")
    more = add_posts(db_url, [20])
    detect(db_url, [window(db_url, SANGSIT, 25, ids + more)])
    with store.session_scope(db_url) as s:
        (incident,) = s.scalars(sa.select(store.Incident)).all()
        incidents.transition(s, incident.id, "acknowledged", "U07DUTY", T0 + timedelta(minutes=30), note="tim TRC berangkat")
        incidents.resolve_quiet(s, T0 + timedelta(hours=5), timedelta(hours=3))
        incidents.add_event(s, incident, T0 + timedelta(hours=5), "mystery", {"a": {"b": 1}, "c": [1, 2]})
    sentences = {e.kind: event_sentence(e) for e in rows(db_url, store.IncidentEvent)}
    assert sentences["opened"].startswith("Dibuka, tingkat sedang karena 3 unggahan menyebut 'terjebak': "
                                          "3 warga melapor dalam 30 menit; biasanya hampir tidak ada / opened, severity medium")
    assert sentences["grew"] == ("1 unggahan baru, kini 4 unggahan dari 4 akun / 1 new post, now 4 posts from 4 accounts")
    assert sentences["acknowledged"] == ("terbuka → ditangani oleh U07DUTY: tim TRC berangkat / "
                                         "open → acknowledged by U07DUTY: tim TRC berangkat")
    assert sentences["resolved"] == ("Selesai otomatis: tidak ada unggahan baru selama 3 jam / "
                                     "resolved automatically: no new posts for 3 h")
    for sentence in sentences.values():
        assert '{"' not in sentence and "+00:00" not in sentence


# text without braces or quotes: a person may type '{"' into a note, and it is then shown as typed
words = st.text(alphabet=st.characters(blacklist_characters='{}"', blacklist_categories=("Cs",)), max_size=20)
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | words,
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(words, inner, max_size=3),
                           max_leaves=8)
KINDS = ["opened", "grew", "area_added", "escalated", "reopened", "resolved", "acknowledged", "false_alarm", "silenced",
         "held", "delivered", "delivery_failed", "note", "something_new"]


@settings_h(max_examples=300, deadline=None)
@given(kind=st.sampled_from(KINDS), actor=st.sampled_from(["siaga", "U07DUTY", "<!channel>"]),
       detail=st.dictionaries(st.sampled_from(["severity", "why", "post_ids", "posts", "authors", "observed", "expected",
                                               "window_minutes", "from", "to", "areas", "note", "reason", "until", "kind",
                                               "channel", "error", "after_minutes", "quiet_minutes", "late", "automatic"]),
                              json_values, max_size=8))
def test_any_stored_detail_reads_as_text_never_json(kind, actor, detail):
    """Timeline rows written by older versions or by hand: a sentence or the fields in words,
    never an exception and never a JSON object."""
    event = store.IncidentEvent(incident_id=1, at=T0, kind=kind, actor=actor, detail=detail)
    text = event_sentence(event)
    assert isinstance(text, str) and '{"' not in text


def test_a_run_that_opens_and_grows_an_incident_sends_one_new_alert(db_url):
    """Catching up over several windows in one run: one new alert, quoting the newest posts."""
    first = add_posts(db_url, [1, 5, 9])
    more = add_posts(db_url, [12, 14])
    changes = detect(db_url, [window(db_url, SANGSIT, 10, first), window(db_url, SANGSIT, 15, first + more)])
    assert [kind for kind, *_ in changes] == ["new"]
    ((_, _, _, evidence),) = changes
    assert evidence[:2] == [more[1], more[0]]
    assert [e.kind for e in rows(db_url, store.IncidentEvent)] == ["opened", "grew"]
