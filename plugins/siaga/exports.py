"""What a manager takes away from Siaga: one incident or a period as CSV, GeoJSON and CAP 1.2.

The same reading of the database feeds the web pages (`siaga.web`) and these exports, so a map on
screen and the polygon in a CAP alert come from one place: the project's own gazetteer polygons,
never a tile server, so everything works offline.

CAP is written with the standard library's ElementTree (lxml is not part of the environment);
element order follows the CAP 1.2 specification, which the XML schema enforces as a sequence.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable
from xml.etree import ElementTree as ET

import yaml
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from siaga import settings
from siaga.store import Alert, AreaCount, Geotag, Incident, IncidentEvent, IncidentThread, OutboxMessage, Post, session_scope
from siaga.vocabulary import LIVE_STATES, LOCAL_TZ, REGENCY_CODE

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS = "http://www.w3.org/2005/Atom"
CAP_SENDER = "siaga@bpbd.bulelengkab.go.id"

# Siaga severity -> CAP <severity>; CAP has four real levels, so the mapping is one to one.
CAP_SEVERITY = {"low": "Minor", "medium": "Moderate", "high": "Severe", "critical": "Extreme"}
# Hazard -> CAP <category> (CAP 1.2 section 3.2.2 list).
CAP_CATEGORY = {
    "flood": "Met", "tidal_flood": "Met", "strong_wind": "Met", "high_waves": "Met", "drought": "Met",
    "earthquake": "Geo", "tsunami": "Geo", "landslide": "Geo", "volcanic_eruption": "Geo",
    "fire": "Fire", "fallen_tree": "Safety",
    "traffic_accident": "Transport", "traffic_jam": "Transport", "road_closure": "Transport",
    "road_damage": "Infra",
}


# --- the gazetteer polygons ------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    code: str
    name: str
    district: str
    geometry: BaseGeometry


@dataclass(frozen=True)
class Geodata:
    villages: dict[str, Place]
    districts: dict[str, Place]
    road_villages: dict[str, tuple[str, ...]]  # road id -> village codes it passes through

    def district_by_name(self, name: str | None) -> Place | None:
        for d in self.districts.values():
            if name and d.name.lower() == name.lower():
                return d
        return None


def _read_places(path: Path, district_field: str | None) -> dict[str, Place]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read GeoJSON: {exc}") from exc
    out = {}
    for i, feat in enumerate(data.get("features") or []):
        props = feat.get("properties") or {}
        if not props.get("code_kemendagri") or not props.get("name"):
            raise ValueError(f"{path}: feature {i}: missing 'name' or 'code_kemendagri'")
        district = props.get(district_field, "") if district_field else props["name"]
        out[props["code_kemendagri"]] = Place(props["code_kemendagri"], props["name"], district, shape(feat["geometry"]))
    return out


def _key(name: str) -> str:
    return re.sub(r"[^a-z]", "", name.lower())


def _road_villages(path: Path, villages: dict[str, Place]) -> dict[str, tuple[str, ...]]:
    """Village codes per road of roads.yaml. Read here rather than through siaga.gazetteer,
    whose loader builds the whole name index; an unknown village name is skipped, not fatal,
    because the map only needs the villages it can draw."""
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    by_key: dict[str, list[Place]] = {}
    for v in villages.values():
        by_key.setdefault(_key(v.name), []).append(v)
    out = {}
    for item in data.get("roads") or []:
        codes = []
        for ref in item.get("villages") or []:
            m = re.match(r"^([^()]+?)\s*(?:\(([^)]+)\))?$", str(ref))
            if not m:
                continue
            found = [v for v in by_key.get(_key(m[1]), []) if not m[2] or v.district == m[2]]
            if len(found) == 1:
                codes.append(found[0].code)
        out[str(item.get("id"))] = tuple(codes)
    return out


@lru_cache(maxsize=2)
def load_geodata(directory: Path | None = None) -> Geodata:
    directory = directory or settings.geodata_dir()
    villages = _read_places(directory / "buleleng_villages.geojson", "kecamatan")
    districts = _read_places(directory / "buleleng_districts.geojson", None)
    return Geodata(villages, districts, _road_villages(directory / "roads.yaml", villages))


# --- reading one incident --------------------------------------------------------------------


@dataclass
class EvidencePost:
    id: int
    created_at: datetime
    source: str
    author: str | None
    text: str
    url: str | None
    lon: float | None
    lat: float | None
    places: list[str] = field(default_factory=list)


@dataclass
class IncidentReport:
    """Everything known about one incident, read in one session and detached from it."""

    incident: Incident
    events: list[IncidentEvent]
    alerts: list[Alert]
    posts: list[EvidencePost]
    outbox: list[OutboxMessage]
    threads: list[IncidentThread]
    counts: list[tuple[datetime, int]]  # posts per bucket of the incident's series (AreaCount)
    village_codes: list[str]  # affected villages, drawn on the map and sent as CAP polygons
    district_codes: list[str]  # affected kecamatan when the incident is not about villages


def evidence_post_ids(events: Iterable[IncidentEvent], alerts: Iterable[Alert]) -> list[int]:
    """Post ids named by the alerts' explanations and the timeline, oldest mention first."""
    seen: dict[int, None] = {}
    for detail in [a.explanation or {} for a in alerts] + [e.detail or {} for e in events]:
        for pid in detail.get("post_ids") or []:
            if isinstance(pid, int) or (isinstance(pid, str) and pid.isdigit()):
                seen.setdefault(int(pid), None)
    return list(seen)


