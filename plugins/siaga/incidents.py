"""Incidents: turn a stream of spikes into one story per event that opens, grows, escalates and
ends, with every change written to its timeline.

A duty officer wants one ping per flood, not one per detection run or per village: a spike for a
hazard in an area that an incident already covers, or in a village bordering one (polygon
adjacency from the gazetteer), within `gap` of its last activity, joins that incident. A road
incident covers the road and the villages along it. A kecamatan or regency spike is dropped when
a finer spike of the same hazard fired inside it in the same window, or a live finer incident
already tells the story. Only a new incident is a new message; growth is an "update" in its
thread when the count grew by UPDATE_GROWTH, a higher severity (`severity`) an "escalation".

Lifecycle (`vocabulary.TRANSITIONS`): people acknowledge, resolve or mark a false alarm with the
alert's Slack buttons (`transition`); live incidents quiet for the quiet period resolve
themselves (`resolve_quiet`). A spike within the reopen window after an automatic resolution
reopens the same incident ("reopened" event) and is sent as an "escalation": it goes into the
same Slack thread and is broadcast to the channel, because an event that came back needs eyes
again. An incident a person closed is not reopened by the machine: the next spike opens a new
one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from siaga.severity import area_severity
from siaga.spikes import Spike
from siaga.store import Alert, Incident, IncidentArea, IncidentEvent
from siaga.vocabulary import (
    AUTO_ACTOR, LEVELS, LIVE_STATES, SEVERITIES, STATES, TRANSITIONS, district_code, higher_severity,
)

# An update is worth a message when the count grew by this factor since the last one sent.
UPDATE_GROWTH = 1.5

Adjacency = Callable[[str], Iterable[str]]


class InvalidTransition(ValueError):
    """A state change the lifecycle does not allow (the message says which and why)."""


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
    villages: tuple[str, ...] = ()  # a road's village codes


@dataclass
class Change:
    """What happened to an incident in this run; alerts turn it into Slack messages."""

    incident: Incident
    kind: str  # new | update | escalation | resolved
    alert: Alert | None = None
    evidence: list[int] = field(default_factory=list)


def inhibited(spike: Spike, fired: list[Spike], areas: dict[tuple[str, str], AreaInfo]) -> bool:
    """A coarser spike is redundant when a finer one of the same hazard fired inside it."""
    if spike.level in ("village", "road"):
        return False
    mine = areas.get((spike.level, spike.area_code))
    for other in fired:
        if other.hazard != spike.hazard or LEVELS.index(other.level) >= LEVELS.index(spike.level):
            continue
        if spike.level == "regency":
            return True
        other_area = areas.get((other.level, other.area_code))
        if mine and other_area and _within_district(other_area, mine):
            return True
    return False


def _within_district(finer: AreaInfo, district: AreaInfo) -> bool:
    """Does a village or road lie in this kecamatan? A road through several villages has no
    single district name, so its villages' codes decide."""
    if finer.district and finer.district == district.district:
        return True
    codes = set(finer.villages) | ({finer.code} if finer.level == "village" else set())
    return any(district_code(c) == district.code for c in codes)


def apply_spikes(
    session: Session,
    spikes: list[Spike],
    areas: dict[tuple[str, str], AreaInfo],
    severities: dict[tuple[str, str, str, datetime], str],
    gap: timedelta,
    adjacent: Adjacency | None = None,
    reopen_window: timedelta = timedelta(hours=6),
) -> list[Change]:
    """Record each spike as an alert and open, join, grow or reopen its incident. Idempotent: a
    spike whose alert is already stored is skipped, so re-running a window changes nothing."""
    changes: list[Change] = []
    fired: list[Spike] = []
    ordered = sorted(spikes, key=lambda s: (s.window_end, LEVELS.index(s.level), s.hazard, s.area_code))
    for spike in ordered:
        if inhibited(spike, [f for f in fired if f.window_end == spike.window_end], areas) or _inhibited_by_live(session, spike, areas):
            continue
        fired.append(spike)
        if _alert_exists(session, spike):
            continue
        area = areas.get((spike.level, spike.area_code)) or AreaInfo(spike.level, spike.area_code, spike.area_code)
        severity = severities.get((spike.hazard, spike.level, spike.area_code, spike.window_end), "low")
        change = _record(session, spike, area, severity, gap, adjacent, reopen_window)
        if change is not None:
            changes.append(change)
    return changes


def footprint(area: AreaInfo) -> dict[tuple[str, str], str]:
    """The (level, code) -> name an alert in `area` covers: a road covers its villages too."""
    cover = {(area.level, area.code): area.name}
    if area.level == "road":
        for code in area.villages:
            cover.setdefault(("village", code), code)
    return cover


