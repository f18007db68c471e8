"""The OSM importer keeps named highways crossing the regency, clipped, and the gazetteer uses them."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from shapely.geometry import box, shape

from siaga.geotag import Geotagger
from siaga.osm_roads import import_roads

ROOT = Path(__file__).resolve().parents[1]

# Nodes: a line from inside Singaraja (115.09,-8.11) east to outside the test region; a named
# path (footway: dropped); an unnamed road (dropped); a named road entirely outside (dropped).
OSM_XML = """<?xml version='1.0' encoding='UTF-8'?>
<osm version="0.6" generator="siaga-test">
  <node id="1" lat="-8.110" lon="115.080"/>
  <node id="2" lat="-8.110" lon="115.100"/>
  <node id="3" lat="-8.110" lon="115.300"/>
  <node id="4" lat="-8.650" lon="115.200"/>
  <node id="5" lat="-8.660" lon="115.210"/>
  <way id="10"><nd ref="1"/><nd ref="2"/><nd ref="3"/>
    <tag k="highway" v="primary"/><tag k="name" v="Jalan Ngurah Rai Test"/><tag k="ref" v="3"/></way>
  <way id="11"><nd ref="1"/><nd ref="2"/><tag k="highway" v="footway"/><tag k="name" v="Gang Setapak"/></way>
  <way id="12"><nd ref="1"/><nd ref="2"/><tag k="highway" v="residential"/></way>
  <way id="13"><nd ref="4"/><nd ref="5"/><tag k="highway" v="primary"/><tag k="name" v="Jalan Denpasar Test"/></way>
</osm>
"""


def test_import_roads_clips_and_filters(tmp_path):
    osm = tmp_path / "mini.osm"
    osm.write_text(OSM_XML)
    region = box(115.05, -8.2, 115.2, -8.0)
    out = tmp_path / "roads_osm.geojson"
    assert import_roads(osm, out, region) == 1
    data = json.loads(out.read_text())
    (feat,) = data["features"]
    assert feat["properties"]["name"] == "Jalan Ngurah Rai Test"
    assert feat["properties"]["highway"] == "primary" and feat["properties"]["ref"] == "3"
    line = shape(feat["geometry"])
    minx, _, maxx, _ = line.bounds
    assert minx == pytest.approx(115.08) and maxx == pytest.approx(115.2)  # clipped at the region edge
    assert "OpenStreetMap" in data["attribution"]


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        import_roads(tmp_path / "nope.osm", tmp_path / "out.geojson", box(0, 0, 1, 1))


def test_gazetteer_prefers_osm_roads(tmp_path):
    geodata = tmp_path / "geodata"
    shutil.copytree(ROOT / "geodata", geodata, ignore=shutil.ignore_patterns("roads_osm.geojson"))
    osm = tmp_path / "mini.osm"
    osm.write_text(OSM_XML.replace("Jalan Ngurah Rai Test", "Jalan Ahmad Yani"))
    from siaga.geodata import load_districts
    from shapely.ops import unary_union

    region = unary_union([d.polygon for d in load_districts(geodata / "buleleng_districts.geojson").values()])
    import_roads(osm, geodata / "roads_osm.geojson", region)
    tagger = Geotagger.from_paths(geodata, ROOT / "config" / "aliases.yaml")
    roads = [p for p in tagger.tag("Kecelakaan di Jl. Ahmad Yani, Singaraja").places if p.kind == "road"]
    assert [r.code for r in roads] == ["osm:jalanahmadyani"]
    assert "approximate" not in roads[0].reason
    # hand-kept corridors stay available next to the OSM streets
    assert any(p.code == "singaraja-gilimanuk" for p in tagger.tag("jalur Gilimanuk macet").places)
