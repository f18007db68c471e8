"""Alerts: turn incident changes into Slack messages in the outbox, and deliver the outbox.

Messages are written to the outbox in the same transaction as the incident change, so a crash
can never leave an incident without its message or a message without its incident. Delivery
claims each row with a conditional update (only one worker wins a row, even with two deliver
tasks at once), marks it sent only after Slack answered with a `ts`, and before re-posting a
row whose earlier attempt had an unknown outcome it asks Slack whether the message is there.
"""
from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web import WebClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from siaga import messages, settings, silences
from siaga.hazards import HazardSet
from siaga.incidents import Change, add_event
from siaga.routing import Router
from siaga.slackclient import classify_error, find_posted, outbox_metadata, post_message
from siaga.store import DeliveryAttempt, Incident, IncidentThread, OutboxMessage, Post, session_scope, utcnow

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
# A claim lives only while one message is sent (client timeout x bounded retries, Retry-After
# waits capped at a minute), so one held longer belongs to a worker that died.
STALE_CLAIM = timedelta(minutes=3)


def timeline_url(incident_id: int) -> str | None:
    base = settings.timeline_base_url()
    return f"{base.rstrip('/')}/incidents/{incident_id}" if base else None


# --- enqueue ---------------------------------------------------------------------------------


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
    """Outbox rows for each change and each receiver its labels route to, due at `now` (the
    detect run's time: outbox timing follows the pipeline's clock, so a replayed day delivers
    as it would have). A change matched by a silence active at `now` is not written; its
    timeline says which silence held it back."""
    written = 0
    active = silences.active_silences(session, now) if changes else []
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
        view = view_for(session, change, hazard_set)
        message = messages.build_message(view)
        for receiver in router.route(labels):
            key = f"{incident.id}:{receiver.name}:{change.kind}:{change.alert.id if change.alert else 'none'}"
            if session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedup_key == key)) is not None:
                continue
            due = _due_time(router, receiver, incident, now)
            if due > now:
                add_event(session, incident, now, "held", {"receiver": receiver.name, "until": due.isoformat(), "why": "quiet hours"})
            session.add(
                OutboxMessage(
                    dedup_key=key,
                    incident_id=incident.id,
                    receiver=receiver.name,
                    channel=receiver.channel,
                    kind=change.kind,
                    payload=message,
                    state="pending",
                    next_attempt_at=due,
                    created_at=now,
                )
            )
            written += 1
    session.flush()
    return written


def _due_time(router: Router, receiver: Any, incident: Incident, now: datetime) -> datetime:
    """Now, or the end of the receiver's quiet hours when the incident is not severe enough to
    override them (the message waits in the outbox; the wait is on the timeline)."""
    if router.in_quiet_hours(receiver, now, incident.severity):
        return router.quiet_hours_end(receiver, now) or now
    return now


def view_for(session: Session, change: Change, hazard_set: HazardSet) -> messages.AlertView:
    """What a message about `change` shows; Slack actions rebuild an alert from it to edit it."""
    incident = change.incident
    hazard = hazard_set.hazards.get(incident.hazard)
    alert = change.alert
    evidence = []
    if change.evidence:
        posts = session.scalars(select(Post).where(Post.id.in_(change.evidence[:3])).order_by(Post.created_at)).all()
        evidence = [messages.EvidencePost(text=p.text, url=p.url, created_at=p.created_at, author=None) for p in posts]
    return messages.AlertView(
        incident_id=incident.id,
        kind=change.kind,
        hazard_id=incident.hazard,
        hazard_label_id=hazard.label_id if hazard else incident.hazard,
        hazard_label_en=hazard.label_en if hazard else incident.hazard,
        severity=incident.severity,
        village=incident.village,
        district=incident.district,
        road=incident.road,
        lon=incident.lon,
        lat=incident.lat,
        observed=alert.observed if alert else incident.posts,
        expected=alert.expected if alert else None,
        authors=alert.authors if alert else incident.authors,
        confidence=_confidence(alert.score) if alert else "",
        evidence=tuple(evidence),
        timeline_url=timeline_url(incident.id),
        state=incident.state,
    )


