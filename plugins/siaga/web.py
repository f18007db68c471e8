"""The managers' pages: which incidents, where, how they grew, who was told and when.

A plain FastAPI app rendering server-side HTML, so it works inside Airflow's UI (mounted by
`plugins/siaga_plugin.py`, which adds Airflow's login) and on its own for tests. The map and the
chart are inline SVG computed from the project's own polygons and counts: no tile server, no
JavaScript, nothing fetched from outside. Jinja2 autoescaping is on for every template, because
everything that comes from a post is hostile text.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from shapely.geometry import Point, box
from shapely.geometry.base import BaseGeometry
from sqlalchemy import func, select

from siaga import exports
from siaga.exports import Geodata, IncidentReport, load_geodata
from siaga.store import Geotag, Incident, Post, session_scope
from siaga.vocabulary import LIVE_STATES, LOCAL_TZ, LOCAL_TZ_LABEL, STATES

TEMPLATES = Path(__file__).with_name("templates")
SEVERITY_COLOURS = {"low": "#6b8e23", "medium": "#d4a017", "high": "#e8590c", "critical": "#c92a2a"}
EVENT_LABELS = {
    "opened": "Incident opened", "counts": "Counts grew", "escalated": "Escalated", "delivered": "Slack message delivered",
    "delivery_failed": "Slack delivery failed", "resolved": "Resolved", "acknowledged": "Acknowledged",
    "reopened": "Reopened", "closed": "Closed", "note": "Note",
}


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["wita"] = wita
    env.filters["tojson_pretty"] = lambda v: json.dumps(v, ensure_ascii=False, sort_keys=True, default=str)
    env.globals["severity_colour"] = lambda s: SEVERITY_COLOURS.get(s, "#868e96")
    env.globals["event_label"] = lambda k: EVENT_LABELS.get(k, k.replace("_", " ").capitalize())
    env.globals["safe_url"] = safe_url
    return env


def wita(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Times as the duty officers in Buleleng read them."""
    return value.astimezone(LOCAL_TZ).strftime(fmt) + " " + LOCAL_TZ_LABEL if value else "–"


def safe_url(url: str | None) -> str | None:
    """Only http(s) links: autoescaping does not stop a `javascript:` href in a hostile post."""
    if not url:
        return None
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return None
    return url.strip() if scheme in ("http", "https") else None


# --- the map -----------------------------------------------------------------------------------


@dataclass
class MapShape:
    name: str
    d: str
    label_x: float | None = None
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
        return round(5 + 2.5 * math.sqrt(self.count - 1), 1)


@dataclass
class MapView:
    width: int
    height: int
    context: list[MapShape] = field(default_factory=list)
    districts: list[MapShape] = field(default_factory=list)
    affected: list[MapShape] = field(default_factory=list)
    points: list[MapPoint] = field(default_factory=list)
    scale_px: float = 0.0
    scale_label: str = ""
    empty: bool = False


class _Projection:
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


