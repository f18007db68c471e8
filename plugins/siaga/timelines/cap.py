"""Incidents as CAP 1.2 (OASIS Common Alerting Protocol): one alert per incident, and an Atom
feed of alerts, the shape public alert aggregators read.

Written with the standard library's ElementTree (lxml is not part of the environment). Element
order follows the CAP 1.2 specification, which the XML schema enforces as a sequence. What CAP
calls each hazard (`<category>`) comes from the hazard's own definition, so a new hazard's YAML
exports correctly without a code change.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Callable, Mapping
from xml.etree import ElementTree as ET

from shapely.geometry.base import BaseGeometry

from siaga.hazard_config import Hazard
from siaga.store import Incident
from siaga.timelines.places import Places
from siaga.timelines.report import IncidentReport
from siaga.catalogue import say_in, wita
from siaga.vocabulary import LIVE_STATES, REGENCY_CODE, local_iso

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS = "http://www.w3.org/2005/Atom"
CAP_SENDER = "siaga@bpbd.bulelengkab.go.id"

# Siaga severity -> CAP <severity>; CAP has four real levels, so the mapping is one to one.
CAP_SEVERITY = {"low": "Minor", "medium": "Moderate", "high": "Severe", "critical": "Extreme"}


def cap_category(hazard: Hazard | None) -> str:
    """CAP 1.2 <category> (section 3.2.2) from the hazard's definition; "Other" for a hazard no
    list in force defines any more."""
    if hazard is None:
        return "Other"
    return hazard.cap_category


def cap_time(value: datetime) -> str:
    """CAP 1.2 dateTime: seconds precision with an explicit offset ("Z" is not allowed), in
    WITA like every time Siaga writes: 2026-01-15T08:25:00+08:00."""
    return local_iso(value)


def cap_identifier(incident: Incident, sent: datetime) -> str:
    """Unique per message, as CAP requires: the incident and the moment of this version."""
    return f"siaga-buleleng-incident-{incident.id}-{sent.astimezone(timezone.utc):%Y%m%dT%H%M%S}"


def cap_polygons(area: BaseGeometry | None, max_points: int = 400) -> list[str]:
    """CAP polygons: "lat,lon" pairs, closed, four points at least, one per outer ring. Rings are
    simplified until small enough for an alerting receiver (CAP gives no limit; receivers do)."""
    if area is None or area.is_empty:
        return []
    out = []
    for poly in getattr(area, "geoms", [area]):
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


def cap_alert(report: IncidentReport, hazards: Mapping[str, Hazard], places: Places,
              web: str | None = None, now: datetime | None = None) -> ET.Element:
    """One CAP 1.2 alert for an incident: an Indonesian and an English info block over the same
    area polygons (a circle around the incident's point when no polygon is known). `sent` is
    `now`, else the incident's latest activity or event. Always msgType "Alert": Update and
    Cancel would need <references> to earlier messages, which are not kept."""
    inc = report.incident
    hazard = hazards.get(inc.hazard)
    label_id, label_en = (hazard.label_id, hazard.label_en) if hazard else (inc.hazard, inc.hazard)
    sent = now or max([inc.last_activity_at] + [e.at for e in report.events])
    alert = ET.Element(f"{{{CAP_NS}}}alert")
    _sub(alert, "identifier", cap_identifier(inc, sent))
    _sub(alert, "sender", CAP_SENDER)
    _sub(alert, "sent", cap_time(sent))
    _sub(alert, "status", "Actual")
    _sub(alert, "msgType", "Alert")
    _sub(alert, "source", "Siaga social media monitoring")
    _sub(alert, "scope", "Public")
    _sub(alert, "note", "Derived automatically from public social media posts; not verified on the ground.")
    area = places.area(report.village_codes, report.district_codes)
    place = inc.area_name + (f", Kec. {inc.district}" if inc.district and inc.district != inc.area_name else "")
    texts = []
    for lang, cap_lang, label in (("id", "id-ID", label_id), ("en", "en-US", label_en)):
        headline = say_in(lang, "cap.headline", hazard=label, place=place)
        desc = say_in(lang, "cap.description", posts=report.post_count, authors=report.author_count, hazard=label.lower(),
                      place=place, since=wita(inc.opened_at, lang=lang))
        texts.append((cap_lang, label, headline, desc))
    for lang, label, headline, desc in texts:
        info = _sub(alert, "info")
        _sub(info, "language", lang)
        _sub(info, "category", cap_category(hazard))
        _sub(info, "event", label)
        _sub(info, "urgency", "Immediate" if inc.state in LIVE_STATES else "Past")
        _sub(info, "severity", CAP_SEVERITY.get(inc.severity, "Unknown"))
        _sub(info, "certainty", "Observed" if report.post_count >= 3 and report.author_count >= 2 else "Possible")
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


def cap_xml(report: IncidentReport, hazards: Mapping[str, Hazard], places: Places, web: str | None = None) -> str:
    """One incident's CAP alert as a standalone XML document (CAP as the default namespace)."""
    alert = cap_alert(report, hazards, places, web=web)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(alert, encoding="unicode", default_namespace=CAP_NS)


def cap_feed(reports: list[IncidentReport], hazards: Mapping[str, Hazard], places: Places,
             link_for: Callable[[int], str] | None = None, now: datetime | None = None) -> str:
    """An Atom feed with one entry per incident, each carrying its full CAP alert as content
    (and a link to the standalone alert when `link_for(incident_id)` gives one)."""
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
    for report in reports:
        inc = report.incident
        hazard = hazards.get(inc.hazard)
        entry = ET.SubElement(feed, f"{{{ATOM_NS}}}entry")
        ET.SubElement(entry, f"{{{ATOM_NS}}}id").text = f"urn:siaga:buleleng:incident:{inc.id}"
        ET.SubElement(entry, f"{{{ATOM_NS}}}title").text = f"{hazard.label_id if hazard else inc.hazard}: {inc.area_name} ({inc.severity})"
        ET.SubElement(entry, f"{{{ATOM_NS}}}updated").text = cap_time(inc.last_activity_at)
        if link_for is not None:
            ET.SubElement(entry, f"{{{ATOM_NS}}}link", {"rel": "alternate", "type": "application/cap+xml", "href": link_for(inc.id)})
        content = ET.SubElement(entry, f"{{{ATOM_NS}}}content", {"type": "application/cap+xml"})
        content.append(cap_alert(report, hazards, places))
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(feed, encoding="unicode")