def neighbourhood(cover: Iterable[tuple[str, str]], adjacent: Adjacency | None) -> set[tuple[str, str]]:
    """The covered areas and the villages bordering any covered village."""
    out = set(cover)
    if adjacent is None:
        return out
    for level, code in list(out):
        if level != "village":
            continue
        try:
            out.update(("village", n) for n in adjacent(code))
        except KeyError:  # a code the gazetteer does not know borders nothing we know
            pass
    return out


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
        if spike.level == "regency" or (mine and incident.district and incident.district == mine.district):
            return True
        if mine and spike.level == "district":
            covered = session.scalars(select(IncidentArea.area_code).where(
                IncidentArea.incident_id == incident.id, IncidentArea.level == "village"))
            if any(district_code(c) == mine.code for c in covered):
                return True
    return False


def _matching_incident(
    session: Session, spike: Spike, near: set[tuple[str, str]], gap: timedelta, reopen_window: timedelta
) -> Incident | None:
    """The live incident of this hazard covering or bordering the spike's area, else one that
    resolved itself within the reopen window; the most recently active first."""
    codes = {code for _, code in near}
    candidates = session.scalars(
        select(Incident)
        .join(IncidentArea, IncidentArea.incident_id == Incident.id)
        .where(
            Incident.hazard == spike.hazard,
            IncidentArea.area_code.in_(codes),
            or_(
                Incident.state.in_(LIVE_STATES) & (Incident.last_activity_at >= spike.window_end - gap),
                (Incident.state == "resolved") & (Incident.closed_by == AUTO_ACTOR) & (Incident.closed_at >= spike.window_end - reopen_window),
            ),
        )
        .order_by(Incident.last_activity_at.desc(), Incident.id.desc())
    ).unique().all()
    for incident in sorted(candidates, key=lambda i: i.state not in LIVE_STATES):
        covered = {(a.level, a.area_code) for a in session.scalars(select(IncidentArea).where(IncidentArea.incident_id == incident.id))}
        if covered & near:
            return incident
    return None


def _record(
    session: Session, spike: Spike, area: AreaInfo, severity: str, gap: timedelta,
    adjacent: Adjacency | None, reopen_window: timedelta,
) -> Change | None:
    cover = footprint(area)
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
        explanation={**spike.explanation(), "area": area.name, "level": area.level},
    )
    incident = _matching_incident(session, spike, neighbourhood(cover, adjacent), gap, reopen_window)
    if incident is None:
        return _open(session, spike, area, severity, cover, alert)

    alert.incident_id = incident.id
    session.add(alert)
    session.flush()
    reopened = False
    if incident.state == "resolved":
        if spike.window_end <= (incident.closed_at or spike.window_end):
            # a late-counted window from before the resolution: history, not news
            add_event(session, incident, spike.window_end, "alert", {"alert_id": alert.id, **alert.explanation})
            return None
        add_event(session, incident, spike.window_end, "reopened", {
            "after": str(spike.window_end - incident.closed_at), "closed_at": incident.closed_at.isoformat(), "alert_id": alert.id,
        })
        incident.state, incident.closed_at, incident.closed_by = "open", None, None
        incident.reopened = (incident.reopened or 0) + 1
        reopened = True
    incident.last_activity_at = max(incident.last_activity_at, spike.window_end)
    added = _cover(session, incident, cover, spike)
    if added:
        add_event(session, incident, spike.window_end, "area_added", {"areas": [{"level": lv, "code": c, "name": n} for (lv, c), n in added.items()]})
    before = incident.posts
    incident.posts = _posts_over_areas(session, incident)
    incident.authors = max(incident.authors, spike.authors)
    add_event(session, incident, spike.window_end, "alert", {"alert_id": alert.id, "incident_posts": incident.posts, **alert.explanation})
    target = higher_severity(severity, area_severity(session, incident))
    escalated = SEVERITIES.index(target) > SEVERITIES.index(incident.severity)
    if escalated:
        add_event(session, incident, spike.window_end, "escalated", {"from": incident.severity, "to": target})
        incident.severity = target
    if escalated or reopened:
        incident.notified_posts = incident.posts
        return Change(incident, "escalation", alert, list(spike.post_ids))
    if incident.posts > before and incident.posts >= incident.notified_posts * UPDATE_GROWTH:
        incident.notified_posts = incident.posts
        return Change(incident, "update", alert, list(spike.post_ids))
    return None


def _open(session: Session, spike: Spike, area: AreaInfo, severity: str, cover: dict[tuple[str, str], str], alert: Alert) -> Change:
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
        reopened=0,
    )
    session.add(incident)
    session.flush()
    alert.incident_id = incident.id
    session.add(alert)
    session.flush()
    _cover(session, incident, cover, spike)
    add_event(session, incident, spike.window_end, "opened", {
        "severity": severity, "alert_id": alert.id, "areas": [c for _, c in cover], **alert.explanation,
    })
    return Change(incident, "new", alert, list(spike.post_ids))