def read_report(session: Session, incident_id: int, geodata: Geodata | None = None) -> IncidentReport | None:
    incident = session.get(Incident, incident_id)
    if incident is None:
        return None
    events = list(session.scalars(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id).order_by(IncidentEvent.at, IncidentEvent.id)))
    alerts = list(session.scalars(select(Alert).where(Alert.incident_id == incident_id).order_by(Alert.window_end, Alert.id)))
    post_ids = evidence_post_ids(events, alerts)
    posts = _evidence(session, post_ids)
    outbox = list(session.scalars(select(OutboxMessage).where(OutboxMessage.incident_id == incident_id).order_by(OutboxMessage.created_at, OutboxMessage.id)))
    threads = list(session.scalars(select(IncidentThread).where(IncidentThread.incident_id == incident_id)))
    counts = [
        (row.bucket_start, row.posts)
        for row in session.scalars(
            select(AreaCount)
            .where(AreaCount.hazard == incident.hazard, AreaCount.level == incident.level, AreaCount.area_code == incident.area_code)
            .where(AreaCount.bucket_start >= incident.opened_at - timedelta(days=1))
            .where(AreaCount.bucket_start <= (incident.closed_at or incident.last_activity_at) + timedelta(hours=6))
            .order_by(AreaCount.bucket_start)
        )
    ]
    villages, districts = affected_areas(incident, posts, session, post_ids, geodata or load_geodata())
    return IncidentReport(incident, events, alerts, posts, outbox, threads, counts, villages, districts)


def _evidence(session: Session, post_ids: list[int]) -> list[EvidencePost]:
    if not post_ids:
        return []
    tags: dict[int, list[Geotag]] = {}
    for tag in session.scalars(select(Geotag).where(Geotag.post_id.in_(post_ids))):
        tags.setdefault(tag.post_id, []).append(tag)
    out = []
    for post in session.scalars(select(Post).where(Post.id.in_(post_ids)).order_by(Post.created_at, Post.id)):
        lon, lat = post.lon, post.lat
        best = max(tags.get(post.id, []), key=lambda t: t.confidence, default=None)
        if (lon is None or lat is None) and best is not None and best.lon is not None and best.lat is not None:
            lon, lat = best.lon, best.lat
        places = sorted({t.name for t in tags.get(post.id, []) if t.in_region})
        out.append(EvidencePost(post.id, post.created_at, post.source, post.author, post.text, post.url, lon, lat, places))
    return out