def build_map(report: IncidentReport, geo: Geodata, width: int = 640) -> MapView:
    """The affected villages (or kecamatan) in their surroundings, with the evidence points."""
    affected = [(geo.villages[c].name, geo.villages[c].geometry) for c in report.village_codes]
    affected += [(geo.districts[c].name, geo.districts[c].geometry) for c in report.district_codes]
    points = [(p.lon, p.lat, p) for p in report.posts if p.lon is not None and p.lat is not None]
    shapes = [g for _, g in affected] + [Point(lon, lat) for lon, lat, _ in points]
    inc = report.incident
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
    # Keep the picture between square and 16:10 landscape so a long road stays readable.
    k = math.cos(math.radians((miny + maxy) / 2))
    w_deg, h_deg = (maxx - minx) * k, maxy - miny
    if h_deg < w_deg * 0.6:
        grow = (w_deg * 0.6 - h_deg) / 2
        miny, maxy = miny - grow, maxy + grow
    elif h_deg > w_deg:
        grow = (h_deg - w_deg) / k / 2
        minx, maxx = minx - grow, maxx + grow
    proj = _Projection((minx, miny, maxx, maxy), width)
    view = box(minx, miny, maxx, maxy)
    tolerance = (maxx - minx) / width * 0.8
    out = MapView(width, proj.height)
    affected_names = {name for name, _ in affected}
    for place in geo.villages.values():
        if place.geometry.intersects(view) and place.name not in affected_names:
            clipped = place.geometry.intersection(view).simplify(tolerance, preserve_topology=True)
            label = clipped.representative_point() if not clipped.is_empty else None
            lx, ly = proj.xy(label.x, label.y) if label is not None else (None, None)
            out.context.append(MapShape(place.name, proj.path(clipped), lx, ly))
    if len(out.context) > 40:  # a wide view: village names would only be noise
        for shape_ in out.context:
            shape_.label_x = shape_.label_y = None
    for place in geo.districts.values():
        if place.geometry.intersects(view):
            clipped = place.geometry.boundary.intersection(view.buffer(tolerance * 4)).simplify(tolerance)
            out.districts.append(MapShape(place.name, _line_path(proj, clipped)))
    for name, geom in affected:
        clipped = geom.intersection(view).simplify(tolerance, preserve_topology=True)
        label = geom.representative_point()
        lx, ly = proj.xy(label.x, label.y)
        out.affected.append(MapShape(name, proj.path(clipped), lx, ly - 14))
    spots: dict[tuple[float, float], list[Any]] = {}
    if len(out.affected) > 6:  # a road through many villages: name its two ends only
        for shape_ in out.affected[1:-1]:
            shape_.label_x = shape_.label_y = None
    for lon, lat, post in points:
        spots.setdefault(proj.xy(lon, lat), []).append(post)
    for (x, y), posts in spots.items():
        lines = [f"{wita(p.created_at)} · {p.source}: {p.text[:140]}" for p in posts[:5]]
        if len(posts) > 5:
            lines.append(f"… and {len(posts) - 5} more")
        out.points.append(MapPoint(x, y, "\n".join(lines), len(posts)))
    out.scale_px, out.scale_label = _scale_bar(proj, width)
    return out


def _line_path(proj: _Projection, geom: BaseGeometry) -> str:
    parts = []
    for line in getattr(geom, "geoms", [geom]):
        if line.geom_type == "LineString" and not line.is_empty:
            parts.append("M" + " L".join(f"{x},{y}" for x, y in (proj.xy(*c) for c in line.coords)))
    return " ".join(parts)


def _scale_bar(proj: _Projection, width: int) -> tuple[float, str]:
    km_per_px = 111.32 / proj.scale  # one degree of latitude ~ 111 km
    target = km_per_px * width / 5
    nice = max((n for n in (0.5, 1, 2, 5, 10, 20, 50) if n <= target), default=0.5)
    return nice / km_per_px, (f"{nice:g} km")


# --- the chart ---------------------------------------------------------------------------------

DISPLAY_BUCKETS = [timedelta(minutes=m) for m in (5, 15, 30, 60, 180, 360, 720, 1440)]


@dataclass
class ChartBar:
    x: float
    y: float
    w: float
    h: float
    title: str


@dataclass
class ChartMarker:
    x: float
    label: str
    title: str


@dataclass
class ChartView:
    width: int
    height: int
    left: int
    top: int
    plot_w: int
    plot_h: int
    bars: list[ChartBar] = field(default_factory=list)
    expected_path: str = ""
    markers: list[ChartMarker] = field(default_factory=list)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    bucket_label: str = ""
    source: str = ""
    empty: bool = False


