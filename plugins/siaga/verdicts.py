"""Officers' verdicts as labels: what the duty officers said about the incidents Siaga raised.

An officer who presses Resolve on an incident confirms it was real; one who presses False alarm
says it was not. Both are on the incident's timeline with who and when (`incidents.transition`).
Read back here, they label the incident's evidence posts (the posts its alerts cited), which is
the ground truth operators need: a backtest scores candidate lists against them, and the term
report shows which terms drive false alarms.

Labels are read from the timeline each time rather than stored: an incident reopened after a
verdict loses it, and a verdict given again later replaces the first, with nothing to keep in
step. Automatic resolutions (nobody looked) label nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from siaga.incidents import cited_post_ids
from siaga.store import Alert, Incident, IncidentEvent, in_slices
from siaga.vocabulary import AUTO_ACTOR, CLOSED_STATES

CONFIRMED, FALSE_ALARM = "resolved", "false_alarm"


@dataclass(frozen=True)
class Verdict:
    """One incident a person closed: `verdict` is "resolved" (confirmed) or "false_alarm"."""

    incident_id: int
    hazard: str
    level: str
    area_code: str
    area_name: str
    verdict: str
    actor: str
    at: datetime
    post_ids: frozenset[int]

    @property
    def confirmed(self) -> bool:
        return self.verdict == CONFIRMED


def verdicts(session: Session, start: datetime, end: datetime) -> list[Verdict]:
    """The verdicts on incidents active in [start, end] (opened by `end`, active since `start`),
    in incident order: each incident's latest verdict by a person, if the incident still holds
    it (one reopened since has none)."""
    incidents = session.scalars(
        select(Incident).where(
            Incident.state.in_(CLOSED_STATES), Incident.opened_at <= end, Incident.last_activity_at >= start,
        ).order_by(Incident.id)
    ).all()
    if not incidents:
        return []
    ids = [i.id for i in incidents]
    latest: dict[int, IncidentEvent] = {}
    for among in in_slices(session, IncidentEvent.incident_id, ids):  # an incident's events all in one slice
        for event in session.scalars(
            select(IncidentEvent).where(
                among, IncidentEvent.kind.in_(CLOSED_STATES), IncidentEvent.actor != AUTO_ACTOR,
            ).order_by(IncidentEvent.at, IncidentEvent.id)
        ):
            latest[event.incident_id] = event
    evidence = evidence_posts(session, ids)
    out = []
    for incident in incidents:
        event = latest.get(incident.id)
        if event is None or event.kind != incident.state or incident.closed_by in (None, AUTO_ACTOR):
            continue  # closed automatically, or reopened since and closed by the machine
        out.append(Verdict(incident.id, incident.hazard, incident.level, incident.area_code, incident.area_name,
                           event.kind, event.actor, event.at, frozenset(evidence.get(incident.id, ()))))
    return out


def evidence_posts(session: Session, incident_ids: list[int]) -> dict[int, set[int]]:
    """incident id -> its posts (the posts its alerts cited: `incidents.cited_post_ids`, the
    one definition of an incident's posts)."""
    explanations: dict[int, list[dict]] = {}
    if not incident_ids:
        return {}
    for among in in_slices(session, Alert.incident_id, incident_ids):
        for incident_id, explanation in session.execute(select(Alert.incident_id, Alert.explanation).where(among)):
            explanations.setdefault(incident_id, []).append(explanation)
    return {i: set(cited_post_ids(found)) for i, found in explanations.items()}


def post_labels(found: list[Verdict]) -> dict[tuple[int, str], str]:
    """(post id, hazard) -> "resolved" or "false_alarm". A post cited by a confirmed incident
    and by a false alarm of the same hazard counts as confirmed: it did report the hazard."""
    labels: dict[tuple[int, str], str] = {}
    for v in found:
        for post_id in v.post_ids:
            if labels.get((post_id, v.hazard)) != CONFIRMED:
                labels[(post_id, v.hazard)] = v.verdict
    return labels