def affected_areas(incident: Incident, posts: list[EvidencePost], session: Session, post_ids: list[int], geo: Geodata) -> tuple[list[str], list[str]]:
    """Villages (and kecamatan) the incident is about: its own area, the road's villages, and the
    villages its evidence posts were placed in."""
    villages: dict[str, None] = {}
    districts: dict[str, None] = {}
    if incident.level == "village" and incident.area_code in geo.villages:
        villages[incident.area_code] = None
    elif incident.level == "road":
        for code in geo.road_villages.get(incident.area_code, ()):
            villages[code] = None
    elif incident.level == "district":
        code = incident.area_code if incident.area_code in geo.districts else None
        place = geo.districts.get(code) if code else geo.district_by_name(incident.district)
        if place:
            districts[place.code] = None
    elif incident.level == "regency":
        districts.update(dict.fromkeys(geo.districts))
    if post_ids:
        for code in session.scalars(select(Geotag.code).where(Geotag.post_id.in_(post_ids), Geotag.in_region.is_(True))):
            if code in geo.villages and (incident.level != "village" or not villages):
                villages.setdefault(code, None)
    if not villages and not districts:
        if incident.village:
            villages.update({v.code: None for v in geo.villages.values() if v.name == incident.village and (not incident.district or v.district == incident.district)})
        if not villages and (place := geo.district_by_name(incident.district)):
            districts[place.code] = None
    return list(villages), list(districts)


def area_geometry(report: IncidentReport, geo: Geodata | None = None) -> BaseGeometry | None:
    geo = geo or load_geodata()
    parts = [geo.villages[c].geometry for c in report.village_codes] + [geo.districts[c].geometry for c in report.district_codes]
    return unary_union(parts) if parts else None


def incidents_in(session: Session, start: datetime | None, end: datetime | None, states: Iterable[str] | None = None) -> list[Incident]:
    """Incidents alive at some moment in [start, end): opened before the end, active after the start."""
    stmt = select(Incident)
    if end is not None:
        stmt = stmt.where(Incident.opened_at < end)
    if start is not None:
        stmt = stmt.where(or_(Incident.last_activity_at >= start, Incident.closed_at >= start))
    if states:
        stmt = stmt.where(Incident.state.in_(list(states)))
    return list(session.scalars(stmt.order_by(Incident.opened_at, Incident.id)))


# --- CSV -------------------------------------------------------------------------------------

CSV_COLUMNS = [
    "incident_id", "hazard", "level", "area_code", "area_name", "village", "kecamatan", "road", "state",
    "severity", "posts", "authors", "opened_at", "last_activity_at", "closed_at", "first_delivered_at",
    "channels", "acknowledged_at", "acknowledged_by", "alerts", "lon", "lat",
]
TIMELINE_COLUMNS = ["incident_id", "hazard", "area_name", "at", "kind", "actor", "detail"]


def _iso(value: datetime | None) -> str:
    return value.astimezone(timezone.utc).isoformat() if value else ""


def incident_row(report: IncidentReport) -> dict[str, Any]:
    inc = report.incident
    delivered = [e for e in report.events if e.kind == "delivered"]
    acks = [e for e in report.events if e.kind in ("acknowledged", "ack")]
    return {
        "incident_id": inc.id, "hazard": inc.hazard, "level": inc.level, "area_code": inc.area_code,
        "area_name": inc.area_name, "village": inc.village or "", "kecamatan": inc.district or "",
        "road": inc.road or "", "state": inc.state, "severity": inc.severity, "posts": inc.posts,
        "authors": inc.authors, "opened_at": _iso(inc.opened_at), "last_activity_at": _iso(inc.last_activity_at),
        "closed_at": _iso(inc.closed_at), "first_delivered_at": _iso(delivered[0].at) if delivered else "",
        "channels": " ".join(sorted({str((e.detail or {}).get("channel", "")) for e in delivered} - {""})),
        "acknowledged_at": _iso(acks[0].at) if acks else "", "acknowledged_by": acks[0].actor if acks else "",
        "alerts": len(report.alerts), "lon": inc.lon if inc.lon is not None else "", "lat": inc.lat if inc.lat is not None else "",
    }


def _csv_safe(value: Any) -> Any:
    """Spreadsheets run a cell starting with = + - @ as a formula; post-derived text is hostile."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_csv(reports: list[IncidentReport]) -> str:
    """One row per incident: what happened, where, and who was told when."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for report in reports:
        writer.writerow({k: _csv_safe(v) for k, v in incident_row(report).items()})
    return buf.getvalue()