def _floor(t: datetime, step: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    return epoch + ((t - epoch) // step) * step


def build_chart(report: IncidentReport, width: int = 720, height: int = 260) -> ChartView:
    """Posts per bucket against the expected level, with a marker where each alert fired."""
    inc = report.incident
    counts = report.counts
    source = "area counts"
    if not counts:  # no stored counts for the series: count the evidence posts themselves
        counts = [(p.created_at, 1) for p in report.posts]
        source = "evidence posts"
    times = [t for t, _ in counts] + [a.window_start for a in report.alerts] + [a.window_end for a in report.alerts] + [inc.opened_at, inc.last_activity_at]
    start, end = min(times) - timedelta(hours=1), max(times) + timedelta(hours=1)
    step = next((b for b in DISPLAY_BUCKETS if (end - start) / b <= 72), DISPLAY_BUCKETS[-1])
    start, end = _floor(start, step), _floor(end, step) + step
    n = int((end - start) / step)
    totals = [0] * n
    for t, c in counts:
        i = int((t - start) / step)
        if 0 <= i < n:
            totals[i] += c
    expected = [_expected_at(report, start + i * step + step / 2, step) for i in range(n)]
    left, top, right, bottom = 44, 14, 36, 40
    chart = ChartView(width, height, left, top, width - left - right, height - top - bottom, source=source)
    chart.bucket_label = _duration(step)
    peak = max(totals + [e for e in expected if e is not None] + [1])
    ymax = _nice_ceiling(peak)
    bw = chart.plot_w / n
    sy = chart.plot_h / ymax
    for i, total in enumerate(totals):
        if total:
            h = total * sy
            chart.bars.append(ChartBar(round(left + i * bw + 1, 1), round(top + chart.plot_h - h, 1), round(max(bw - 2, 1), 1), round(h, 1),
                                       f"{wita(start + i * step)}: {total} post(s)"))
    pts = [(left + (i + 0.5) * bw, top + chart.plot_h - e * sy) for i, e in enumerate(expected) if e is not None]
    chart.expected_path = "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in pts) if pts else ""
    for j, alert in enumerate(report.alerts, 1):
        x = left + (alert.window_end - start) / step * bw
        chart.markers.append(ChartMarker(round(x, 1), f"A{j}", f"Alert {j} at {wita(alert.window_end)}: {alert.observed} observed, {alert.expected:.1f} expected"))
    chart.y_ticks = [(round(top + chart.plot_h - v * sy, 1), f"{v:g}") for v in _ticks(ymax)]
    every = max(1, math.ceil(n / 6))
    fmt = "%d %b %H:%M" if step < timedelta(days=1) else "%d %b"
    chart.x_ticks = [(round(left + i * bw, 1), (start + i * step).astimezone(LOCAL_TZ).strftime(fmt)) for i in range(0, n, every)]
    return chart


def _expected_at(report: IncidentReport, t: datetime, step: timedelta) -> float | None:
    """The alert baseline nearest in time, scaled from its window to the display bucket."""
    if not report.alerts:
        return None
    alert = min(report.alerts, key=lambda a: abs((a.window_end - t).total_seconds()))
    window = alert.window_end - alert.window_start
    if window <= timedelta(0):
        return None
    return alert.expected * (step / window)


def _nice_ceiling(v: float) -> float:
    for n in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000):
        if v <= n:
            return float(n)
    return float(math.ceil(v / 1000) * 1000)


def _ticks(ymax: float) -> list[float]:
    step = ymax / 5 if ymax >= 5 else 1
    return [round(i * step, 2) for i in range(int(ymax / step) + 1)]


def _duration(step: timedelta) -> str:
    minutes = int(step.total_seconds() // 60)
    return f"{minutes} min" if minutes < 60 else (f"{minutes // 60} h" if minutes < 1440 else "1 day")


# --- list filters --------------------------------------------------------------------------------


@dataclass
class Filters:
    hazard: str = ""
    kecamatan: str = ""
    village: str = ""
    road: str = ""
    state: str = ""
    date_from: str = ""
    date_to: str = ""

    def query(self, **extra: str) -> str:
        params = {k: v for k, v in {**self.__dict__, **extra}.items() if v}
        return urlencode(params)


def _period(filters: Filters) -> tuple[datetime | None, datetime | None]:
    try:
        start = exports.parse_day(filters.date_from) if filters.date_from else None
        end = exports.parse_day(filters.date_to, end=True) if filters.date_to else None
    except Exception as exc:  # argparse.ArgumentTypeError carries the readable message
        raise HTTPException(status_code=400, detail=str(exc)) from exc
    if start and end and end <= start:
        raise HTTPException(status_code=400, detail="date 'to' is before 'from'")
    return start, end


def filtered_incidents(session: Any, filters: Filters) -> list[Incident]:
    start, end = _period(filters)
    stmt = select(Incident)
    if filters.hazard:
        stmt = stmt.where(Incident.hazard == filters.hazard)
    if filters.kecamatan:
        stmt = stmt.where(func.lower(Incident.district) == filters.kecamatan.lower())
    if filters.village:
        stmt = stmt.where(func.lower(Incident.village).contains(filters.village.lower(), autoescape=True))
    if filters.road:
        stmt = stmt.where(func.lower(Incident.road).contains(filters.road.lower(), autoescape=True))
    if filters.state:
        stmt = stmt.where(Incident.state == filters.state)
    if end is not None:
        stmt = stmt.where(Incident.opened_at < end)
    if start is not None:
        stmt = stmt.where((Incident.last_activity_at >= start) | (Incident.closed_at >= start))
    return list(session.scalars(stmt.order_by(Incident.opened_at.desc(), Incident.id.desc())))


def weekly_counts(incidents: list[Incident], max_weeks: int = 12) -> tuple[list[str], list[tuple[str, list[int], int]]]:
    """Incidents opened per hazard per ISO week (WITA), the latest `max_weeks` weeks that have any."""
    per: dict[str, dict[str, int]] = {}
    weeks: set[str] = set()
    for inc in incidents:
        local = inc.opened_at.astimezone(LOCAL_TZ)
        monday = (local - timedelta(days=local.weekday())).strftime("%Y-%m-%d")
        weeks.add(monday)
        per.setdefault(inc.hazard, {}).setdefault(monday, 0)
        per[inc.hazard][monday] += 1
    cols = sorted(weeks)[-max_weeks:]
    rows = [(h, [per[h].get(w, 0) for w in cols], sum(per[h].values())) for h in sorted(per)]
    return cols, rows


@dataclass(frozen=True)
class Placement:
    """How much of what came in could be placed: managers need to know what the map misses."""

    total: int
    in_region: int
    elsewhere: int
    unplaced: int
    untagged: int


def placement_counts(session: Any, start: datetime | None, end: datetime | None) -> Placement:
    """Posts of the period by where the geotagger put them: in Buleleng, only elsewhere, nowhere
    (no place found at all), or not tagged yet."""
    period = []
    if start is not None:
        period.append(Post.created_at >= start)
    if end is not None:
        period.append(Post.created_at < end)
    has_place = select(Geotag.post_id).where(Geotag.post_id == Post.id).exists()
    rows = session.execute(
        select(Post.tagged_at.is_(None), Post.in_region, has_place, func.count()).where(*period).group_by(
            Post.tagged_at.is_(None), Post.in_region, has_place
        )
    ).all()
    counts = {"in_region": 0, "elsewhere": 0, "unplaced": 0, "untagged": 0}
    for untagged, in_region, placed, n in rows:
        key = "untagged" if untagged else "in_region" if in_region else "elsewhere" if placed else "unplaced"
        counts[key] += n
    return Placement(total=sum(counts.values()), **counts)


# --- the app -------------------------------------------------------------------------------------


def create_app(db_url: str | None = None, require_airflow_auth: bool = False) -> FastAPI:
    """The pages. `db_url=None` reads `settings.database_url()` per request, so importing the
    plugin never touches a database. `require_airflow_auth` adds Airflow's login check to every
    route (only possible inside an Airflow installation)."""
    dependencies = []
    if require_airflow_auth:
        from fastapi import Depends
        from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
        from airflow.api_fastapi.core_api.security import requires_access_view

        dependencies.append(Depends(requires_access_view(AccessView.WEBSITE)))
    app = FastAPI(title="Siaga incidents", dependencies=dependencies, docs_url=None, redoc_url=None, openapi_url=None)
    env = _environment()

    def base(request: Request) -> str:
        return request.scope.get("root_path", "").rstrip("/")

    def page(name: str, request: Request, **context: Any) -> HTMLResponse:
        html = env.get_template(name).render(base=base(request), labels=exports.hazard_labels(), **context)
        return HTMLResponse(html, headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'self'"})

    @app.get("/", response_class=HTMLResponse)
    def incident_list(
        request: Request,
        hazard: str = "", kecamatan: str = "", village: str = "", road: str = "", state: str = "",
        date_from: str = Query("", alias="from"), date_to: str = Query("", alias="to"),
    ) -> HTMLResponse:
        filters = Filters(hazard, kecamatan, village, road, state, date_from, date_to)
        with session_scope(db_url) as session:
            incidents = filtered_incidents(session, filters)
            placement = placement_counts(session, *_period(filters))
            session.expunge_all()
        weeks, rows = weekly_counts(incidents)
        geo = load_geodata()
        return page(
            "list.html", request, incidents=incidents, filters=filters, weeks=weeks, week_rows=rows, placement=placement,
            districts=sorted(d.name for d in geo.districts.values()), states=STATES,
        )

    @app.get("/incidents/{incident_id}", response_class=HTMLResponse)
    def incident_page(request: Request, incident_id: int) -> HTMLResponse:
        geo = load_geodata()
        with session_scope(db_url) as session:
            report = exports.read_report(session, incident_id, geo)
            if report is None:
                raise HTTPException(status_code=404, detail=f"no incident {incident_id}")
            session.expunge_all()
        return page("incident.html", request, r=report, inc=report.incident, map=build_map(report, geo), chart=build_chart(report))

    @app.get("/incidents/{incident_id}/export")
    def incident_export(incident_id: int, format: str = "csv") -> Response:
        with session_scope(db_url) as session:
            reports = exports.reports_for(session, incident_id)
            if not reports:
                raise HTTPException(status_code=404, detail=f"no incident {incident_id}")
            return _download(format, reports, f"siaga-incident-{incident_id}")

    @app.get("/export")
    def period_export(request: Request, format: str = "csv", date_from: str = Query("", alias="from"), date_to: str = Query("", alias="to"),
                      hazard: str = "", kecamatan: str = "", village: str = "", road: str = "", state: str = "") -> Response:
        filters = Filters(hazard, kecamatan, village, road, state, date_from, date_to)
        with session_scope(db_url) as session:
            geo = load_geodata()
            reports = [r for inc in reversed(filtered_incidents(session, filters)) if (r := exports.read_report(session, inc.id, geo))]
            return _download(format, reports, "siaga-incidents")

    @app.get("/cap.atom")
    def cap_feed(request: Request) -> Response:
        """Open incidents as an Atom feed of CAP 1.2 alerts."""
        root = str(request.base_url).rstrip("/")
        with session_scope(db_url) as session:
            reports = exports.reports_for(session, states=LIVE_STATES)
            xml = exports.cap_feed(reports, link_for=lambda i: f"{root}/incidents/{i}/cap.xml")
        return Response(xml, media_type="application/atom+xml; charset=utf-8")

    @app.get("/incidents/{incident_id}/cap.xml")
    def cap_alert(request: Request, incident_id: int) -> Response:
        root = str(request.base_url).rstrip("/")
        with session_scope(db_url) as session:
            reports = exports.reports_for(session, incident_id)
            if not reports:
                raise HTTPException(status_code=404, detail=f"no incident {incident_id}")
            xml = exports.cap_xml(reports[0], web=f"{root}/incidents/{incident_id}")
        return Response(xml, media_type="application/cap+xml; charset=utf-8")

    return app


EXPORT_TYPES = {"csv": ("text/csv", "csv"), "timeline-csv": ("text/csv", "timeline.csv"),
                "geojson": ("application/geo+json", "geojson"), "cap": ("application/cap+xml", "cap.xml")}


def _download(fmt: str, reports: list[IncidentReport], stem: str) -> Response:
    if fmt not in EXPORT_TYPES:
        raise HTTPException(status_code=400, detail=f"unknown format {fmt!r}; use one of {', '.join(EXPORT_TYPES)}")
    media, ext = EXPORT_TYPES[fmt]
    return Response(exports.render(fmt, reports), media_type=f"{media}; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{stem}.{ext}"'})
