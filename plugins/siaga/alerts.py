"""Alerts: turn incident changes into Slack messages and route them into the outbox.

For each change: the labels routing and silences match on (`incident_labels`), the silence that
holds it back if any (`silences.matching`; the timeline says which), what the message shows
(`view_for`, `messages.build_message`), the receivers the route tree sends it to, and when each
may get it (now, or the end of that receiver's quiet hours). The rows are written by
`outbox.enqueue` in the caller's transaction, the one that changed the incident, so a crash can
never leave an incident without its message or a message without its incident. Sending them is
`delivery.py`'s job.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siaga import incidents, messages, outbox, settings, silences
from siaga.catalogue import say
from siaga.hazards import HazardSet
from siaga.incidents import Change, IncidentPosts, add_event
from siaga.routing import Receiver, Router
from siaga.store import Incident, IncidentArea, IncidentEvent, OutboxMessage, Post, in_slices

log = logging.getLogger(__name__)
_warned_no_link: list[bool] = []  # once per process: the setting does not change while it runs


def timeline_url(incident_id: int) -> str | None:
    """The incident's page (`settings.timeline_base_url`: configured, or Airflow's address).
    Without either the alert has no link, which the log says once per process."""
    base = settings.timeline_base_url()
    if not base and not _warned_no_link:
        _warned_no_link.append(True)
        log.warning("alerts carry no link to the incident page: set Airflow's [api] base_url "
                    "(AIRFLOW__API__BASE_URL) or SIAGA_TIMELINE_BASE_URL")
    return f"{base.rstrip('/')}/incidents/{incident_id}" if base else None


def incident_labels(incident: Incident, hazard_set: HazardSet) -> dict[str, str]:
    """The labels routing and silences match an incident change on (see config/routing.yaml)."""
    hazard = hazard_set.hazards.get(incident.hazard)
    return {
        "kind": "incident",
        "hazard": incident.hazard,
        "agency": hazard.agency if hazard else "bpbd",
        "district": incident.district or "",
        "level": incident.level,
        "area_code": incident.area_code,
        "severity": incident.severity,
        "on_road": "true" if incident.road else "false",
    }


def enqueue(session: Session, changes: list[Change], hazard_set: HazardSet, router: Router, now: datetime) -> int:
    """Outbox rows for each change and each receiver its labels route to; returns how many were
    written (none twice: a re-run writes nothing new). Due at `now` (the detect run's time:
    outbox timing follows the pipeline's clock, so a replayed day delivers as it would have), or
    when the receiver's quiet hours end, which the timeline notes. A change matched by a silence
    active at `now` is not written; its timeline says which silence held it back."""
    written = 0
    active = silences.active_silences(session, now) if changes else []
    facts = read_facts(session, changes) if changes else None
    for change in changes:
        incident = change.incident
        labels = incident_labels(incident, hazard_set)
        silence = silences.matching(labels, active, now)
        if silence is not None:
            add_event(session, incident, now, "silenced", {
                "silence_id": silence.id, "kind": change.kind, "until": silence.ends_at.isoformat(),
                "matchers": dict(silence.matchers), "created_by": silence.created_by,
            })
            continue
        view = view_for(session, change, hazard_set, facts)
        message = messages.build_message(view)
        for receiver in _receivers(session, router, incident, labels, hazard_set):
            key = _dedup_key(incident, receiver.name, change, view)
            due = _due_time(router, receiver, incident, now, labels)
            payload = messages.with_hold_note(message, now, due) if due > now else message
            if not outbox.enqueue(session, dedup_key=key, incident_id=incident.id, receiver=receiver.name,
                                  channel=receiver.channel, kind=change.kind, payload=payload, due=due, now=now):
                continue  # already written by an earlier run
            if due > now:
                add_event(session, incident, now, "held", {
                    "receiver": receiver.name, "channel": receiver.channel, "kind": change.kind,
                    "until": due.isoformat(), "why": "quiet hours",
                    "rule": "the receiver's quiet hours hold this kind of alert (config/routing.yaml)",
                })
            written += 1
    session.flush()
    return written


def _receivers(session: Session, router: Router, incident: Incident, labels: dict[str, str],
               hazard_set: HazardSet) -> list[Receiver]:
    """Who hears of this change: the route tree's receivers for its labels, except for an
    incident whose hazard the lists in force no longer define (its file deleted while it was
    open: `hazard_lists`), whose agency is unknown: its messages go where its earlier ones went.
    Its agency was guessed as BPBD, and a traffic accident's closing notice reached BPBD, who
    never saw it open, as a top-level message without its thread."""
    if incident.hazard not in hazard_set.hazards and incident.id is not None:
        names = session.scalars(select(OutboxMessage.receiver).where(OutboxMessage.incident_id == incident.id)
                                .order_by(OutboxMessage.id)).all()
        earlier = [router.receivers[n] for n in dict.fromkeys(names) if n in router.receivers]
        if earlier:
            return earlier
    return router.route(labels)


def _dedup_key(incident: Incident, receiver: str, change: Change, view: messages.AlertView) -> str:
    """The outbox key of one message: the same change written again (a retried run) maps to the
    same key, while a later change of the same kind to the same alert (a late post widening its
    window, a severity or state change) gets its own key, so it is sent rather than dropped."""
    alert = change.alert.id if change.alert else "none"
    return f"{incident.id}:{receiver}:{change.kind}:{alert}:{view.posts}:{view.severity}:{view.state}"


def _due_time(router: Router, receiver: Receiver, incident: Incident, now: datetime,
              labels: dict[str, str]) -> datetime:
    """Now, or the end of the receiver's quiet hours when the receiver chose to hold this kind of
    alert and it is not severe enough to override them (the message waits in the outbox; the
    wait is on the timeline)."""
    if router.in_quiet_hours(receiver, now, incident.severity, labels):
        return router.quiet_hours_end(receiver, now) or now
    return now


@dataclass(frozen=True)
class ViewFacts:
    """What `view_for` reads from the store about changes, read for all of a run's changes at
    once (`read_facts`): message by message it was five queries each (evidence, the incident's
    posts, its kecamatan, the opening cue), a few milliseconds a message."""

    evidence: dict[int, Post]  # the posts each change quotes (at most MAX_EVIDENCE each), by id
    posts: dict[int, IncidentPosts]  # incident id -> its posts and authors
    kecamatan: dict[int, list[str]]  # incident id -> `incidents.kecamatan_of`
    why: dict[int, dict[str, Any] | None]  # incident id of a new one -> its opening cue (`_opening_whys`)


def read_facts(session: Session, changes: list[Change]) -> ViewFacts:
    """The `ViewFacts` of these changes, a query for each kind of fact."""
    wanted = list(dict.fromkeys(p for c in changes for p in c.evidence[: messages.MAX_EVIDENCE]))
    evidence = {p.id: p for among in in_slices(session, Post.id, wanted) for p in session.scalars(select(Post).where(among))}
    by_id = {c.incident.id: c.incident for c in changes}
    opened = [c.incident.id for c in changes if c.kind == "new"]
    return ViewFacts(evidence, incidents.posts_by_incident(session, by_id), incidents.kecamatan_by_incident(session, list(by_id.values())),
                     _opening_whys(session, opened))


def view_for(session: Session, change: Change, hazard_set: HazardSet, facts: ViewFacts | None = None) -> messages.AlertView:
    """What a message about `change` shows: the newest evidence (the posts new since the last
    message first), the window's count in plain words, the incident's posts and authors (the
    one count), the cue that raised the severity, what changed since the last message and the
    link to the incident's page. Slack actions rebuild an alert from it to edit it. `facts`:
    read for a whole run's changes (`read_facts`), else read for this one."""
    facts = facts or read_facts(session, [change])
    incident = change.incident
    hazard = hazard_set.hazards.get(incident.hazard)
    alert = change.alert
    evidence = []
    if change.evidence:
        wanted = change.evidence[: messages.MAX_EVIDENCE]
        by_id = {p: facts.evidence[p] for p in wanted if p in facts.evidence}
        ordered = sorted(by_id.values(), key=lambda p: (p.created_at, p.id), reverse=True)
        evidence = [messages.EvidencePost(text=p.text, url=p.url, created_at=p.created_at, author=None) for p in ordered]
    counted = facts.posts[incident.id]
    explanation = (alert.explanation or {}) if alert else {}
    return messages.AlertView(
        incident_id=incident.id,
        kind=change.kind,
        hazard_id=incident.hazard,
        hazard_label_id=hazard.label_id if hazard else incident.hazard,
        hazard_label_en=hazard.label_en if hazard else incident.hazard,
        severity=incident.severity,
        village=incident.village,
        district=", ".join(facts.kecamatan[incident.id]) or None,
        road=incident.road,
        lon=incident.lon,
        lat=incident.lat,
        observed=alert.observed if alert else counted.posts,
        expected=alert.expected if alert else None,
        authors=alert.authors if alert else counted.authors,
        confidence=confidence_words(alert.score) if alert else "",
        evidence=tuple(evidence),
        timeline_url=timeline_url(incident.id),
        state=incident.state,
        window_minutes=int(explanation.get("window_minutes") or 0) if alert else 0,
        posts=counted.posts,
        incident_authors=counted.authors,
        why=facts.why.get(incident.id) if change.kind == "new" else None,
        what=change.what,
        **_regional_place(session, incident),
    )


def _regional_place(session: Session, incident: Incident) -> dict:
    """A regency-wide incident's place: the regency and the kecamatan its posts came from."""
    if incident.level != "regency":
        return {}
    names = session.scalars(select(IncidentArea.name).where(
        IncidentArea.incident_id == incident.id, IncidentArea.level == "district").order_by(IncidentArea.name)).all()
    return {"regency": incident.area_name, "areas": tuple(names)}



def _opening_whys(session: Session, incident_ids: list[int]) -> dict[int, dict[str, Any] | None]:
    """The cue behind each incident's present severity: its latest "escalated" or its "opened"
    timeline event (a run that opened and escalated it sends one new alert)."""
    if not incident_ids:
        return {}
    latest: dict[int, dict[str, Any] | None] = {}
    for among in in_slices(session, IncidentEvent.incident_id, incident_ids):  # an incident's events in one slice
        for incident_id, detail in session.execute(select(IncidentEvent.incident_id, IncidentEvent.detail).where(
                among, IncidentEvent.kind.in_(("opened", "escalated")))
                .order_by(IncidentEvent.at.desc(), IncidentEvent.id.desc())):
            latest.setdefault(incident_id, detail)
    return {i: (latest.get(i) or {}).get("why") or None for i in incident_ids}


def confidence_words(score: float) -> str:
    """How sure, in words a duty officer reads at a glance (score = -log10 of the chance that
    ordinary chatter gives such a count)."""
    level = "high" if score >= 6 else "medium" if score >= 3 else "low"
    return say(f"confidence.{level}")
