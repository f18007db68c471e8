"""One incident as managers review it, read from the database in one session: its timeline,
alerts, evidence posts, Slack messages, post counts and the villages (or kecamatan) it is about.

Every export and incident page starts from an `IncidentReport`, so the CSV row, the map on
screen and the polygon in a CAP alert describe the same incident the same way: the same posts
and authors (`incidents.incident_posts`, counted once here), the same kecamatan, the same
timeline sentences (`story`). Machine times are ISO 8601 with WITA's offset.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from siaga.incidents import IncidentPosts, cited_post_ids, kecamatan_of, posts_of
from siaga.regional import is_joined
from siaga.store import Alert, AreaCount, Geotag, Incident, IncidentArea, IncidentEvent, IncidentThread, OutboxMessage, Post, in_slices
from siaga.timelines.places import Places
from siaga.timelines.story import actor_name, event_label, event_sentence
from siaga.vocabulary import local_iso


@dataclass
class EvidencePost:
    """A post an alert or the timeline cites, with the best place known for it: its own
    coordinates, else those of its most confident geotag."""

    id: int
    created_at: datetime
    source: str
    author: str | None
    text: str
    url: str | None
    lon: float | None
    lat: float | None
    places: list[str] = field(default_factory=list)  # names of the Buleleng places tagged


@dataclass(frozen=True)
class TimelineLine:
    """One timeline event as people read it: when, what, who and a sentence (bilingual)."""

    at: datetime
    kind: str
    label: str
    actor: str
    text: str


@dataclass
class IncidentReport:
    """Everything known about one incident, read in one session. The incident and its rows stay
    attached to that session: pages expunge them before rendering, exports render inside it."""

    incident: Incident
    events: list[IncidentEvent]
    alerts: list[Alert]
    posts: list[EvidencePost]
    outbox: list[OutboxMessage]
    threads: list[IncidentThread]
    counts: list[tuple[datetime, int]]  # posts per bucket of the incident's series (AreaCount)
    village_codes: list[str]  # affected villages, drawn on the map and sent as CAP polygons
    district_codes: list[str]  # affected kecamatan when the incident is not about villages
    counted: IncidentPosts = IncidentPosts((), 0, None)  # its posts and authors: the one count
    kecamatan: list[str] = field(default_factory=list)  # names of the kecamatan it is in, its own first
    lines: list[TimelineLine] = field(default_factory=list)  # the events in sentences

    @property
    def post_count(self) -> int:
        return self.counted.posts

    @property
    def author_count(self) -> int:
        return self.counted.authors


def read_report(session: Session, incident_id: int, places: Places) -> IncidentReport | None:
    """The report of one incident, or None when there is no such incident."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        return None
    events = list(session.scalars(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id).order_by(IncidentEvent.at, IncidentEvent.id)))
    stored = list(session.scalars(select(Alert).where(Alert.incident_id == incident_id).order_by(Alert.window_end, Alert.id)))
    post_ids = evidence_post_ids(events, stored)
    alerts = [a for a in stored if not is_joined(a)]  # the detections; joined windows only add posts
    posts = evidence(session, post_ids)
    outbox = list(session.scalars(select(OutboxMessage).where(OutboxMessage.incident_id == incident_id).order_by(OutboxMessage.created_at, OutboxMessage.id)))
    threads = list(session.scalars(select(IncidentThread).where(IncidentThread.incident_id == incident_id)))
    villages, districts = affected_areas(session, incident, post_ids, places)
    lines = [TimelineLine(e.at, e.kind, event_label(e.kind), actor_name(e.actor), event_sentence(e)) for e in events]
    return IncidentReport(incident, events, alerts, posts, outbox, threads, series_counts(session, incident), villages, districts,
                          counted=posts_of(session, post_ids), kecamatan=kecamatan_of(session, incident), lines=lines)


def reports_for(session: Session, places: Places, incident_id: int | None = None, start: datetime | None = None,
                end: datetime | None = None, states: Iterable[str] | None = None) -> list[IncidentReport]:
    """One incident's report (a list of one, or empty), or those of every incident alive in the
    period and in `states`, oldest first."""
    if incident_id is not None:
        one = read_report(session, incident_id, places)
        return [one] if one else []
    return [r for inc in incidents_in(session, start, end, states) if (r := read_report(session, inc.id, places))]


def alive_in(start: datetime | None, end: datetime | None) -> list[ColumnElement[bool]]:
    """Conditions for an incident alive at some moment in [start, end): opened before the end,
    active (or closed) after the start. An open end is no condition."""
    conditions: list[ColumnElement[bool]] = []
    if end is not None:
        conditions.append(Incident.opened_at < end)
    if start is not None:
        conditions.append(or_(Incident.last_activity_at >= start, Incident.closed_at >= start))
    return conditions


def incidents_in(session: Session, start: datetime | None, end: datetime | None, states: Iterable[str] | None = None) -> list[Incident]:
    """Incidents alive in [start, end) and, when given, in one of `states`; oldest first."""
    stmt = select(Incident).where(*alive_in(start, end))
    if states:
        stmt = stmt.where(Incident.state.in_(list(states)))
    return list(session.scalars(stmt.order_by(Incident.opened_at, Incident.id)))


def evidence_post_ids(events: Iterable[IncidentEvent], alerts: Iterable[Alert]) -> list[int]:
    """The incident's posts: those its detections (alerts) counted, the one definition
    (`incidents.cited_post_ids`); `events` are not read, they cite the same posts."""
    return cited_post_ids(a.explanation for a in alerts)


