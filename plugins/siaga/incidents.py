"""Incidents: turn a stream of spikes into one story per event that opens, grows, escalates and
ends, with every change written to its timeline.

A duty officer wants one ping per flood, not one per detection run: a spike for a hazard and area
that already has a live incident updates it; only a new incident is a new message.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siaga.spikes import Spike
from siaga.store import Alert, Incident, IncidentEvent

LIVE_STATES = ("open", "acknowledged")
SEVERITIES = ("low", "medium", "high", "critical")  # as in config/routing.yaml
# Finer areas first: a flood alert for a village makes one for its kecamatan redundant.
LEVEL_ORDER = ("village", "road", "district", "regency")
# An update is worth a message when the count grew by this factor since the last one sent.
UPDATE_GROWTH = 1.5


@dataclass(frozen=True)
class AreaInfo:
    level: str
    code: str
    name: str
    village: str | None = None
    district: str | None = None
    road: str | None = None
    lon: float | None = None
    lat: float | None = None


@dataclass
class Change:
    """What happened to an incident in this run; alerts turn it into Slack messages."""

    incident: Incident
    kind: str  # new | update | escalation | resolved
    alert: Alert | None = None
    evidence: list[int] = field(default_factory=list)


def severity_of(spike: Spike, min_posts: int, cue_posts: int) -> str:
    """Severity grows with the count and with posts that carry severity cues (victims, trapped,
    waist-deep water): several witnesses of a cue make it high, many make it critical."""
    if cue_posts >= 4 or (cue_posts >= 2 and spike.observed >= 4 * min_posts):
        return "critical"
    if cue_posts >= 2 or spike.observed >= 4 * min_posts:
        return "high"
    if cue_posts >= 1 or spike.observed >= 2 * min_posts:
        return "medium"
    return "low"


def inhibited(spike: Spike, fired: list[Spike], areas: dict[tuple[str, str], AreaInfo]) -> bool:
    """A coarser spike is redundant when a finer one of the same hazard fired inside it."""
    if spike.level in ("village", "road"):
        return False
    mine = areas.get((spike.level, spike.area_code))
    for other in fired:
        if other.hazard != spike.hazard or LEVEL_ORDER.index(other.level) >= LEVEL_ORDER.index(spike.level):
            continue
        if spike.level == "regency":
            return True
        other_area = areas.get((other.level, other.area_code))
        if mine and other_area and other_area.district == mine.district:
            return True
    return False


def apply_spikes(
    session: Session,
    spikes: list[Spike],
    areas: dict[tuple[str, str], AreaInfo],
    severities: dict[tuple[str, str, str, datetime], str],
    gap: timedelta,
) -> list[Change]:
    """Record each spike as an alert and open or update its incident. Idempotent: a spike whose
    alert is already stored is skipped, so re-running a window changes nothing."""
    changes: list[Change] = []
    fired: list[Spike] = []
    ordered = sorted(spikes, key=lambda s: (s.window_end, LEVEL_ORDER.index(s.level), s.hazard, s.area_code))
    for spike in ordered:
        if inhibited(spike, [f for f in fired if f.window_end == spike.window_end], areas) or _inhibited_by_live(session, spike, areas):
            continue
        fired.append(spike)
        if _alert_exists(session, spike):
            continue
        area = areas[(spike.level, spike.area_code)]
        severity = severities.get((spike.hazard, spike.level, spike.area_code, spike.window_end), "low")
        change = _record(session, spike, area, severity, gap)
        if change is not None:
            changes.append(change)
    return changes


def _alert_exists(session: Session, spike: Spike) -> bool:
    return session.scalar(
        select(Alert.id).where(
            Alert.hazard == spike.hazard,
            Alert.level == spike.level,
            Alert.area_code == spike.area_code,
            Alert.window_end == spike.window_end,
        )
    ) is not None


def _inhibited_by_live(session: Session, spike: Spike, areas: dict[tuple[str, str], AreaInfo]) -> bool:
    """A live finer incident of the same hazard inside this area already tells the story."""
    if spike.level not in ("district", "regency"):
        return False
    mine = areas.get((spike.level, spike.area_code))
    stmt = select(Incident).where(
        Incident.hazard == spike.hazard,
        Incident.state.in_(LIVE_STATES),
        Incident.level.in_(("village", "road") if spike.level == "district" else ("village", "road", "district")),
    )
    for incident in session.scalars(stmt):
        if spike.level == "regency" or (mine and incident.district == mine.district):
            return True
    return False


def _record(session: Session, spike: Spike, area: AreaInfo, severity: str, gap: timedelta) -> Change | None:
    incident = session.scalars(
        select(Incident)
        .where(
            Incident.hazard == spike.hazard,
            Incident.level == spike.level,
            Incident.area_code == spike.area_code,
            Incident.state.in_(LIVE_STATES),
            Incident.last_activity_at >= spike.window_end - gap,
        )
        .order_by(Incident.id.desc())
    ).first()
    alert = Alert(
        hazard=spike.hazard,
        level=spike.level,
        area_code=spike.area_code,
        window_start=spike.window_start,
        window_end=spike.window_end,
        observed=spike.observed,
        expected=spike.expected,
        authors=spike.authors,
        score=spike.score,
        explanation=_explanation(spike),
    )
    if incident is None:
        incident = Incident(
            hazard=spike.hazard,
            level=spike.level,
            area_code=spike.area_code,
            area_name=area.name,
            village=area.village,
            district=area.district,
            road=area.road,
            lon=area.lon,
            lat=area.lat,
            state="open",
            severity=severity,
            posts=spike.observed,
            authors=spike.authors,
            notified_posts=spike.observed,
            opened_at=spike.window_end,
            last_activity_at=spike.window_end,
        )
        session.add(incident)
        session.flush()
        alert.incident_id = incident.id
        session.add(alert)
        add_event(session, incident, spike.window_end, "opened", {"severity": severity, **_explanation(spike)})
        return Change(incident, "new", alert, list(spike.post_ids))

    alert.incident_id = incident.id
    session.add(alert)
    escalated = SEVERITIES.index(severity) > SEVERITIES.index(incident.severity)
    grew = spike.observed > incident.posts
    incident.last_activity_at = max(incident.last_activity_at, spike.window_end)
    if not grew and not escalated:
        return None
    incident.posts = max(incident.posts, spike.observed)
    incident.authors = max(incident.authors, spike.authors)
    if escalated:
        add_event(session, incident, spike.window_end, "escalated", {"from": incident.severity, "to": severity})
        incident.severity = severity
    add_event(session, incident, spike.window_end, "counts", _explanation(spike))
    if escalated:
        incident.notified_posts = incident.posts
        return Change(incident, "escalation", alert, list(spike.post_ids))
    if incident.posts >= incident.notified_posts * UPDATE_GROWTH:
        incident.notified_posts = incident.posts
        return Change(incident, "update", alert, list(spike.post_ids))
    return None


def resolve_quiet(session: Session, now: datetime, quiet: timedelta) -> list[Change]:
    """Live incidents with no activity for `quiet` resolve themselves."""
    changes = []
    stale = select(Incident).where(Incident.state.in_(LIVE_STATES), Incident.last_activity_at < now - quiet)
    for incident in session.scalars(stale):
        incident.state = "resolved"
        incident.closed_at = now
        add_event(session, incident, now, "resolved", {"reason": f"no new posts for {quiet}"})
        changes.append(Change(incident, "resolved"))
    return changes


def add_event(session: Session, incident: Incident, at: datetime, kind: str, detail: dict[str, Any], actor: str = "siaga") -> None:
    session.add(IncidentEvent(incident_id=incident.id, at=at, kind=kind, actor=actor, detail=detail))


def _explanation(spike: Spike) -> dict[str, Any]:
    return {
        "observed": spike.observed,
        "expected": spike.expected,
        "authors": spike.authors,
        "score": spike.score,
        "window_start": spike.window_start.isoformat(),
        "window_end": spike.window_end.isoformat(),
        "post_ids": list(spike.post_ids),
    }
