"""The outbox: the only module that writes outbox rows or moves them between delivery states.

A message to Slack is a row written in the same transaction as the change it reports, so a crash
can never leave an incident without its message or a message without its incident. From then on
a row only moves the way `vocabulary.OUTBOX_STATES` says: pending -> claimed -> sent; claimed ->
pending (retry later) or dead (kept and reported until someone re-queues it). Alerts, the digest
and the CLI create and re-queue rows here; the delivery worker (`delivery.py`) claims them and
records what Slack answered here. Keeping every state change in one module keeps the promise
"never lost, never sent twice" checkable in one place.

Every function takes the caller's session and commits nothing: the caller owns the transaction
(an enqueue joins the incident change's; delivery commits each claim before talking to Slack).

Which rows may be claimed is decided by `_claimable` alone, and which row a claim holds by
`held_row` alone, so fencing claims with tokens or leases changes those two functions only.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select, update
from sqlalchemy.orm import Session

from siaga.incidents import add_event
from siaga.store import DeliveryAttempt, Incident, IncidentThread, OutboxMessage
from siaga.vocabulary import OUTBOX_STATES

log = logging.getLogger(__name__)

PENDING, CLAIMED, SENT, DEAD = OUTBOX_STATES
# What one delivery attempt came to (`delivery_attempts.outcome`): posted now, found already
# posted by an earlier attempt, failed before reaching Slack, unknown (it may have landed), or
# refused for good by Slack.
OUTCOMES = ("sent", "found", "failed", "unknown", "dead")
DELIVERED = ("sent", "found")

MAX_ATTEMPTS = 8
# A claim lives only while one message is sent (client timeout x bounded retries, Retry-After
# waits capped at a minute), so one held longer belongs to a worker that died.
STALE_CLAIM = timedelta(minutes=3)


@dataclass(frozen=True)
class Claim:
    """One worker's hold on one row while it sends it; only the holder records the outcome."""

    row_id: int
    worker: str
    at: datetime


# --- writing rows --------------------------------------------------------------------------------


def exists(session: Session, dedup_key: str) -> bool:
    """Is a message with this key already in the outbox (in any state)? Lets a caller skip
    building an expensive message that `enqueue` would not write."""
    return session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedup_key == dedup_key)) is not None


def enqueue(
    session: Session,
    *,
    dedup_key: str,
    receiver: str,
    channel: str,
    kind: str,
    payload: dict[str, Any],
    due: datetime,
    now: datetime,
    incident_id: int | None = None,
) -> bool:
    """Write one pending message unless one with `dedup_key` exists; True when written.

    The key names what the message is about (an incident change for one receiver, a day's
    digest), so re-running the stage that wrote it writes nothing new. `due` is when it may
    first be sent (later than `now` while a receiver's quiet hours hold it)."""
    if exists(session, dedup_key):
        return False
    session.add(OutboxMessage(
        dedup_key=dedup_key, incident_id=incident_id, receiver=receiver, channel=channel, kind=kind,
        payload=payload, state=PENDING, next_attempt_at=due, created_at=now,
    ))
    return True


def requeue(session: Session, row_id: int, now: datetime) -> bool:
    """Send a dead letter again (`siaga outbox --retry`); False when the row is not dead. It
    counts as retried (attempts = 1), so delivery asks Slack before posting it again."""
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == row_id, OutboxMessage.state == DEAD)
        .values(state=PENDING, attempts=1, next_attempt_at=now)
    )
    return result.rowcount == 1


# --- claiming ------------------------------------------------------------------------------------


def due_ids(session: Session, now: datetime) -> list[int]:
    """Ids of the pending rows due at `now`, oldest first (so a thread's first message goes first)."""
    return list(session.scalars(
        select(OutboxMessage.id)
        .where(OutboxMessage.state == PENDING, OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.id)
    ))


def release_stale_claims(session: Session, now: datetime) -> int:
    """A claim held longer than STALE_CLAIM belongs to a worker that died mid-send: release it;
    its attempt count makes the next sender check Slack before posting again. Returns how many."""
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.state == CLAIMED, OutboxMessage.claimed_at < now - STALE_CLAIM)
        .values(state=PENDING, claimed_by=None, last_error="claim expired: outcome unknown")
    )
    return result.rowcount


def _claimable(row_id: int) -> ColumnElement[bool]:
    """The one rule for which row a worker may take: this predicate, checked inside the same
    UPDATE that takes it, so of two workers at once exactly one wins."""
    return and_(OutboxMessage.id == row_id, OutboxMessage.state == PENDING)


def claim(session: Session, row_id: int, worker: str, now: datetime) -> Claim | None:
    """Take row `row_id` for `worker`; None when another worker has it or it is not pending.
    Commit before sending, so other workers see the claim."""
    result = session.execute(
        update(OutboxMessage).where(_claimable(row_id)).values(state=CLAIMED, claimed_by=worker, claimed_at=now)
    )
    return Claim(row_id, worker, now) if result.rowcount == 1 else None


