"""The incident map: the affected villages (or kecamatan) among their neighbours, kecamatan
boundaries and the evidence posts, as numbers an inline SVG template draws.

Drawn from the project's own polygons: no tile server and no JavaScript, so the page works
offline and under the pages' content security policy (`pages.py`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from shapely.geometry import Point, box
from shapely.geometry.base import BaseGeometry

from siaga.geodata import Road
from siaga.timelines.display import wita
from siaga.timelines.places import Places
from siaga.timelines.report import EvidencePost, IncidentReport


@dataclass
class MapShape:
    name: str
    d: str  # SVG path data
    label_x: float | None = None  # where the name is written; None: not written
    label_y: float | None = None


@dataclass
class MapPoint:
    """Evidence posts at one spot (posts placed by village name share the village's point)."""

    x: float
    y: float
    title: str
    count: int = 1

    @property
    def r(self) -> float:
        """Radius grows with the square root of the posts, so the area tells the count."""
        return round(5 + 2.5 * math.sqrt(self.count - 1), 1)


@dataclass
class MapRoad:
    """A road drawn on a map: its line (or, for a street known only by its town, a point) and
    whether that trace is approximate (the hand-kept corridor through its villages)."""

    name: str
    d: str  # SVG path data; empty when only a point is known
    approximate: bool
    source: str  # "osm" or "roads.yaml"
    x: float | None = None  # the point, or where the name is written
    y: float | None = None


@dataclass
class MapView:
    width: int
    height: int
    context: list[MapShape] = field(default_factory=list)  # villages around the affected area
    districts: list[MapShape] = field(default_factory=list)  # kecamatan boundaries, as lines
    affected: list[MapShape] = field(default_factory=list)
    points: list[MapPoint] = field(default_factory=list)
    road: MapRoad | None = None  # a road incident's road
    scale_px: float = 0.0
    scale_label: str = ""
    empty: bool = False  # nothing known to draw


class Projection:
    """Equirectangular with the latitude's cosine: at 8° S the error over a regency is far below
    a pixel, so a map projection library would add nothing."""

    def __init__(self, bounds: tuple[float, float, float, float], width: int) -> None:
        minx, miny, maxx, maxy = bounds
        self.k = math.cos(math.radians((miny + maxy) / 2))
        self.minx, self.maxy = minx, maxy
        self.scale = width / ((maxx - minx) * self.k)
        self.height = int(round((maxy - miny) * self.scale))

    def xy(self, lon: float, lat: float) -> tuple[float, float]:
        return (round((lon - self.minx) * self.k * self.scale, 1), round((self.maxy - lat) * self.scale, 1))

    def path(self, geom: BaseGeometry) -> str:
        parts = []
        for poly in getattr(geom, "geoms", [geom]):
            if poly.geom_type != "Polygon" or poly.is_empty:
                continue
            for ring in [poly.exterior, *poly.interiors]:
                pts = [self.xy(x, y) for x, y in ring.coords]
                parts.append("M" + " L".join(f"{x},{y}" for x, y in pts) + " Z")
        return " ".join(parts)

    def line_path(self, geom: BaseGeometry) -> str:
        parts = []
        for line in getattr(geom, "geoms", [geom]):
            if line.geom_type == "LineString" and not line.is_empty:
                parts.append("M" + " L".join(f"{x},{y}" for x, y in (self.xy(*c) for c in line.coords)))
        return " ".join(parts)


def build_map(report: IncidentReport, places: Places, width: int = 640) -> MapView:
    """The affected villages (or kecamatan) in their surroundings, with the evidence points. The
    view is the affected area and the points with a margin, no flatter than 5:3 and no taller
    than square; without either, a circle of about 2 km around the incident's point; without that, empty."""
    affected = [(places.villages[c].name, places.villages[c].polygon) for c in report.village_codes]
    affected += [(places.districts[c].name, places.districts[c].polygon) for c in report.district_codes]
    points = [(p.lon, p.lat, p) for p in report.posts if p.lon is not None and p.lat is not None]
    shapes = [g for _, g in affected] + [Point(lon, lat) for lon, lat, _ in points]
    inc = report.incident
    road = places.road_line(inc.area_code, inc.road) if inc.level == "road" else None
    if road is not None and road.line is not None and not road.line.is_empty:
        shapes.append(road.line.buffer(0.005) if road.line.geom_type == "Point" else road.line)
    if not shapes and inc.lon is not None and inc.lat is not None:
        shapes = [Point(inc.lon, inc.lat).buffer(0.02)]
    if not shapes:
        return MapView(width, 200, empty=True)
    minx = min(s.bounds[0] for s in shapes)
    miny = min(s.bounds[1] for s in shapes)
    maxx = max(s.bounds[2] for s in shapes)
    maxy = max(s.bounds[3] for s in shapes)
    pad = max(0.02, 0.25 * max(maxx - minx, maxy - miny))
    minx, miny, maxx, maxy = minx - pad, miny - pad, maxx + pad, maxy + pad
    # Keep the picture between 5:3 landscape and square so a long road stays readable.
    k = math.cos(math.radians((miny + maxy) / 2))
    w_deg, h_deg = (maxx - minx) * k, maxy - miny
    if h_deg < w_deg * 0.6:
        grow = (w_deg * 0.6 - h_deg) / 2
        miny, maxy = miny - grow, maxy + grow
    elif h_deg > w_deg:
        grow = (h_deg - w_deg) / k / 2
        minx, maxx = minx - grow, maxx + grow
    proj = Projection((minx, miny, maxx, maxy), width)
    view = box(minx, miny, maxx, maxy)
    tolerance = (maxx - minx) / width * 0.8
    out = MapView(width, proj.height)
    affected_names = {name for name, _ in affected}
    for village in places.villages.values():
        if village.polygon.intersects(view) and village.name not in affected_names:
            clipped = village.polygon.intersection(view).simplify(tolerance, preserve_topology=True)
            label = clipped.representative_point() if not clipped.is_empty else None
            lx, ly = proj.xy(label.x, label.y) if label is not None else (None, None)
            out.context.append(MapShape(village.name, proj.path(clipped), lx, ly))
    if len(out.context) > 40:  # a wide view: village names would only be noise
        for shape_ in out.context:
            shape_.label_x = shape_.label_y = None
    for district in places.districts.values():
        if district.polygon.intersects(view):
            clipped = district.polygon.boundary.intersection(view.buffer(tolerance * 4)).simplify(tolerance)
            out.districts.append(MapShape(district.name, proj.line_path(clipped)))
    for name, geom in affected:
        clipped = geom.intersection(view).simplify(tolerance, preserve_topology=True)
        label = geom.representative_point()
        lx, ly = proj.xy(label.x, label.y)
        out.affected.append(MapShape(name, proj.path(clipped), lx, ly - 14))
    if len(out.affected) > 6:  # a road through many villages: name its two ends only
        for shape_ in out.affected[1:-1]:
            shape_.label_x = shape_.label_y = None
    spots: dict[tuple[float, float], list[EvidencePost]] = {}
    for lon, lat, post in points:
        spots.setdefault(proj.xy(lon, lat), []).append(post)
    for (x, y), posts in spots.items():
        lines = [f"{wita(p.created_at)} · {p.source}: {p.text[:140]}" for p in posts[:5]]
        if len(posts) > 5:
            lines.append(f"… and {len(posts) - 5} more")
        out.points.append(MapPoint(x, y, "\n".join(lines), len(posts)))
    if road is not None and road.line is not None and not road.line.is_empty:
        out.road = map_road(road, proj, view)
    out.scale_px, out.scale_label = _scale_bar(proj, width)
    return out


def map_road(road: Road, proj: Projection, view: BaseGeometry) -> MapRoad | None:
    """`road` in the map's pixels, clipped to the view, its name written at its middle."""
    if road.line.geom_type == "Point":
        x, y = proj.xy(road.line.x, road.line.y)
        return MapRoad(road.name, "", road.approximate, road.source, x, y)
    clipped = road.line.intersection(view)
    if clipped.is_empty:
        return None
    mid = clipped.interpolate(0.5, normalized=True) if clipped.geom_type == "LineString" else clipped.representative_point()
    x, y = proj.xy(mid.x, mid.y)
    return MapRoad(road.name, proj.line_path(clipped), road.approximate, road.source, x, y)


def _scale_bar(proj: Projection, width: int) -> tuple[float, str]:
    """A round distance (0.5 to 50 km) no longer than a fifth of the map, and its length in pixels."""
    km_per_px = 111.32 / proj.scale  # one degree of latitude ~ 111 km
    target = km_per_px * width / 5
    nice = max((n for n in (0.5, 1, 2, 5, 10, 20, 50) if n <= target), default=0.5)
    return nice / km_per_px, f"{nice:g} km"
