"""Exports that leave the building: hostile text in a CSV stays in its cell and never runs as a
formula, and only http(s) links leave in GeoJSON, whatever a post or an OSM import holds."""
from __future__ import annotations

import csv
import html
import io
import json
import re

from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from siaga import store
from siaga.links import safe_url
from siaga.store import Incident, Post
from siaga.timelines.csv_export import FORMULA_STARTS, _writer, csv_safe, to_csv
from siaga.timelines.web import create_app
from test_web import HAZARDS, T0, seed

_cell_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=60)
_hostile_cells = st.one_of(
    _cell_text,
    st.builds(lambda a, b, c: a + b + c, _cell_text, st.sampled_from(["\r", "\n", "\r\n", '"', ",", "\r=1+1", "\n@SUM(A1)"]), _cell_text),
    st.sampled_from(["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(1)", "\t=1", "\r=1", "\n=1", 'a\r=HYPERLINK("http://x")']),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_hostile_cells, min_size=1, max_size=4))
def test_csv_keeps_every_cell_in_its_row_and_defuses_formulas(cells):
    out = io.StringIO()
    w = _writer(out, [f"c{i}" for i in range(len(cells))])
    w.writeheader()
    w.writerow({f"c{i}": csv_safe(v) for i, v in enumerate(cells)})
    rows = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    assert len(rows) == 2, out.getvalue()
    for original, got in zip(cells, rows[1]):
        if original.startswith(FORMULA_STARTS):
            assert got == "'" + original
        else:
            assert got == original
    # every CR or LF of the data is inside a quoted field: the row ends only at its own CR LF
    data = out.getvalue().split("\r\n", 1)[1]
    assert data.endswith("\r\n")
    if any(("\r" in c or "\n" in c) for c in cells):
        assert '"' in data


def test_incident_csv_with_a_carriage_return_in_a_road_name_stays_one_row(sqlite_url):
    with store.session_scope(sqlite_url) as s:
        s.add(Incident(hazard="traffic_jam", level="road", area_code="osm-1", area_name="Jalan X\r=HYPERLINK(\"http://evil\")",
                       road="Jalan X\r=HYPERLINK(\"http://evil\")", district="Buleleng", state="open", severity="low",
                       posts=3, authors=3, opened_at=T0, last_activity_at=T0))
    text = TestClient(create_app(sqlite_url, hazards=HAZARDS)).get("/export?format=csv").text
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) == 1 and rows[0]["road"] == 'Jalan X\r=HYPERLINK("http://evil")'
    assert '"Jalan X\r=HYPERLINK' in text  # quoted, so the CR is inside the cell


def test_only_http_links_leave(sqlite_url):
    ids = seed(sqlite_url)
    bad = ["javascript:alert(1)", " JavaScript:alert(1)", "java\tscript:alert(1)", "data:text/html,<script>x</script>",
           "vbscript:msgbox", "file:///etc/passwd", "http:alert(1)", "\x01javascript:alert(1)", "https://ok.example/\nx"]
    with store.session_scope(sqlite_url) as s:
        for i, url in enumerate(bad):
            s.get(Post, ids["hostile_post"] + 1 + (i % 6)).url = url
    data = json.loads(TestClient(create_app(sqlite_url, hazards=HAZARDS)).get(f"/incidents/{ids['flood']}/export?format=geojson").text)
    urls = [f["properties"]["url"] for f in data["features"] if f["properties"]["feature"] == "evidence"]
    assert len(urls) == 7
    assert all(u is None or u.startswith(("http://", "https://")) and "\n" not in u for u in urls), urls
    for url in bad:
        assert safe_url(url) is None, url
    assert safe_url("https://x.com/warga1/status/1") == "https://x.com/warga1/status/1"
    assert to_csv([]).startswith("incident_id,")


DISGUISED = ["https://evil.example/\u202egpj.exe", "https://ok\u200b.example/", "https://ok.example/\u2066x\u2069",
             "https://ok.example/a\u00adb", "https://ok.example/|x", "https://ok.example/\u2028x"]


def test_links_that_hide_where_they_go_are_not_followable_on_the_page_or_in_geojson(sqlite_url):
    """One rule for Slack, the pages and the exports (`links.safe_url`): a bidi override or an
    invisible character shows one address and opens another, so no page or GIS gets it as a link."""
    ids = seed(sqlite_url)
    with store.session_scope(sqlite_url) as s:
        for i, url in enumerate(DISGUISED):
            s.get(Post, ids["hostile_post"] + 1 + i).url = url
    client = TestClient(create_app(sqlite_url, hazards=HAZARDS))
    data = client.get(f"/incidents/{ids['flood']}/export?format=geojson").json()
    urls = [f["properties"]["url"] for f in data["features"] if f["properties"]["feature"] == "evidence"]
    assert len(urls) == 7 and urls.count(None) >= len(DISGUISED), urls
    page = client.get(f"/incidents/{ids['flood']}").text
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert hrefs and not any(html.unescape(h) in DISGUISED or not html.unescape(h).isprintable() for h in hrefs), hrefs
    for url in DISGUISED:
        assert safe_url(url) is None, url


def test_period_csv_rows_end_in_crlf(sqlite_url):
    seed(sqlite_url)
    text = TestClient(create_app(sqlite_url, hazards=HAZARDS)).get("/export?format=csv").text
    assert text.count("\r\n") == 4 and text.endswith("\r\n")  # header and three incidents


def _rings_follow_rfc7946(geometry: dict) -> bool:
    from shapely.geometry import shape

    geom = shape(geometry)
    polygons = [geom] if geom.geom_type == "Polygon" else list(geom.geoms)
    return all(p.exterior.is_ccw and not any(h.is_ccw for h in p.interiors) for p in polygons)


def test_geojson_areas_wind_as_rfc_7946_asks(sqlite_url):
    """Outer rings counterclockwise, holes clockwise, for a village, a road and a kecamatan incident
    and the whole regency."""
    seed(sqlite_url)
    with store.session_scope(sqlite_url) as s:
        s.add(Incident(hazard="earthquake", level="regency", area_code="51.08", area_name="Buleleng", state="open", severity="high",
                       posts=3, authors=3, opened_at=T0, last_activity_at=T0))
    data = TestClient(create_app(sqlite_url, hazards=HAZARDS)).get("/export?format=geojson").json()
    areas = [f["geometry"] for f in data["features"] if f["properties"]["feature"] == "incident" and f["geometry"]
             and f["geometry"]["type"] in ("Polygon", "MultiPolygon")]
    assert len(areas) >= 3
    assert all(_rings_follow_rfc7946(g) for g in areas)
