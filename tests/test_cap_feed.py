"""CAP 1.2 feeds that CAP readers can subscribe to: links from the configured base URL (never
the Host header) that resolve to schema-valid CAP; Update and Cancel messages that reference the
original; and the opt-in public feed, which carries only what the agency chose to publish and no
author data."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import urljoin
from xml.etree import ElementTree as ET

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from fastapi.testclient import TestClient

from siaga import store
from siaga.settings import PublicCap, public_cap
from siaga.store import Incident, IncidentEvent, utcnow
from siaga.timelines.cap import CAP_SENDER, cap_alert, cap_messages, cap_time
from siaga.timelines.places import load_places
from siaga.timelines.report import reports_for
from siaga.timelines.web import create_app
from test_web import CAP, HAZARDS, HOSTILE, _village, seed, validate_cap

ATOM = "{http://www.w3.org/2005/Atom}"


def _story(url: str) -> dict[str, int]:
    """Recent incidents with the stories CAP must tell: one escalated then resolved (after a
    duty officer acknowledged it), one acknowledged then marked a false alarm, one live and
    acknowledged, one live that nobody confirmed."""
    now = utcnow().replace(microsecond=0)
    t = now - timedelta(hours=5)
    ids = {}
    with store.session_scope(url) as s:
        def incident(key, state, severity, events, closed=None):
            inc = Incident(hazard="flood", level="village", area_code=_village("Sangsit"), area_name="Sangsit", village="Sangsit",
                           district="Sawan", lon=115.13, lat=-8.09, state=state, severity=severity, posts=6, authors=5,
                           notified_posts=6, opened_at=t, last_activity_at=t + timedelta(hours=1), closed_at=closed)
            s.add(inc)
            s.flush()
            for minutes, kind, actor, detail in events:
                s.add(IncidentEvent(incident_id=inc.id, at=t + timedelta(minutes=minutes), kind=kind, actor=actor, detail=detail))
            ids[key] = inc.id

        incident("resolved", "resolved", "high", [
            (0, "opened", "siaga", {"severity": "medium"}), (10, "acknowledged", "made.duty", {"from": "open", "to": "acknowledged"}),
            (40, "escalated", "siaga", {"from": "medium", "to": "high"}), (120, "resolved", "made.duty", {"from": "acknowledged", "to": "resolved"}),
        ], closed=t + timedelta(minutes=120))
        incident("false_alarm", "false_alarm", "medium", [
            (0, "opened", "siaga", {}), (5, "acknowledged", "ketut", {}), (30, "false_alarm", "ketut", {"from": "acknowledged", "to": "false_alarm"}),
        ], closed=t + timedelta(minutes=30))
        incident("live", "acknowledged", "medium", [(0, "opened", "siaga", {}), (3, "acknowledged", "ketut", {})])
        incident("unconfirmed", "open", "critical", [(0, "opened", "siaga", {})])
    return ids


@pytest.fixture
def story(sqlite_url):
    return sqlite_url, _story(sqlite_url)


def _entries(feed_xml: bytes) -> dict[int, ET.Element]:
    feed = ET.fromstring(feed_xml)
    out = {}
    for entry in feed.findall(ATOM + "entry"):
        out[int(entry.find(ATOM + "id").text.rsplit(":", 1)[1])] = entry
    return out


def test_update_and_cancel_reference_the_original(story):
    url, ids = story
    places = load_places()
    with store.session_scope(url) as session:
        resolved = cap_messages(reports_for(session, places, ids["resolved"])[0])
        false_alarm = cap_messages(reports_for(session, places, ids["false_alarm"])[0])
        live = cap_messages(reports_for(session, places, ids["live"])[0])
        for report_id, messages in ((ids["resolved"], resolved), (ids["false_alarm"], false_alarm)):
            report = reports_for(session, places, report_id)[0]
            for m in messages:
                validate_cap(cap_alert(report, HAZARDS(session), places, message=m))
    assert [(m.msg_type, m.reason, m.response_type) for m in resolved] == [
        ("Alert", "opened", None), ("Update", "escalated", None), ("Update", "resolved", "AllClear")]
    assert [(m.msg_type, m.reason) for m in false_alarm] == [("Alert", "opened"), ("Cancel", "false_alarm")]
    assert [m.msg_type for m in live] == ["Alert"]  # an acknowledgement tells the public nothing new
    original = resolved[0]
    for later in resolved[1:]:
        assert later.references[0] == f"{CAP_SENDER},{original.identifier},{cap_time(original.sent)}"
    assert len(resolved[2].references) == 2 and len({m.identifier for m in resolved}) == 3
    assert false_alarm[1].references[0].split(",")[1] == false_alarm[0].identifier


def test_feed_links_come_from_the_configured_base_not_the_host_header(story, monkeypatch):
    url, ids = story
    c = TestClient(create_app(url, hazards=HAZARDS))
    monkeypatch.setenv("SIAGA_TIMELINE_BASE_URL", "https://airflow.bpbd.example/siaga")
    feed = c.get("/cap.atom", headers={"Host": "evil.example"})
    assert b"evil.example" not in feed.content
    entries = _entries(feed.content)
    # live ones, and the two closed today with their all-clear and Cancel
    assert set(entries) == {ids["resolved"], ids["false_alarm"], ids["live"], ids["unconfirmed"]}
    link = entries[ids["live"]].find(ATOM + "link").get("href")
    assert link == f"https://airflow.bpbd.example/siaga/incidents/{ids['live']}/cap.xml"
    cancel = entries[ids["false_alarm"]].find(ATOM + "content").find(CAP + "alert")
    assert cancel.find(CAP + "msgType").text == "Cancel" and cancel.find(CAP + "references") is not None
    # a base URL that is not http(s) is not used
    monkeypatch.setenv("SIAGA_TIMELINE_BASE_URL", "javascript:alert(1)//")
    assert b"javascript" not in c.get("/cap.atom").content


def test_every_feed_link_resolves_to_schema_valid_cap(story, monkeypatch):
    url, ids = story
    monkeypatch.delenv("SIAGA_TIMELINE_BASE_URL", raising=False)
    feed_url = "http://testserver/siaga/cap.atom"
    # served under a prefix, as Airflow mounts it: the relative links resolve under that prefix
    c = TestClient(create_app(url, hazards=HAZARDS), root_path="/siaga")
    feed = c.get("/cap.atom")
    entries = _entries(feed.content)
    assert entries
    for incident_id, entry in entries.items():
        href = entry.find(ATOM + "link").get("href")
        target = urljoin(feed_url, href)
        assert target == f"http://testserver/siaga/incidents/{incident_id}/cap.xml"
        doc = c.get(target.removeprefix("http://testserver/siaga"))
        assert doc.status_code == 200 and doc.headers["content-type"].startswith("application/cap+xml")
        alert = ET.fromstring(doc.content)
        validate_cap(alert)
        assert alert.find(CAP + "identifier").text == entry.find(ATOM + "content").find(CAP + "alert").find(CAP + "identifier").text


def test_public_feed_is_off_by_default(story, monkeypatch):
    url, ids = story
    for name in ("SIAGA_PUBLIC_CAP", "SIAGA_PUBLIC_CAP_HAZARDS", "SIAGA_PUBLIC_CAP_MIN_SEVERITY", "SIAGA_PUBLIC_CAP_CONFIRMED_ONLY"):
        monkeypatch.delenv(name, raising=False)
    assert public_cap() is None
    c = TestClient(create_app(url, hazards=HAZARDS, public_cap=public_cap()))
    assert c.get("/public/cap.atom").status_code == 404
    assert c.get(f"/public/incidents/{ids['live']}/cap.xml").status_code == 404
    monkeypatch.setenv("SIAGA_PUBLIC_CAP", "1")
    monkeypatch.setenv("SIAGA_PUBLIC_CAP_HAZARDS", "flood, landslide")
    assert public_cap() == PublicCap(frozenset({"flood", "landslide"}), "medium", True)
    monkeypatch.setenv("SIAGA_PUBLIC_CAP_MIN_SEVERITY", "severe")
    with pytest.raises(ValueError, match="SIAGA_PUBLIC_CAP_MIN_SEVERITY"):
        public_cap()
    monkeypatch.setenv("SIAGA_PUBLIC_CAP", "maybe")
    with pytest.raises(ValueError, match="SIAGA_PUBLIC_CAP"):
        public_cap()


def test_public_feed_carries_only_what_the_agency_publishes(story, monkeypatch):
    url, ids = story
    seed_ids = seed(url)  # the seeded incidents carry authors, post text and a hostile post
    monkeypatch.setenv("SIAGA_TIMELINE_BASE_URL", "https://bpbd.example/siaga")
    c = TestClient(create_app(url, hazards=HAZARDS, public_cap=PublicCap(min_severity="medium", confirmed_only=True)))
    feed = c.get("/public/cap.atom", headers={"Host": "evil.example"})
    assert feed.status_code == 200
    entries = _entries(feed.content)
    # confirmed by a duty officer and at least medium: not the unconfirmed critical one, not the
    # seeded landslide (low) nor the seeded jam (never acknowledged)
    assert set(entries) == {ids["resolved"], ids["false_alarm"], ids["live"]}
    text = feed.text
    for private in ("made.duty", "ketut", "warga", "Kalibukbuk", HOSTILE[:20], "evil.example", "/siaga/incidents/"):
        assert private not in text, private
    for incident_id, entry in entries.items():
        href = entry.find(ATOM + "link").get("href")
        assert href == f"https://bpbd.example/siaga/public/incidents/{incident_id}/cap.xml"
        doc = c.get(href.removeprefix("https://bpbd.example/siaga"))
        validate_cap(ET.fromstring(doc.content))
        assert b"<web>" not in doc.content  # the managers' pages need a login: not for the public
    assert c.get(f"/public/incidents/{ids['unconfirmed']}/cap.xml").status_code == 404
    assert c.get(f"/public/incidents/{seed_ids['slide']}/cap.xml").status_code == 404
    assert c.post("/public/cap.atom").status_code == 405  # read-only
    only_landslides = TestClient(create_app(url, hazards=HAZARDS, public_cap=PublicCap(hazards=frozenset({"landslide"}), min_severity="low")))
    assert set(_entries(only_landslides.get("/public/cap.atom").content)) == {seed_ids["slide"]}  # live, acknowledged, low


_ANY_CHAR = st.characters(codec="utf-8", exclude_categories=["Cs"])
_NAMES = st.text(_ANY_CHAR, min_size=1, max_size=30) | st.sampled_from(["Jalan\x01Raya", "Seririt\x0b", "A\ufffeB", "\x1b[31m", "x\u202ey"])


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(area=_NAMES, district=_NAMES, code=_NAMES)
def test_any_text_in_an_incidents_names_leaves_the_cap_feed_parseable_and_valid(sqlite_url, area, district, code):
    """A road or area name with a control character (an OpenStreetMap import holds what its
    editors typed) was written raw: one incident made /cap.atom and its cap.xml unparseable."""
    with store.session_scope(sqlite_url) as s:
        now = utcnow().replace(microsecond=0)
        inc = Incident(hazard="traffic_jam", level="road", area_code=code, area_name=area, road=area, district=district,
                       lon=114.93, lat=-8.19, state="open", severity="medium", posts=4, authors=4, notified_posts=4,
                       opened_at=now - timedelta(hours=1), last_activity_at=now)
        s.add(inc)
        s.flush()
        incident_id = inc.id
    try:
        c = TestClient(create_app(sqlite_url, hazards=HAZARDS))
        feed = ET.fromstring(c.get("/cap.atom").content)
        assert any(e.find(ATOM + "id").text.endswith(f":{incident_id}") for e in feed.iter(ATOM + "entry"))
        alert = ET.fromstring(c.get(f"/incidents/{incident_id}/cap.xml").content)
        validate_cap(alert)
    finally:  # one incident per example: the database is the test's, shared by its examples
        with store.session_scope(sqlite_url) as s:
            s.delete(s.get(Incident, incident_id))