def held_row(session: Session, claim: Claim) -> OutboxMessage:
    """The row `claim` holds, to read what to send and to record what happened."""
    return session.get(OutboxMessage, claim.row_id)


def release(session: Session, claim: Claim) -> None:
    """Hand a claimed row back untried (it cannot go out yet); no attempt is counted."""
    row = held_row(session, claim)
    row.state, row.claimed_by = PENDING, None


# --- recording what happened -----------------------------------------------------------------------


def record_outcome(
    session: Session,
    claim: Claim,
    outcome: str,
    now: datetime,
    *,
    ts: str | None = None,
    error: str | None = None,
    thread_ts: str | None = None,
) -> str:
    """Record one attempt (`OUTCOMES`) on the claimed row and move it on; returns its new state.

    Delivered (`sent`, `found`): sent, with Slack's `ts`; an incident's first message to a
    channel becomes that channel's thread (`thread_ts` is the thread the message was sent in, if
    any). Otherwise: dead when Slack refused it for good or after MAX_ATTEMPTS, else pending
    again after `backoff`. Incident messages put both ends on the incident's timeline."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome: {outcome!r} is not one of {OUTCOMES}")
    row = held_row(session, claim)
    row.attempts += 1
    session.add(DeliveryAttempt(outbox_id=row.id, at=now, worker=claim.worker, outcome=outcome, error=error, ts=ts))
    incident = session.get(Incident, row.incident_id) if row.incident_id is not None else None
    if outcome in DELIVERED:
        row.state, row.sent_ts, row.sent_at, row.last_error = SENT, ts, now, None
        if incident is not None and (row.kind == "new" or thread_ts is None):
            _remember_thread(session, row, ts)
        _event(session, incident, now, "delivered",
               {"channel": row.channel, "receiver": row.receiver, "kind": row.kind, "ts": ts, "attempts": row.attempts})
        return row.state
    row.last_error = error
    row.claimed_by = None
    if outcome == "dead" or row.attempts >= MAX_ATTEMPTS:
        row.state = DEAD
        _event(session, incident, now, "delivery_failed",
               {"channel": row.channel, "kind": row.kind, "error": error, "attempts": row.attempts})
        log.error("outbox %s to %s dead-lettered after %d attempt(s): %s", row.id, row.channel, row.attempts, error)
    else:
        row.state = PENDING
        row.next_attempt_at = now + backoff(row.attempts)
        log.warning("outbox %s to %s failed (%s), retry at %s", row.id, row.channel, error, row.next_attempt_at.isoformat())
    return row.state


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min ... capped at 30 min."""
    return min(timedelta(seconds=30) * (2 ** max(attempts - 1, 0)), timedelta(minutes=30))


def _event(session: Session, incident: Incident | None, at: datetime, kind: str, detail: dict[str, Any]) -> None:
    """A timeline event, for messages that belong to an incident (a digest has no timeline;
    its fate is in the outbox and delivery_attempts)."""
    if incident is not None:
        add_event(session, incident, at, kind, detail)


# --- threads: an incident's first message in a channel, which its later messages reply to -------


def thread_ts(session: Session, row: OutboxMessage) -> str | None:
    """The `ts` of the thread `row` replies in: its incident's first message in its channel,
    once that is out. None for a digest (about no incident) and before the first message."""
    if row.incident_id is None:
        return None
    return session.scalar(
        select(IncidentThread.ts).where(IncidentThread.incident_id == row.incident_id, IncidentThread.channel == row.channel)
    )


def parent_dead(session: Session, row: OutboxMessage) -> bool:
    """Did the incident's first message to this channel die? Then updates go out on their own
    rather than wait for a thread that will never exist."""
    return session.scalar(
        select(OutboxMessage.id).where(
            OutboxMessage.incident_id == row.incident_id,
            OutboxMessage.channel == row.channel,
            OutboxMessage.kind == "new",
            OutboxMessage.state == DEAD,
        )
    ) is not None


def _remember_thread(session: Session, row: OutboxMessage, ts: str | None) -> None:
    if ts is None or thread_ts(session, row) is not None:
        return
    session.add(IncidentThread(incident_id=row.incident_id, channel=row.channel, ts=ts))


# --- reading -------------------------------------------------------------------------------------


def summary(session: Session) -> dict[str, int]:
    """Outbox rows per state."""
    return dict(session.execute(select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)).all())


def dead_letters(session: Session, newest_first: bool = False) -> list[dict[str, Any]]:
    """Every dead letter: what it was, where to, and the last error (for `siaga outbox` and the
    managers' digest)."""
    order = OutboxMessage.id.desc() if newest_first else OutboxMessage.id
    rows = session.scalars(select(OutboxMessage).where(OutboxMessage.state == DEAD).order_by(order))
    return [{"id": r.id, "incident": r.incident_id, "channel": r.channel, "kind": r.kind, "attempts": r.attempts,
             "error": r.last_error} for r in rows]
