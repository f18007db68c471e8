"""The pages stay bounded whatever an incident holds, and every answer carries the headers that
keep a browser from guessing: a long flood's page lists only its latest evidence posts (all of
them stay in the GeoJSON download), and nothing is sniffed into HTML."""
from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from siaga.timelines import web
from siaga.timelines.web import create_app
from test_web import HAZARDS, seed


@pytest.fixture
def client(sqlite_url):
    ids = seed(sqlite_url)
    return TestClient(create_app(sqlite_url, hazards=HAZARDS)), ids


def test_a_long_incident_lists_only_its_latest_posts_and_says_where_the_rest_are(client, monkeypatch):
    c, ids = client
    monkeypatch.setattr(web, "MAX_PAGE_POSTS", 3)
    page = c.get(f"/incidents/{ids['flood']}").text
    evidence = page.split('id="evidence"')[1]
    rows = re.findall(r'<tr class="post">', evidence)
    assert len(rows) == 3
    assert "banjir setinggi lutut di Kalibukbuk, laporan 6" in evidence  # the latest is shown
    assert "laporan 3" not in evidence  # the fourth-latest is not
    assert 'id="evidence-cut"' in evidence and "3 of 7" in evidence
    geojson = c.get(f"/incidents/{ids['flood']}/export?format=geojson").json()
    assert sum(f["properties"]["feature"] == "evidence" for f in geojson["features"]) == 7


def test_an_incident_within_the_cap_lists_every_post_without_a_note(client):
    c, ids = client
    evidence = c.get(f"/incidents/{ids['flood']}").text.split('id="evidence"')[1]
    assert len(re.findall(r'<tr class="post">', evidence)) == 7 and 'id="evidence-cut"' not in evidence


@pytest.mark.parametrize("path", ["/", "/incidents/{flood}", "/incidents/{flood}/export?format=csv",
                                  "/incidents/{flood}/export?format=geojson", "/export?format=cap", "/cap.atom",
                                  "/incidents/{flood}/cap.xml", "/incidents/999999", "/?state=nope", "/incidents/x"])
def test_every_answer_forbids_content_sniffing(client, path):
    c, ids = client
    r = c.get(path.format(**ids))
    assert r.headers["x-content-type-options"] == "nosniff", (path, r.status_code)
    policy = r.headers["content-security-policy"]
    assert "default-src 'none'" in policy and ("form-action 'self'" in policy if "html" in r.headers["content-type"] else "sandbox" in policy)
    media = r.headers["content-type"].replace(" ", "").lower()
    assert media == "application/json" or "charset=utf-8" in media, (path, media)  # JSON is UTF-8 by definition (RFC 8259)


def test_a_list_over_years_shows_only_the_newest_rows_and_counts_them_all(client, monkeypatch):
    c, ids = client
    monkeypatch.setattr(web, "MAX_LIST_ROWS", 2)
    page = c.get("/").text
    listed = {int(i) for i in re.findall(r'<tr class="incident" data-id="(\d+)"', page)}
    assert listed == {ids["jam"], ids["slide"]}  # the two newest
    assert 'id="list-cut"' in page and "3 incidents" in page  # the heading still counts all three


def test_a_retired_hazard_and_a_kecamatan_only_incidents_name_stay_filterable(client, sqlite_url):
    """Names are refused only when neither the lists in force, the map nor any incident knows them."""
    from siaga import store
    from siaga.store import Incident
    from test_web import T0

    c, _ = client
    with store.session_scope(sqlite_url) as s:
        s.add(Incident(hazard="retired_hazard", level="district", area_code="old", area_name="Lama", district="Kecamatan Lama",
                       state="resolved", severity="low", posts=3, authors=3, opened_at=T0, last_activity_at=T0, closed_at=T0))
    assert c.get("/?hazard=retired_hazard").status_code == 200
    assert c.get("/?kecamatan=kecamatan%20lama").status_code == 200
    assert c.get("/export?format=csv&hazard=retired_hazard").text.count("retired_hazard") == 1