def to_timeline_csv(reports: list[IncidentReport]) -> str:
    """One row per timeline event, for reading an incident's story line by line."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=TIMELINE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for report in reports:
        inc = report.incident
        for e in report.events:
            writer.writerow({k: _csv_safe(v) for k, v in {
                "incident_id": inc.id, "hazard": inc.hazard, "area_name": inc.area_name, "at": _iso(e.at),
                "kind": e.kind, "actor": e.actor, "detail": json.dumps(e.detail or {}, ensure_ascii=False, sort_keys=True),
            }.items()})
    return buf.getvalue()


# --- GeoJSON ---------------------------------------------------------------------------------


def to_geojson(reports: list[IncidentReport], with_evidence: bool = True) -> dict[str, Any]:
    """Each incident as its area's polygon (or its point when no polygon is known), and its
    evidence posts as points."""
    features = []
    geo = load_geodata()
    for report in reports:
        inc = report.incident
        area = area_geometry(report, geo)
        if area is not None and not area.is_empty:
            geometry = mapping(area.simplify(0.0003, preserve_topology=True))
        elif inc.lon is not None and inc.lat is not None:
            geometry = {"type": "Point", "coordinates": [inc.lon, inc.lat]}
        else:
            geometry = None
        props = {k: v for k, v in incident_row(report).items() if k not in ("lon", "lat")}
        props["feature"] = "incident"
        props["villages"] = [geo.villages[c].name for c in report.village_codes]
        features.append({"type": "Feature", "id": f"incident-{inc.id}", "geometry": geometry, "properties": props})
        if not with_evidence:
            continue
        for post in report.posts:
            if post.lon is None or post.lat is None:
                continue
            features.append({
                "type": "Feature", "id": f"post-{post.id}",
                "geometry": {"type": "Point", "coordinates": [post.lon, post.lat]},
                "properties": {"feature": "evidence", "incident_id": inc.id, "post_id": post.id, "source": post.source,
                               "created_at": _iso(post.created_at), "text": post.text, "url": post.url, "places": post.places},
            })
    return {"type": "FeatureCollection", "features": features}


# --- CAP 1.2 ---------------------------------------------------------------------------------


def cap_time(value: datetime) -> str:
    """CAP 1.2 dateTime: seconds precision with an explicit offset; "Z" is not allowed."""
    return value.astimezone(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def cap_identifier(incident: Incident, sent: datetime) -> str:
    """Unique per message, as CAP requires: the incident and the moment of this version."""
    return f"siaga-buleleng-incident-{incident.id}-{sent.astimezone(timezone.utc):%Y%m%dT%H%M%S}"


def cap_polygons(area: BaseGeometry | None, max_points: int = 400) -> list[str]:
    """CAP polygons: "lat,lon" pairs, closed, four points at least, one per outer ring. Rings are
    simplified until small enough for an alerting receiver (CAP gives no limit; receivers do)."""
    if area is None or area.is_empty:
        return []
    polys = list(getattr(area, "geoms", [area]))
    out = []
    for poly in polys:
        if poly.geom_type != "Polygon":
            continue
        ring = poly.exterior
        tolerance = 0.0002
        while len(ring.coords) > max_points:
            ring = poly.simplify(tolerance, preserve_topology=True).exterior
            tolerance *= 2
        coords = list(ring.coords)
        if len(coords) < 4:
            continue
        if coords[0] != coords[-1]:
            coords.append(coords[0])
        out.append(" ".join(f"{lat:.5f},{lon:.5f}" for lon, lat in coords))
    return out


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    el = ET.SubElement(parent, f"{{{CAP_NS}}}{tag}")
    if text is not None:
        el.text = text
    return el


def cap_alert(report: IncidentReport, labels: dict[str, tuple[str, str]] | None = None, web: str | None = None, now: datetime | None = None) -> ET.Element:
    """One CAP 1.2 alert for an incident: an Indonesian and an English info block over the same
    area polygons. Elements appear in the order the CAP 1.2 schema's sequences demand."""
    inc = report.incident
    labels = labels or hazard_labels()
    label_id, label_en = labels.get(inc.hazard, (inc.hazard, inc.hazard))
    sent = now or max([inc.last_activity_at] + [e.at for e in report.events])
    alert = ET.Element(f"{{{CAP_NS}}}alert")
    _sub(alert, "identifier", cap_identifier(inc, sent))
    _sub(alert, "sender", CAP_SENDER)
    _sub(alert, "sent", cap_time(sent))
    _sub(alert, "status", "Actual")
    # Always "Alert": Update/Cancel would need <references> to earlier messages we never kept.
    _sub(alert, "msgType", "Alert")
    _sub(alert, "source", "Siaga social media monitoring")
    _sub(alert, "scope", "Public")
    _sub(alert, "note", "Derived automatically from public social media posts; not verified on the ground.")
    area = area_geometry(report)
    place = inc.area_name + (f", Kec. {inc.district}" if inc.district and inc.district != inc.area_name else "")
    for lang, label, headline, desc in (
        ("id-ID", label_id, f"{label_id} di {place}, Kabupaten Buleleng",
         f"{inc.posts} unggahan dari {inc.authors} akun melaporkan {label_id.lower()} di {place} sejak {cap_time(inc.opened_at)}."),
        ("en-US", label_en, f"{label_en} in {place}, Buleleng regency",
         f"{inc.posts} posts from {inc.authors} accounts report {label_en.lower()} in {place} since {cap_time(inc.opened_at)}."),
    ):
        info = _sub(alert, "info")
        _sub(info, "language", lang)
        _sub(info, "category", CAP_CATEGORY.get(inc.hazard, "Other"))
        _sub(info, "event", label)
        _sub(info, "urgency", "Immediate" if inc.state in LIVE_STATES else "Past")
        _sub(info, "severity", CAP_SEVERITY.get(inc.severity, "Unknown"))
        _sub(info, "certainty", "Observed" if inc.posts >= 3 and inc.authors >= 2 else "Possible")
        code = _sub(info, "eventCode")
        _sub(code, "valueName", "siaga:hazard")
        _sub(code, "value", inc.hazard)
        _sub(info, "effective", cap_time(inc.opened_at))
        _sub(info, "onset", cap_time(inc.opened_at))
        _sub(info, "expires", cap_time(max(sent, inc.last_activity_at) + timedelta(hours=6)))
        _sub(info, "senderName", "BPBD Kabupaten Buleleng (Siaga)")
        _sub(info, "headline", headline[:160])
        _sub(info, "description", desc)
        if web:
            _sub(info, "web", web)
        param = _sub(info, "parameter")
        _sub(param, "valueName", "siaga:state")
        _sub(param, "value", inc.state)
        area_el = _sub(info, "area")
        _sub(area_el, "areaDesc", f"{place}, Buleleng, Bali")
        for polygon in cap_polygons(area):
            _sub(area_el, "polygon", polygon)
        if not list(area_el.iter(f"{{{CAP_NS}}}polygon")) and inc.lat is not None and inc.lon is not None:
            _sub(area_el, "circle", f"{inc.lat:.5f},{inc.lon:.5f} 1.0")
        geocode = _sub(area_el, "geocode")
        _sub(geocode, "valueName", "kemendagri")
        _sub(geocode, "value", inc.area_code if inc.level in ("village", "district", "regency") else REGENCY_CODE)
    return alert


