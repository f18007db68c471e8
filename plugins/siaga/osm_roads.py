"""Import Buleleng's named roads from an OpenStreetMap extract into geodata/roads_osm.geojson.

No named road geometry for Buleleng was available offline, so the project ships a hand-kept,
approximate road list (geodata/roads.yaml). Whoever has an OSM extract (e.g. Geofabrik's
indonesia or a bbox cut of Bali, `.osm.pbf` or `.osm` XML) runs this once; the geotagger then
takes streets from the real lines (`geodata.load_roads`), keeping the hand-kept corridors OSM has
no name for. pyosmium does the file parsing and node-location joining.

    python -m siaga.osm_roads extract.osm.pbf [geodata/roads_osm.geojson]

The output contains OpenStreetMap data: © OpenStreetMap contributors, ODbL.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import osmium
from shapely.geometry import LineString, MultiLineString, mapping
from shapely.geometry.base import BaseGeometry
from shapely.prepared import prep

# Classes a duty officer would name in a post; footways, paths and tracks are left out (and only
# named ways are read, which leaves out nearly every driveway among the service roads).
ROAD_CLASSES = frozenset(
    {"motorway", "trunk", "primary", "secondary", "tertiary", "unclassified", "residential",
     "motorway_link", "trunk_link", "primary_link", "secondary_link", "tertiary_link", "living_street", "service"}
)


def read_named_ways(osm_path: Path) -> list[dict]:
    """Named highways of the extract as {'name','ref','highway','alt_names','osm_id','line'}."""
    osm_path = Path(osm_path)
    if not osm_path.exists():
        raise ValueError(f"{osm_path}: OSM extract not found")
    ways = []
    try:
        processor = osmium.FileProcessor(str(osm_path), osmium.osm.WAY | osmium.osm.NODE).with_locations()
        for obj in processor:
            if not obj.is_way():
                continue
            tags = obj.tags
            name, highway = tags.get("name"), tags.get("highway")
            if not name or highway not in ROAD_CLASSES:
                continue
            coords = [(n.lon, n.lat) for n in obj.nodes if n.location.valid()]
            if len(coords) < 2:
                continue
            alt = [tags.get(k) for k in ("alt_name", "old_name", "short_name", "name:id") if tags.get(k)]
            ways.append({"name": name, "ref": tags.get("ref"), "highway": highway, "alt_names": alt,
                         "osm_id": obj.id, "line": LineString(coords)})
    except RuntimeError as exc:
        raise ValueError(f"{osm_path}: cannot read OSM data: {exc}") from exc
    return ways


def _clip(line: LineString, region: BaseGeometry) -> BaseGeometry | None:
    part = line.intersection(region)
    if part.is_empty:
        return None
    if part.geom_type in ("LineString", "MultiLineString"):
        return part
    lines = [g for g in getattr(part, "geoms", []) if g.geom_type == "LineString"]
    return MultiLineString(lines) if lines else None


def import_roads(osm_path: Path, out_path: Path, regency_polygon: BaseGeometry) -> int:
    """Write the named roads of `osm_path` that cross `regency_polygon`, clipped to it, as a
    GeoJSON FeatureCollection at `out_path`; return how many road pieces were written."""
    region = prep(regency_polygon)
    features = []
    for way in read_named_ways(osm_path):
        if not region.intersects(way["line"]):
            continue
        clipped = _clip(way["line"], regency_polygon)
        if clipped is None:
            continue
        features.append({
            "type": "Feature",
            "properties": {"name": way["name"], "ref": way["ref"], "highway": way["highway"],
                           "alt_names": way["alt_names"], "osm_id": way["osm_id"]},
            "geometry": mapping(clipped),
        })
    collection = {
        "type": "FeatureCollection",
        "attribution": "© OpenStreetMap contributors, ODbL (https://www.openstreetmap.org/copyright)",
        "features": features,
    }
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(collection, ensure_ascii=False), encoding="utf-8")
    return len(features)


def main(argv: list[str] | None = None) -> int:
    from siaga.geodata import DISTRICTS_FILE, load_districts  # noqa: PLC0415
    from shapely.ops import unary_union  # noqa: PLC0415

    repo = Path(__file__).resolve().parents[2]
    ap = argparse.ArgumentParser(description="Import named Buleleng roads from an OSM extract")
    ap.add_argument("osm_path", type=Path)
    ap.add_argument("out_path", type=Path, nargs="?", default=repo / "geodata" / "roads_osm.geojson")
    ap.add_argument("--geodata", type=Path, default=repo / "geodata")
    args = ap.parse_args(argv)
    region = unary_union([d.polygon for d in load_districts(args.geodata / DISTRICTS_FILE).values()])
    n = import_roads(args.osm_path, args.out_path, region)
    print(f"wrote {n} named road pieces to {args.out_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
