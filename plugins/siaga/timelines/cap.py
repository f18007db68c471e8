"""Incidents as CAP 1.2 (OASIS Common Alerting Protocol): the messages an incident's timeline
makes, and an Atom feed of each incident's latest one, the shape public alert aggregators read.

An incident speaks CAP as its timeline moves (`cap_messages`): opening is an Alert; an
escalation or a reopening an Update; a resolution an Update with responseType AllClear; a false
alarm a Cancel. Every later message names all earlier ones in <references>, so a reader that saw
the Alert knows which message the Update or Cancel replaces. Identifiers are made from the
timeline event, so the same message has the same identifier however often it is fetched.

Written with the standard library's ElementTree (lxml is not part of the environment). Element
order follows the CAP 1.2 specification, which the XML schema enforces as a sequence. What CAP
calls each hazard (`<category>`) comes from the hazard's own definition, so a new hazard's YAML
exports correctly without a code change.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, Mapping
from xml.etree import ElementTree as ET

from shapely.geometry.base import BaseGeometry

from siaga.catalogue import say_in, wita
from siaga.hazard_config import Hazard
from siaga.messages import clean
from siaga.settings import PublicCap
from siaga.store import Incident
from siaga.timelines.places import Places
from siaga.timelines.report import IncidentReport
from siaga.vocabulary import LIVE_STATES, REGENCY_CODE, SEVERITIES, local_iso

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


def cap_identifier(incident: Incident, sent: datetime, reason: str = "") -> str:
    """Unique per message, as CAP requires: the incident, the moment of this version and what
    made it."""
    stamp = f"siaga-buleleng-incident-{incident.id}-{sent.astimezone(timezone.utc):%Y%m%dT%H%M%S}"
    return f"{stamp}-{reason}" if reason else stamp


# Timeline event kind -> (CAP msgType, responseType or None). Other events (more posts, a Slack
# delivery, an acknowledgement) change nothing a public reader acts on, so they make no message.
CAP_MESSAGE_KINDS = {
    "opened": ("Alert", None),
    "escalated": ("Update", None),
    "reopened": ("Update", None),
    "resolved": ("Update", "AllClear"),
    "false_alarm": ("Cancel", None),
}


@dataclass(frozen=True)
class CapMessage:
    """One CAP message of an incident: what kind, when, its identifier, and the messages
    before it that it refers to."""

    msg_type: str
    reason: str  # the timeline event that made it
    sent: datetime
    identifier: str
    response_type: str | None = None
    references: tuple[str, ...] = ()  # "sender,identifier,sent" of every earlier message


def cap_messages(report: IncidentReport) -> list[CapMessage]:
    """The incident's CAP messages from its timeline, oldest first; never empty (an incident
    without an "opened" event still has its Alert, sent when it opened)."""
    inc = report.incident
    out: list[CapMessage] = []
    steps = [(e.at, e.kind) for e in report.events if e.kind in CAP_MESSAGE_KINDS]
    if not steps or steps[0][1] != "opened":
        steps.insert(0, (inc.opened_at, "opened"))
    for at, kind in steps:
        msg_type, response = CAP_MESSAGE_KINDS[kind]
        if kind == "opened" and out:
            continue  # a second "opened" (should not happen) is not a second Alert
        references = tuple(f"{CAP_SENDER},{m.identifier},{cap_time(m.sent)}" for m in out)
        out.append(CapMessage(msg_type, kind, at, cap_identifier(inc, at, kind), response, references))
    return out


def publishes(policy: PublicCap, report: IncidentReport) -> bool:
    """Whether the public feed carries this incident, as the agency configured it
    (`settings.public_cap`)."""
    inc = report.incident
    if policy.hazards is not None and inc.hazard not in policy.hazards:
        return False
    if inc.severity not in SEVERITIES or SEVERITIES.index(inc.severity) < SEVERITIES.index(policy.min_severity):
        return False
    return not policy.confirmed_only or any(e.kind in ("acknowledged", "ack") for e in report.events)


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


def xml_text(text: str) -> str:
    """Text XML 1.0 can carry: ElementTree writes a control character as it is, and one in a road
    name (an OpenStreetMap import) or an area made the whole feed unparseable for every reader.
    Controls, invisible format characters and lone surrogates go (`messages.clean`), and the two
    noncharacters XML also forbids."""
    return clean(text).replace("\ufffe", "").replace("\uffff", "")


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    el = ET.SubElement(parent, f"{{{CAP_NS}}}{tag}")
    if text is not None:
        el.text = xml_text(text)
    return el


NOTES = {
    "Alert": "Derived automatically from public social media posts; not verified on the ground.",
    "Update": "Update of the earlier message(s) in references. Derived from public social media posts.",
    "Cancel": "False alarm: a duty officer found no such event; cancels the earlier message(s) in references.",
}


def cap_alert(report: IncidentReport, hazards: Mapping[str, Hazard], places: Places,
              web: str | None = None, message: CapMessage | None = None) -> ET.Element:
    """One CAP 1.2 message of an incident (default: its latest, `cap_messages`): an Indonesian
    and an English info block over the same area polygons (a circle around the incident's point
    when no polygon is known). No author, post text or link to a post is ever part of it."""
    inc = report.incident
    hazard = hazards.get(inc.hazard)
    label_id, label_en = (hazard.label_id, hazard.label_en) if hazard else (inc.hazard, inc.hazard)
    message = message or cap_messages(report)[-1]
    sent = message.sent
    alert = ET.Element(f"{{{CAP_NS}}}alert")
    _sub(alert, "identifier", message.identifier)
    _sub(alert, "sender", CAP_SENDER)
    _sub(alert, "sent", cap_time(sent))
    _sub(alert, "status", "Actual")
    _sub(alert, "msgType", message.msg_type)
    _sub(alert, "source", "Siaga social media monitoring")
    _sub(alert, "scope", "Public")
    _sub(alert, "note", NOTES[message.msg_type])
    if message.references:
        _sub(alert, "references", " ".join(message.references))
    _sub(alert, "incidents", f"siaga-buleleng-incident-{inc.id}")
    area = places.area(report.village_codes, report.district_codes)
    place = inc.area_name + (f", Kec. {inc.district}" if inc.district and inc.district != inc.area_name else "")
    closed = message.reason in ("resolved", "false_alarm") or (inc.closed_at is not None and sent >= inc.closed_at)
    # the state this message reports: what its event made it, else the incident's live state
    state = message.reason if message.reason in ("resolved", "false_alarm") else inc.state if inc.state in LIVE_STATES and not closed else "open"
    for cap_lang, lang, label in (("id-ID", "id", label_id), ("en-US", "en", label_en)):
        headline = say_in(lang, "cap.headline", hazard=label, place=place)
        desc = say_in(lang, "cap.description", posts=report.post_count, authors=report.author_count, hazard=label.lower(),
                      place=place, since=wita(inc.opened_at, lang=lang))
        if message.reason in ("resolved", "false_alarm"):
            desc += " " + say_in(lang, "event." + message.reason) + f" ({cap_time(sent)})."
        info = _sub(alert, "info")
        _sub(info, "language", cap_lang)
        _sub(info, "category", cap_category(hazard))
        _sub(info, "event", label)
        if message.response_type:
            _sub(info, "responseType", message.response_type)
        _sub(info, "urgency", "Past" if closed else "Immediate")
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
        _sub(param, "value", state)
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


def cap_xml(report: IncidentReport, hazards: Mapping[str, Hazard], places: Places, web: str | None = None,
            message: CapMessage | None = None) -> str:
    """One incident's CAP message (default: its latest) as a standalone XML document (CAP as the
    default namespace)."""
    alert = cap_alert(report, hazards, places, web=web, message=message)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(alert, encoding="unicode", default_namespace=CAP_NS)


def feed_reports(reports: Iterable[IncidentReport], now: datetime, keep_closed: timedelta = timedelta(hours=24)) -> list[IncidentReport]:
    """The incidents a feed carries: the live ones, and those closed less than `keep_closed`
    ago, so a reader that saw the Alert also sees the all-clear or the Cancel."""
    return [r for r in reports if r.incident.state in LIVE_STATES
            or (r.incident.closed_at is not None and r.incident.closed_at >= now - keep_closed)]


def cap_feed(reports: list[IncidentReport], hazards: Mapping[str, Hazard], places: Places,
             link_for: Callable[[int], str] | None = None, now: datetime | None = None,
             title: str = "Siaga Buleleng: open incidents (CAP 1.2)", web_for: Callable[[int], str | None] | None = None) -> str:
    """An Atom feed with one entry per incident, each carrying its latest CAP message as
    content and, when `link_for(incident_id)` gives one, a link to that standalone message.
    `web_for(incident_id)` gives each alert's <web> page (none for a public feed)."""
    # Prefixed, not default, namespaces: ElementTree cannot write a default namespace next to
    # the unqualified attributes Atom uses (rel, href).
    ET.register_namespace("atom", ATOM_NS)
    ET.register_namespace("cap", CAP_NS)
    now = now or datetime.now(timezone.utc)
    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    ET.SubElement(feed, f"{{{ATOM_NS}}}id").text = "urn:siaga:buleleng:cap-feed"
    ET.SubElement(feed, f"{{{ATOM_NS}}}title").text = title
    ET.SubElement(feed, f"{{{ATOM_NS}}}updated").text = cap_time(now)
    author = ET.SubElement(feed, f"{{{ATOM_NS}}}author")
    ET.SubElement(author, f"{{{ATOM_NS}}}name").text = "BPBD Kabupaten Buleleng (Siaga)"
    for report in reports:
        inc = report.incident
        hazard = hazards.get(inc.hazard)
        entry = ET.SubElement(feed, f"{{{ATOM_NS}}}entry")
        ET.SubElement(entry, f"{{{ATOM_NS}}}id").text = f"urn:siaga:buleleng:incident:{inc.id}"
        ET.SubElement(entry, f"{{{ATOM_NS}}}title").text = xml_text(f"{hazard.label_id if hazard else inc.hazard}: {inc.area_name} ({inc.severity})")
        message = cap_messages(report)[-1]
        ET.SubElement(entry, f"{{{ATOM_NS}}}updated").text = cap_time(message.sent)
        if link_for is not None:
            ET.SubElement(entry, f"{{{ATOM_NS}}}link", {"rel": "alternate", "type": "application/cap+xml", "href": link_for(inc.id)})
        content = ET.SubElement(entry, f"{{{ATOM_NS}}}content", {"type": "application/cap+xml"})
        content.append(cap_alert(report, hazards, places, web=web_for(inc.id) if web_for else None, message=message))
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(feed, encoding="unicode")