def _xml(element: ET.Element) -> str:
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(element, encoding="unicode", default_namespace=CAP_NS)


def cap_xml(report: IncidentReport, web: str | None = None) -> str:
    return _xml(cap_alert(report, web=web))


def cap_feed(reports: list[IncidentReport], link_for: Any = None, now: datetime | None = None) -> str:
    """An Atom feed with one entry per incident, each carrying its full CAP alert as content
    (and a link to the standalone alert when `link_for(incident_id)` gives one), the shape
    public alert aggregators read."""
    # Prefixed, not default, namespaces: ElementTree cannot write a default namespace next to
    # the unqualified attributes Atom uses (rel, href).
    ET.register_namespace("atom", ATOM_NS)
    ET.register_namespace("cap", CAP_NS)
    now = now or datetime.now(timezone.utc)
    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    ET.SubElement(feed, f"{{{ATOM_NS}}}id").text = "urn:siaga:buleleng:cap-feed"
    ET.SubElement(feed, f"{{{ATOM_NS}}}title").text = "Siaga Buleleng: open incidents (CAP 1.2)"
    ET.SubElement(feed, f"{{{ATOM_NS}}}updated").text = cap_time(now)
    author = ET.SubElement(feed, f"{{{ATOM_NS}}}author")
    ET.SubElement(author, f"{{{ATOM_NS}}}name").text = "BPBD Kabupaten Buleleng (Siaga)"
    labels = hazard_labels()
    for report in reports:
        inc = report.incident
        entry = ET.SubElement(feed, f"{{{ATOM_NS}}}entry")
        ET.SubElement(entry, f"{{{ATOM_NS}}}id").text = f"urn:siaga:buleleng:incident:{inc.id}"
        ET.SubElement(entry, f"{{{ATOM_NS}}}title").text = f"{labels.get(inc.hazard, (inc.hazard,))[0]}: {inc.area_name} ({inc.severity})"
        ET.SubElement(entry, f"{{{ATOM_NS}}}updated").text = cap_time(inc.last_activity_at)
        if link_for is not None:
            ET.SubElement(entry, f"{{{ATOM_NS}}}link", {"rel": "alternate", "type": "application/cap+xml", "href": link_for(inc.id)})
        content = ET.SubElement(entry, f"{{{ATOM_NS}}}content", {"type": "application/cap+xml"})
        content.append(cap_alert(report, labels))
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(feed, encoding="unicode")