def _confidence(score: float) -> str:
    """How sure, in words a duty officer reads at a glance (score = -log10 tail probability)."""
    if score >= 6:
        return f"tinggi / high (skor {score:.1f})"
    if score >= 3:
        return f"sedang / medium (skor {score:.1f})"
    return f"rendah / low (skor {score:.1f})"


# --- deliver ---------------------------------------------------------------------------------


@dataclass
class DeliverReport:
    sent: int = 0
    found_already_sent: int = 0
    retry_later: int = 0
    dead: int = 0
    waiting_for_thread: int = 0
    errors: list[str] = field(default_factory=list)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def deliver(client: WebClient, now: datetime | None = None, db_url: str | None = None, worker: str | None = None) -> DeliverReport:
    """Send every due outbox row once. Safe to run twice at the same time and to re-run."""
    now = now or utcnow()
    worker = worker or worker_id()
    report = DeliverReport()
    _release_stale_claims(now, db_url)
    for row_id in _due_ids(now, db_url):
        if not _claim(row_id, worker, now, db_url):
            continue  # another deliver task has it
        _deliver_one(client, row_id, worker, now, db_url, report)
    if report.dead:
        log.error("outbox: %d message(s) dead-lettered; see `siaga outbox` and the incidents' timelines", report.dead)
    log.info("deliver: %s", report)
    return report


def _due_ids(now: datetime, db_url: str | None) -> list[int]:
    with session_scope(db_url) as session:
        return list(
            session.scalars(
                select(OutboxMessage.id)
                .where(OutboxMessage.state == "pending", OutboxMessage.next_attempt_at <= now)
                .order_by(OutboxMessage.id)
            )
        )


def _release_stale_claims(now: datetime, db_url: str | None) -> None:
    """A claim held longer than STALE_CLAIM belongs to a worker that died mid-send: release it;
    its attempt count makes the next sender check Slack before posting again."""
    with session_scope(db_url) as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.state == "claimed", OutboxMessage.claimed_at < now - STALE_CLAIM)
            .values(state="pending", claimed_by=None, last_error="claim expired: outcome unknown")
        )


def _claim(row_id: int, worker: str, now: datetime, db_url: str | None) -> bool:
    with session_scope(db_url) as session:
        result = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row_id, OutboxMessage.state == "pending")
            .values(state="claimed", claimed_by=worker, claimed_at=now)
        )
        return result.rowcount == 1


def _deliver_one(client: WebClient, row_id: int, worker: str, now: datetime, db_url: str | None, report: DeliverReport) -> None:
    with session_scope(db_url) as session:
        row = session.get(OutboxMessage, row_id)
        thread_ts = _thread_ts(session, row)
        threaded = row.incident_id is not None  # a digest is about no incident: no thread
        if threaded and row.kind != "new" and thread_ts is None and not _parent_dead(session, row):
            row.state, row.claimed_by = "pending", None  # the first message is not out yet
            report.waiting_for_thread += 1
            return
        channel, payload, kind, attempts = row.channel, row.payload, row.kind, row.attempts
    outcome, ts, error = "failed", None, None
    try:
        if attempts > 0:  # an earlier attempt may have landed: look before posting again
            ts = find_posted(client, channel, str(row_id), thread_ts=thread_ts)
            outcome = "found" if ts else outcome
        if ts is None:
            ts = post_message(
                client, channel, payload, thread_ts=thread_ts, broadcast=kind == "escalation", metadata=outbox_metadata(row_id)
            )
            outcome = "sent"
    except Exception as exc:  # every failure is recorded; classify_error says what it means
        error = _describe(exc)
        outcome = {"permanent": "dead", "transient": "failed"}.get(classify_error(exc), "unknown")
    _record_outcome(row_id, worker, outcome, ts, error, thread_ts, now, db_url, report)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError) and exc.response is not None:
        return f"slack error: {exc.response.get('error')} (HTTP {exc.response.status_code})"
    return f"{type(exc).__name__}: {exc}"


