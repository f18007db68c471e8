"""The list page's overview of a period: a map of the regency with its incidents (villages shaded
by how many incidents they had, roads drawn, kecamatan-wide incidents outlined) and the incidents
opened per day per hazard, as numbers inline SVG templates draw.

Managers asked to see the whole regency at once: where the period's trouble was and when. Drawn
from the project's own polygons like the incident map (`svgmap.py`), so it works offline and
under the pages' content security policy.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Mapping

from shapely.ops import unary_union

from siaga.store import Incident
from siaga.timelines.places import Places
from siaga.timelines.svgmap import MapRoad, MapShape, Projection, map_road
from siaga.vocabulary import LOCAL_TZ

# Sequential shades for 1, 2, 3-4, 5+ incidents in a village (ColorBrewer "Oranges", which
# stays readable for the colour-blind); villages without incidents stay pale.
SHADES = ((1, "#fdae6b"), (2, "#fd8d3c"), (3, "#e6550d"), (5, "#a63603"))
NO_INCIDENT = "#f8f9fa"
# One colour per hazard in the daily chart, assigned in hazard order (Okabe-Ito palette).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#000000")
MAX_DAYS = 62  # a longer period is shown as its last MAX_DAYS days


@dataclass
class OverviewVillage:
    code: str
    name: str
    d: str
    incidents: int
    fill: str
    label_x: float = 0.0  # where its name is written (only villages with incidents are named)
    label_y: float = 0.0


@dataclass
class OverviewMap:
    width: int
    height: int
    villages: list[OverviewVillage] = field(default_factory=list)
    districts: list[MapShape] = field(default_factory=list)  # kecamatan boundaries, labelled
    district_incidents: list[tuple[MapShape, int]] = field(default_factory=list)  # kecamatan-wide incidents, outlined
    roads: list[tuple[MapRoad, int]] = field(default_factory=list)  # roads with incidents, and how many
    legend: list[tuple[str, str]] = field(default_factory=list)  # (colour, what it means)
    incidents: int = 0
    unmapped: int = 0  # incidents with no village, road or kecamatan to draw


_BASES: dict[tuple[int, int], tuple[Places, tuple]] = {}


def _base(places: Places, width: int) -> tuple[Projection, tuple[tuple[str, str, str, float, float], ...], tuple[MapShape, ...]]:
    """The regency's villages and kecamatan at `width` pixels: the same for every request, so
    drawn once per `Places` (which `load_places` reads once per process)."""
    cached = _BASES.get((id(places), width))
    if cached is not None and cached[0] is places:
        return cached[1]
    base = _draw_base(places, width)
    _BASES[(id(places), width)] = (places, base)
    return base


def _draw_base(places: Places, width: int) -> tuple[Projection, tuple[tuple[str, str, str, float, float], ...], tuple[MapShape, ...]]:
    region = unary_union([d.polygon for d in places.districts.values()])
    minx, miny, maxx, maxy = region.bounds
    pad = 0.01
    proj = Projection((minx - pad, miny - pad, maxx + pad, maxy + pad), width)
    tolerance = (maxx - minx) / width * 0.7
    villages = tuple((code, v.name, proj.path(v.polygon.simplify(tolerance, preserve_topology=True)),
                      *proj.xy(v.polygon.representative_point().x, v.polygon.representative_point().y))
                     for code, v in sorted(places.villages.items()))
    districts = []
    for d in sorted(places.districts.values(), key=lambda d: d.name):
        label = d.polygon.representative_point()
        lx, ly = proj.xy(label.x, label.y)
        districts.append(MapShape(d.name, proj.path(d.polygon.simplify(tolerance, preserve_topology=True)), lx, ly))
    return proj, villages, tuple(districts)


def _shade(n: int) -> str:
    fill = NO_INCIDENT
    for at_least, colour in SHADES:
        if n >= at_least:
            fill = colour
    return fill


def build_overview(incidents: list[Incident], places: Places, width: int = 760) -> OverviewMap:
    """The regency with `incidents`: a village incident shades its village, a road incident
    draws its road (approximate traces dashed), a kecamatan incident outlines its kecamatan."""
    proj, village_paths, district_shapes = _base(places, width)
    out = OverviewMap(width, proj.height, incidents=len(incidents))
    per_village: dict[str, int] = {}
    per_road: dict[str, int] = {}
    per_district: dict[str, int] = {}
    names: dict[str, str | None] = {}
    for inc in incidents:
        if inc.level == "village" and inc.area_code in places.villages:
            per_village[inc.area_code] = per_village.get(inc.area_code, 0) + 1
        elif inc.level == "road" and places.road_line(inc.area_code, inc.road) is not None:
            per_road[inc.area_code] = per_road.get(inc.area_code, 0) + 1
            names[inc.area_code] = inc.road
        elif inc.level in ("district", "regency") and (district := places.districts.get(inc.area_code) or places.district_named(inc.district)):
            per_district[district.code] = per_district.get(district.code, 0) + 1
        else:
            out.unmapped += 1
    for code, name, d, lx, ly in village_paths:
        n = per_village.get(code, 0)
        out.villages.append(OverviewVillage(code, name, d, n, _shade(n), lx, ly))
    out.districts = list(district_shapes)
    by_name = {s.name: s for s in district_shapes}
    for code, n in sorted(per_district.items()):
        out.district_incidents.append((by_name[places.districts[code].name], n))
    view = unary_union([d.polygon for d in places.districts.values()]).envelope.buffer(0.01)
    for road_id, n in sorted(per_road.items()):
        road = places.road_line(road_id, names.get(road_id))
        if road is not None and road.line is not None and not road.line.is_empty and (drawn := map_road(road, proj, view)):
            out.roads.append((drawn, n))
    out.legend = [(colour, label) for (at_least, colour), label in zip(SHADES, ("1", "2", "3–4", "5+"))]
    return out


@dataclass
class DayBar:
    x: float
    y: float
    h: float
    colour: str
    title: str


@dataclass
class DailyChart:
    width: int
    height: int
    left: int
    top: int
    plot_w: int
    plot_h: int
    bar_w: float
    bars: list[DayBar] = field(default_factory=list)
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    hazards: list[tuple[str, str]] = field(default_factory=list)  # (hazard id, colour), the legend
    days: int = 0
    cut: bool = False  # the period was longer than MAX_DAYS


def build_daily(incidents: list[Incident], first: date | None = None, last: date | None = None,
                labels: Mapping[str, str] | None = None, width: int = 760, height: int = 220) -> DailyChart:
    """Incidents opened per WITA day per hazard, stacked, from `first` to `last` (default: the
    days the incidents opened on), at most MAX_DAYS days (the latest)."""
    opened = [(inc.opened_at.astimezone(LOCAL_TZ).date(), inc.hazard) for inc in incidents]
    days_seen = [d for d, _ in opened]
    first = first or (min(days_seen) if days_seen else None)
    last = last or (max(days_seen) if days_seen else None)
    left, top, right, bottom = 34, 10, 10, 34
    chart = DailyChart(width, height, left, top, width - left - right, height - top - bottom, 0)
    if first is None or last is None or last < first:
        return chart
    if (last - first).days + 1 > MAX_DAYS:
        first, chart.cut = last - timedelta(days=MAX_DAYS - 1), True
    n = (last - first).days + 1
    chart.days = n
    hazards = sorted({h for _, h in opened})
    colours = {h: PALETTE[i % len(PALETTE)] for i, h in enumerate(hazards)}
    chart.hazards = [(h, colours[h]) for h in hazards]
    counts: dict[tuple[date, str], int] = {}
    for day, hazard in opened:
        if first <= day <= last:
            counts[(day, hazard)] = counts.get((day, hazard), 0) + 1
    totals = [sum(counts.get((first + timedelta(days=i), h), 0) for h in hazards) for i in range(n)]
    ymax = max(totals + [1])
    step = max(1, -(-ymax // 4))
    ymax = step * -(-ymax // step)
    chart.bar_w = round(chart.plot_w / n, 2)
    sy = chart.plot_h / ymax
    for i in range(n):
        day = first + timedelta(days=i)
        base = top + chart.plot_h
        for h in hazards:
            c = counts.get((day, h), 0)
            if c:
                base -= c * sy
                chart.bars.append(DayBar(round(left + i * chart.bar_w + 1, 1), round(base, 1), round(c * sy, 1), colours[h],
                                         f"{day:%d/%m/%Y}: {c} × {(labels or {}).get(h, h)}"))
    every = max(1, -(-n // 8))
    chart.x_ticks = [(round(left + (i + 0.5) * chart.bar_w, 1), (first + timedelta(days=i)).strftime("%d/%m")) for i in range(0, n, every)]
    chart.y_ticks = [(round(top + chart.plot_h - v * sy, 1), str(v)) for v in range(0, ymax + 1, step)]
    return chart