def evidence(session: Session, post_ids: list[int]) -> list[EvidencePost]:
    """The stored posts among `post_ids`, oldest first: retention deletes old posts no alert
    cites, so some a timeline event names may be gone."""
    if not post_ids:
        return []
    ids = list(dict.fromkeys(post_ids))  # a long flood's page cites thousands: read in slices
    tags: dict[int, list[Geotag]] = {}
    for among in in_slices(session, Geotag.post_id, ids):
        for tag in session.scalars(select(Geotag).where(among).order_by(Geotag.id)):
            tags.setdefault(tag.post_id, []).append(tag)
    posts = [post for among in in_slices(session, Post.id, ids) for post in session.scalars(select(Post).where(among))]
    out = []
    for post in sorted(posts, key=lambda p: (p.created_at, p.id)):
        lon, lat = post.lon, post.lat
        best = max(tags.get(post.id, []), key=lambda t: t.confidence, default=None)
        if (lon is None or lat is None) and best is not None and best.lon is not None and best.lat is not None:
            lon, lat = best.lon, best.lat
        names = sorted({t.name for t in tags.get(post.id, []) if t.in_region})
        out.append(EvidencePost(post.id, post.created_at, post.source, post.author, post.text, post.url, lon, lat, names))
    return out


def series_counts(session: Session, incident: Incident) -> list[tuple[datetime, int]]:
    """Posts per bucket of the incident's own series (hazard, level, area), from a day before it
    opened to six hours after it closed (or, while live, after its last activity): the chart's
    bars."""
    rows = session.scalars(
        select(AreaCount)
        .where(AreaCount.hazard == incident.hazard, AreaCount.level == incident.level, AreaCount.area_code == incident.area_code)
        .where(AreaCount.bucket_start >= incident.opened_at - timedelta(days=1))
        .where(AreaCount.bucket_start <= (incident.closed_at or incident.last_activity_at) + timedelta(hours=6))
        .order_by(AreaCount.bucket_start)
    )
    return [(row.bucket_start, row.posts) for row in rows]


def affected_areas(session: Session, incident: Incident, post_ids: list[int], places: Places) -> tuple[list[str], list[str]]:
    """Codes of the villages and kecamatan the incident is about: its own area (its village, a
    road's villages, its kecamatan, or every kecamatan for the regency), plus the villages its
    evidence posts were placed in (for a village incident whose village code is unknown, one of
    them). When that finds nothing, the village, else the kecamatan, named on the incident."""
    villages: dict[str, None] = {}
    districts: dict[str, None] = {}
    if incident.level == "village" and incident.area_code in places.villages:
        villages[incident.area_code] = None
    elif incident.level == "road":
        villages.update(dict.fromkeys(places.road_villages.get(incident.area_code, ())))
    if incident.level in ("road", "regency"):  # the villages its road and posts placed it in
        for code in session.scalars(select(IncidentArea.area_code).where(
                IncidentArea.incident_id == incident.id, IncidentArea.level == "village").order_by(IncidentArea.id)):
            if code in places.villages:
                villages.setdefault(code, None)
    elif incident.level == "district":
        place = places.districts.get(incident.area_code) or places.district_named(incident.district)
        if place:
            districts[place.code] = None
    elif incident.level == "regency":
        districts.update(dict.fromkeys(places.districts))
    if post_ids:
        for among in in_slices(session, Geotag.post_id, list(post_ids)):
            for code in session.scalars(select(Geotag.code).where(among, Geotag.in_region.is_(True))):
                if code in places.villages and (incident.level != "village" or not villages):
                    villages.setdefault(code, None)
    if not villages and not districts:
        if incident.village:
            villages.update({v.code: None for v in places.villages.values()
                             if v.name == incident.village and (not incident.district or v.district == incident.district)})
        if not villages and (place := places.district_named(incident.district)):
            districts[place.code] = None
    return list(villages), list(districts)


def incident_row(report: IncidentReport) -> dict[str, Any]:
    """The incident as one flat record, shared by the CSV row and the GeoJSON properties: what
    happened, where, and who was told and who acknowledged, when (ISO 8601, WITA's offset)."""
    inc = report.incident
    delivered = [e for e in report.events if e.kind == "delivered"]
    acks = [e for e in report.events if e.kind in ("acknowledged", "ack")]
    return {
        "incident_id": inc.id, "hazard": inc.hazard, "level": inc.level, "area_code": inc.area_code,
        "area_name": inc.area_name, "village": inc.village or "", "kecamatan": ", ".join(report.kecamatan),
        "road": inc.road or "", "state": inc.state, "severity": inc.severity, "posts": report.post_count,
        "authors": report.author_count, "opened_at": local_iso(inc.opened_at), "last_activity_at": local_iso(inc.last_activity_at),
        "closed_at": local_iso(inc.closed_at), "first_delivered_at": local_iso(delivered[0].at) if delivered else "",
        "channels": " ".join(sorted({str((e.detail or {}).get("channel", "")) for e in delivered} - {""})),
        "acknowledged_at": local_iso(acks[0].at) if acks else "", "acknowledged_by": acks[0].actor if acks else "",
        "alerts": len(report.alerts), "lon": inc.lon if inc.lon is not None else "", "lat": inc.lat if inc.lat is not None else "",
    }