def _thread_ts(session: Session, row: OutboxMessage) -> str | None:
    if row.incident_id is None:
        return None
    return session.scalar(
        select(IncidentThread.ts).where(IncidentThread.incident_id == row.incident_id, IncidentThread.channel == row.channel)
    )


def _parent_dead(session: Session, row: OutboxMessage) -> bool:
    """If the incident's first message to this channel died, updates go out on their own."""
    return session.scalar(
        select(OutboxMessage.id).where(
            OutboxMessage.incident_id == row.incident_id,
            OutboxMessage.channel == row.channel,
            OutboxMessage.kind == "new",
            OutboxMessage.state == "dead",
        )
    ) is not None


def _record_outcome(
    row_id: int, worker: str, outcome: str, ts: str | None, error: str | None, thread_ts: str | None,
    now: datetime, db_url: str | None, report: DeliverReport,
) -> None:
    with session_scope(db_url) as session:
        row = session.get(OutboxMessage, row_id)
        row.attempts += 1
        session.add(DeliveryAttempt(outbox_id=row_id, at=now, worker=worker, outcome=outcome, error=error, ts=ts))
        incident = session.get(Incident, row.incident_id) if row.incident_id is not None else None
        if outcome in ("sent", "found"):
            row.state, row.sent_ts, row.sent_at, row.last_error = "sent", ts, now, None
            if incident is not None and (row.kind == "new" or thread_ts is None):
                _remember_thread(session, row, ts)
            _event(session, incident, now, "delivered", {"channel": row.channel, "receiver": row.receiver, "kind": row.kind, "ts": ts, "attempts": row.attempts})
            if outcome == "sent":
                report.sent += 1
            else:
                report.found_already_sent += 1
            return
        row.last_error = error
        row.claimed_by = None
        if outcome == "dead" or row.attempts >= MAX_ATTEMPTS:
            row.state = "dead"
            _event(session, incident, now, "delivery_failed", {"channel": row.channel, "kind": row.kind, "error": error, "attempts": row.attempts})
            log.error("outbox %s to %s dead-lettered after %d attempt(s): %s", row_id, row.channel, row.attempts, error)
            report.dead += 1
        else:
            row.state = "pending"
            row.next_attempt_at = now + backoff(row.attempts)
            log.warning("outbox %s to %s failed (%s), retry at %s", row_id, row.channel, error, row.next_attempt_at.isoformat())
            report.retry_later += 1
        report.errors.append(f"{row_id}: {error}")


def _event(session: Session, incident: Incident | None, at: datetime, kind: str, detail: dict[str, Any]) -> None:
    """A timeline event, for messages that belong to an incident (a digest has no timeline;
    its fate is in the outbox and delivery_attempts)."""
    if incident is not None:
        add_event(session, incident, at, kind, detail)


def _remember_thread(session: Session, row: OutboxMessage, ts: str | None) -> None:
    if ts is None or _thread_ts(session, row) is not None:
        return
    session.add(IncidentThread(incident_id=row.incident_id, channel=row.channel, ts=ts))


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min ... capped at 30 min."""
    return min(timedelta(seconds=30) * (2 ** max(attempts - 1, 0)), timedelta(minutes=30))


def outbox_summary(session: Session) -> dict[str, int]:
    """Outbox rows per state."""
    return dict(session.execute(select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)).all())


def dead_letters(session: Session) -> list[dict[str, Any]]:
    rows = session.scalars(select(OutboxMessage).where(OutboxMessage.state == "dead").order_by(OutboxMessage.id))
    return [{"id": r.id, "incident": r.incident_id, "channel": r.channel, "kind": r.kind, "attempts": r.attempts, "error": r.last_error} for r in rows]