@lru_cache(maxsize=1)
def hazard_labels() -> dict[str, tuple[str, str]]:
    """Hazard id -> (Indonesian label, English label); empty when the lists cannot load, so an
    export never fails on a config error (the ids stand in)."""
    try:
        from siaga.hazards import HazardSet, default_hazard_dir

        hs = HazardSet.load(default_hazard_dir())
    except Exception:  # an invalid hazard config is reported by its own checks, not here
        return {}
    return {k: (h.label_id, h.label_en) for k, h in hs.hazards.items()}


# --- reading many, and the command line --------------------------------------------------------


def reports_for(session: Session, incident_id: int | None = None, start: datetime | None = None,
                end: datetime | None = None, states: Iterable[str] | None = None) -> list[IncidentReport]:
    geo = load_geodata()
    if incident_id is not None:
        one = read_report(session, incident_id, geo)
        return [one] if one else []
    return [r for inc in incidents_in(session, start, end, states) if (r := read_report(session, inc.id, geo))]


def render(fmt: str, reports: list[IncidentReport]) -> str:
    if fmt == "csv":
        return to_csv(reports)
    if fmt == "timeline-csv":
        return to_timeline_csv(reports)
    if fmt == "geojson":
        return json.dumps(to_geojson(reports), ensure_ascii=False, indent=1)
    if fmt == "cap":
        if len(reports) == 1:
            return cap_xml(reports[0])
        return cap_feed(reports)
    raise ValueError(f"unknown export format {fmt!r}")


def parse_day(value: str, end: bool = False) -> datetime:
    """A date (a whole WITA day; the end date is included) or an ISO timestamp (UTC if no offset)."""
    try:
        if len(value) == 10:
            d = date.fromisoformat(value)
            return datetime.combine(d + timedelta(days=1) if end else d, time(), tzinfo=LOCAL_TZ)
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"bad date {value!r}: use YYYY-MM-DD or an ISO timestamp") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def export_main(argv: list[str]) -> int:
    """`siaga export`: one incident or a period, to a file or stdout. A CAP export of a period
    holds only the incidents still open, as a CAP feed does."""
    parser = argparse.ArgumentParser(prog="siaga export", description="Export incidents as CSV, GeoJSON or CAP 1.2")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--incident", type=int, help="one incident id")
    which.add_argument("--from", dest="start", type=parse_day, help="period start (YYYY-MM-DD, WITA)")
    parser.add_argument("--to", dest="end", type=lambda v: parse_day(v, end=True), help="period end, included (YYYY-MM-DD, WITA)")
    parser.add_argument("--format", choices=["csv", "timeline-csv", "geojson", "cap"], default="csv")
    parser.add_argument("--out", default="-", help="file path, or - for stdout")
    parser.add_argument("--db", default=None, help="database URL (default: SIAGA_DB_URL / settings)")
    args = parser.parse_args(argv)
    if args.start is not None and args.end is None:
        parser.error("--from needs --to")
    if args.end is not None and args.start is not None and args.end <= args.start:
        parser.error("--to is before --from")
    with session_scope(args.db) as session:
        states = LIVE_STATES if (args.format == "cap" and args.incident is None) else None
        reports = reports_for(session, args.incident, args.start, args.end, states)
        if args.incident is not None and not reports:
            print(f"siaga export: no incident with id {args.incident}", file=sys.stderr)
            return 2
        text = render(args.format, reports)
    if args.out == "-":
        sys.stdout.write(text)
    else:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {len(reports)} incident(s) to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(export_main(sys.argv[1:]))
