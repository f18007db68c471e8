"""The list page's overview (regency map, incidents per day per hazard), road lines on maps,
bilingual labels and empty states."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from fastapi.testclient import TestClient
from shapely.geometry import LineString, mapping

from siaga import store
from siaga.timelines.places import load_places
from siaga.timelines.report import read_report
from siaga.timelines.svgmap import build_map
from siaga.timelines.web import create_app
from test_web import HAZARDS, _village, seed

ROOT = Path(__file__).resolve().parents[1]


def _svg(html: str, svg_id: str) -> str:
    return html.split(f'id="{svg_id}"')[1].split("</svg>")[0]


def test_overview_maps_the_periods_incidents(sqlite_url):
    ids = seed(sqlite_url)
    c = TestClient(create_app(sqlite_url, hazards=HAZARDS))
    html = c.get("/").text
    overview = _svg(html, "overview-map")
    assert len(re.findall(r'<path class="village', overview)) == 148  # the whole regency
    hits = dict(re.findall(r'data-code="([^"]+)" data-incidents="(\d+)"', overview))
    assert {code for code, n in hits.items() if n != "0"} == {_village("Kalibukbuk")}  # the flood's village, shaded
    assert re.search(rf'data-code="{_village("Kalibukbuk")}" data-incidents="1" d="[^"]+" fill="#fdae6b"', overview)
    roads = re.findall(r'<g class="road-line" data-approximate="(\w+)">', overview)
    assert roads == ["yes"]  # the jam's road, drawn dashed: only the hand-kept corridor is known here
    assert "Jalan Raya Singaraja-Gilimanuk" in overview and 'stroke-dasharray="7 4"' in overview
    assert overview.count('class="district-hit"') == 1 and "Kec. Sukasada" in overview  # the landslide
    daily = _svg(html, "daily-chart")
    bars = re.findall(r'<rect class="day-bar"[^>]*><title>([^<]+)</title>', daily)
    assert sorted(bars) == ["14/01/2025: 1 × Banjir", "21/01/2025: 1 × Kemacetan", "22/01/2025: 1 × Tanah Longsor"]  # WITA days
    # filtered to one hazard, the overview follows the filter
    only_flood = c.get("/?hazard=flood").text
    assert 'class="road-line"' not in only_flood and len(re.findall(r'class="day-bar"', only_flood)) == 1
    assert ids


def test_daily_chart_spans_the_filtered_dates(sqlite_url):
    seed(sqlite_url)
    html = TestClient(create_app(sqlite_url, hazards=HAZARDS)).get("/?from=2025-01-10&to=2025-01-31").text
    ticks = re.findall(r'<text x="[\d.]+" y="[\d.]+" text-anchor="middle">(\d\d/\d\d)</text>', _svg(html, "daily-chart"))
    assert ticks[0] == "10/01" and len(re.findall(r'class="day-bar"', html)) == 3


def test_road_incident_map_draws_the_road_and_says_it_is_approximate(sqlite_url):
    ids = seed(sqlite_url)
    html = TestClient(create_app(sqlite_url, hazards=HAZARDS)).get(f"/incidents/{ids['jam']}").text
    svg = _svg(html, "incident-map")
    assert re.search(r'<g class="road" data-approximate="yes" data-source="roads.yaml">', svg)
    assert 'class="road-line"' in svg and "Jalan Raya Singaraja-Gilimanuk (≈)" in svg
    legend = html.split('id="road-legend"')[1].split("</span>")[0]
    assert "jalur perkiraan" in legend and "approximate trace" in legend
    assert 'id="incident-kecamatan">Seririt<' in html


def test_road_line_comes_from_an_osm_import_when_present(sqlite_url, tmp_path):
    ids = seed(sqlite_url)
    geodata = tmp_path / "geodata"
    shutil.copytree(ROOT / "geodata", geodata, ignore=shutil.ignore_patterns("roads_osm.geojson"))
    line = LineString([(114.95, -8.19), (115.0, -8.17), (115.05, -8.15)])
    (geodata / "roads_osm.geojson").write_text(json.dumps({"type": "FeatureCollection", "attribution": "© OpenStreetMap contributors", "features": [
        {"type": "Feature", "geometry": mapping(line), "properties": {"name": "Jalan Raya Singaraja-Gilimanuk", "highway": "primary"}}]}))
    places = load_places(geodata)
    with store.session_scope(sqlite_url) as session:
        report = read_report(session, ids["jam"], places)
        view = build_map(report, places)
    assert view.road is not None and not view.road.approximate and view.road.source == "osm"
    assert view.road.d.count("L") == 2  # the three points of the imported line, not the 24-village corridor
    without = load_places()
    with store.session_scope(sqlite_url) as session:
        assert build_map(read_report(session, ids["jam"], without), without).road.approximate


def test_pages_are_bilingual_indonesian_first(sqlite_url):
    ids = seed(sqlite_url)
    c = TestClient(create_app(sqlite_url, hazards=HAZARDS))
    listing = c.get("/").text
    assert '<html lang="id">' in listing
    for local, english in (("Insiden", "incidents"), ("Bahaya", "hazard"), ("Tingkat", "severity"), ("Aktivitas terakhir", "last activity")):
        assert f'{local} <span class="en" lang="en">({english})</span>' in listing
    assert "tinggi (high)" in listing and "sedang (medium)" in listing and "terbuka (open)" in listing
    assert "(all hazards and none)" not in listing
    assert "Semua unggahan periode ini, dengan atau tanpa kata bahaya" in listing
    page = c.get(f"/incidents/{ids['flood']}").text
    for local, english in (("Linimasa", "timeline"), ("Peta", "map"), ("Tindakan", "actions")):
        assert f'{local} <span class="en" lang="en">({english})</span>' in page
    assert "Ditangani (acknowledged)" in page and "selesai (resolved)" in page and "tinggi (high)" in page
    for english_only in (">Severity<", ">Timeline<", ">Map<", "Incident opened"):
        assert english_only not in page


def test_empty_states_say_why_and_what_to_do(sqlite_url):
    c = TestClient(create_app(sqlite_url, hazards=HAZARDS))
    empty = c.get("/").text
    assert 'id="empty-list"' in empty and "Belum ada insiden tercatat" in empty and '<table id="incidents">' not in empty
    assert "Belum ada unggahan dalam periode ini" in empty and "Tidak ada insiden dalam periode ini" in empty
    seed(c.app.state.site.db_url)
    none_match = c.get("/?hazard=fire").text
    assert "Tidak ada insiden yang cocok dengan saringan ini" in none_match and "hapus saringan" in none_match
    assert '<table id="incidents">' not in none_match


def test_many_detections_keep_the_chart_legible(sqlite_url):
    """22 detections of one incident (as the demo flood once had): every one is marked, but
    labels are written only where they do not overlap."""
    from datetime import timedelta

    from siaga.store import Alert
    from siaga.timelines.chart import MARKER_LABEL_GAP, build_chart
    from test_web import T0

    ids = seed(sqlite_url)
    with store.session_scope(sqlite_url) as s:
        for i in range(22):
            s.add(Alert(incident_id=ids["flood"], hazard="flood", level="village", area_code=_village("Kalibukbuk"),
                        window_start=T0 + timedelta(minutes=5 * i - 58), window_end=T0 + timedelta(minutes=5 * i + 2), observed=5 + i,
                        expected=0.4, authors=4, score=5.0, explanation={"post_ids": []}))
    places = load_places()
    with store.session_scope(sqlite_url) as session:
        chart = build_chart(read_report(session, ids["flood"], places))
    assert len(chart.markers) == 24  # the seed's two and these 22
    labelled = [m.x for m in chart.markers if m.label]
    assert 2 <= len(labelled) < 24
    assert all(b - a >= MARKER_LABEL_GAP for a, b in zip(labelled, labelled[1:]))
    assert all(m.title.startswith("Deteksi ") for m in chart.markers)