def _cover(session: Session, incident: Incident, cover: dict[tuple[str, str], str], spike: Spike) -> dict[tuple[str, str], str]:
    """Add the areas not yet covered; raise the spike's own area's count. Returns the new ones."""
    existing = {(a.level, a.area_code): a for a in session.scalars(select(IncidentArea).where(IncidentArea.incident_id == incident.id))}
    added = {}
    for (level, code), name in cover.items():
        row = existing.get((level, code))
        own = (level, code) == (spike.level, spike.area_code)
        if row is None:
            session.add(IncidentArea(incident_id=incident.id, level=level, area_code=code, name=name[:128],
                                     posts=spike.observed if own else 0, added_at=spike.window_end))
            added[(level, code)] = name
        elif own and spike.observed > row.posts:
            row.posts = spike.observed
    session.flush()
    return added


def _posts_over_areas(session: Session, incident: Incident) -> int:
    return sum(a.posts for a in session.scalars(select(IncidentArea).where(IncidentArea.incident_id == incident.id)))


def resolve_quiet(session: Session, now: datetime, quiet: timedelta) -> list[Change]:
    """Live incidents with no activity for `quiet` resolve themselves (and may reopen)."""
    changes = []
    stale = select(Incident).where(Incident.state.in_(LIVE_STATES), Incident.last_activity_at < now - quiet)
    for incident in session.scalars(stale):
        incident.state = "resolved"
        incident.closed_at = now
        incident.closed_by = AUTO_ACTOR
        add_event(session, incident, now, "resolved", {"reason": f"no new posts for {quiet}", "automatic": True})
        changes.append(Change(incident, "resolved", _cycle_alert(session, incident)))
    return changes


def transition(session: Session, incident_id: int, to_state: str, actor: str, at: datetime, note: str | None = None) -> Change | None:
    """A person moves an incident through its lifecycle (today: the alert's Slack buttons
    Acknowledge, Resolve and False alarm).

    Raises LookupError for an unknown incident, InvalidTransition for an unknown state, a missing
    actor or a move the lifecycle forbids. Pressing the same button twice is harmless (None).
    Closing returns a "resolved" change so the thread hears it; reopening (which the lifecycle
    allows but no button offers yet) an "escalation"."""
    if to_state not in STATES:
        raise InvalidTransition(f"unknown incident state {to_state!r}; expected one of {', '.join(STATES)}")
    if not actor or not actor.strip():
        raise InvalidTransition("a state change needs the actor who made it")
    if at.tzinfo is None:
        raise InvalidTransition(f"naive time {at!r}: give a timezone-aware time")
    incident = session.get(Incident, incident_id, with_for_update=True)
    if incident is None:
        raise LookupError(f"no incident {incident_id}")
    if incident.state == to_state:
        return None
    if to_state not in TRANSITIONS[incident.state]:
        allowed = ", ".join(TRANSITIONS[incident.state])
        raise InvalidTransition(f"incident {incident_id} is {incident.state}: cannot become {to_state} (allowed: {allowed})")
    detail: dict[str, Any] = {"from": incident.state, "to": to_state}
    if note:
        detail["note"] = note[:1000]
    incident.state = to_state
    if to_state in ("resolved", "false_alarm"):
        incident.closed_at, incident.closed_by = at, actor
        add_event(session, incident, at, to_state, detail, actor=actor)
        return Change(incident, "resolved", _cycle_alert(session, incident))
    if to_state == "open":
        incident.closed_at, incident.closed_by = None, None
        incident.reopened = (incident.reopened or 0) + 1
        incident.last_activity_at = max(incident.last_activity_at, at)
        add_event(session, incident, at, "reopened", detail, actor=actor)
        return Change(incident, "escalation", _cycle_alert(session, incident))
    add_event(session, incident, at, to_state, detail, actor=actor)
    return None


def _cycle_alert(session: Session, incident: Incident) -> Alert | None:
    """The outbox de-duplicates on (incident, receiver, kind, alert): a reopened incident's
    second "resolved" must carry a different alert than its first, or it would never be sent.
    Never reopened: None, as before."""
    if not incident.reopened:
        return None
    return session.scalars(select(Alert).where(Alert.incident_id == incident.id).order_by(Alert.window_end.desc(), Alert.id.desc())).first()


def add_event(session: Session, incident: Incident, at: datetime, kind: str, detail: dict[str, Any], actor: str = AUTO_ACTOR) -> None:
    session.add(IncidentEvent(incident_id=incident.id, at=at, kind=kind, actor=actor, detail=detail))
