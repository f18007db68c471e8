"""The outbox: the only module that writes outbox rows or moves them between delivery states.

A message to Slack is a row written in the same transaction as the change it reports, so a crash
can never leave an incident without its message or a message without its incident. From then on
a row only moves the way `vocabulary.OUTBOX_STATES` says: pending -> claimed -> sent; claimed ->
pending (retry later) or dead (kept and reported until someone re-queues it); a claim whose
lease ran out is taken by another worker (claimed -> claimed, with a new token). Alerts, the digest
and the CLI create and re-queue rows here; the delivery worker (`delivery.py`) claims them and
records what Slack answered here. Keeping every state change in one module keeps the promise
"never lost, never sent twice" checkable in one place.

Every function takes the caller's session and commits nothing: the caller owns the transaction
(an enqueue joins the incident change's; delivery commits each claim before talking to Slack).

Claims are fenced. Each claim writes a fresh token and a lease in real (wall-clock) time, not the
run's logical time, so a deliver run queued late does not mistake a live claim for a dead one;
every later write by the holder is an UPDATE conditional on its token (`_held`), so a worker that
lost its claim records nothing. Which rows may be taken is decided by `_free` alone: pending or
expired-claimed, due, and not held. A row whose earlier attempt may have reached Slack (its claim
expired, its outcome was unknown, it was re-queued) carries `may_be_posted`, and delivery looks it
up in Slack before posting it again or dead-lettering it.
"""
from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from siaga.messages import HOLD_KEY
from siaga.redaction import redact_text
from siaga.store import DeliveryAttempt, Incident, IncidentThread, OutboxMessage, utcnow
from siaga.vocabulary import OUTBOX_STATES

log = logging.getLogger(__name__)

PENDING, CLAIMED, SENT, DEAD = OUTBOX_STATES
# What one delivery attempt came to (`delivery_attempts.outcome`): posted now, found already
# posted by an earlier attempt, failed before reaching Slack, unknown (it may have landed), or
# refused for good by Slack.
OUTCOMES = ("sent", "found", "failed", "unknown", "dead")
DELIVERED = ("sent", "found")

MAX_ATTEMPTS = 8


@dataclass(frozen=True)
class Claim:
    """One worker's hold on one row while it sends it. `token` fences it: only the worker whose
    token is on the row may record an outcome, so a worker that lost its lease (it stalled, its
    claim expired and another took the row) changes nothing. `held_until` is wall-clock time."""

    row_id: int
    worker: str
    token: str
    held_until: datetime


def wall_clock() -> datetime:
    """Real time, for leases. Not the run's logical time: two deliver runs queued minutes apart
    run at the same real time, and a lease is about how long a worker may really be busy."""
    return utcnow()


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
    counts as retried (attempts = 1) and as possibly in Slack, so delivery asks Slack first."""
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == row_id, OutboxMessage.state == DEAD)
        .values(state=PENDING, attempts=1, next_attempt_at=now, may_be_posted=True, held_until=None,
                claim_token=None, claimed_by=None)
    )
    return result.rowcount == 1


# --- claiming ------------------------------------------------------------------------------------


def _free(now: datetime, wall: datetime) -> ColumnElement[bool]:
    """Rows a worker may take at logical time `now` and real time `wall`: pending, or claimed
    by a worker whose lease ran out (it died or stalled), and in both cases due
    (`next_attempt_at`, logical time) and no longer held (`held_until`, real time: a live
    lease, or the time Slack may still take to store a post whose outcome is unknown)."""
    return and_(
        OutboxMessage.state.in_((PENDING, CLAIMED)),
        OutboxMessage.next_attempt_at <= now,
        or_(OutboxMessage.held_until.is_(None), OutboxMessage.held_until <= wall),
    )


def due_ids(session: Session, now: datetime, wall: datetime | None = None) -> list[int]:
    """Ids of the rows a worker may take now, oldest first (so a thread's first message goes first)."""
    return list(session.scalars(
        select(OutboxMessage.id).where(_free(now, wall or wall_clock())).order_by(OutboxMessage.id)
    ))


def hasten_held(session: Session, now: datetime) -> int:
    """Make due now every message that quiet hours still hold (pending, never tried, due later)
    while a later message of its incident to that channel is due: the later one waits for it
    (`earlier_unsent`; the first message is the thread it replies in), so an escalation past
    the receiver's override severity would wait for the end of the quiet hours the routing
    said it must not wait for. Returns how many were made due."""
    later = aliased(OutboxMessage)
    due_later = select(later.id).where(
        later.incident_id == OutboxMessage.incident_id, later.channel == OutboxMessage.channel,
        later.id > OutboxMessage.id, later.state.in_((PENDING, CLAIMED)), later.next_attempt_at <= now,
    )
    result = session.execute(update(OutboxMessage).where(
        OutboxMessage.incident_id.is_not(None), OutboxMessage.state == PENDING,
        OutboxMessage.attempts == 0, OutboxMessage.next_attempt_at > now, due_later.exists(),
    ).values(next_attempt_at=now).execution_options(synchronize_session=False))
    if result.rowcount:
        log.info("outbox: %d held message(s) made due now: a later message of their incident is due", result.rowcount)
    return result.rowcount


def _claimable(row_id: int, now: datetime, wall: datetime) -> ColumnElement[bool]:
    """The one rule for which row a worker may take: this predicate, checked inside the same
    UPDATE that takes it, so of two workers at once exactly one wins."""
    return and_(OutboxMessage.id == row_id, _free(now, wall))


def claim(session: Session, row_id: int, worker: str, now: datetime, lease: timedelta,
          wall: datetime | None = None) -> Claim | None:
    """Take row `row_id` for `worker` for `lease` of real time; None when it is not free (another
    worker holds it, it is not due, sent or dead). Taking over an expired claim marks the row as
    possibly in Slack: the worker that held it may have posted before it died. Commit before
    sending, so other workers see the claim."""
    wall = wall or wall_clock()
    token = uuid.uuid4().hex
    held_until = wall + lease
    result = session.execute(
        update(OutboxMessage).where(_claimable(row_id, now, wall)).values(
            state=CLAIMED, claimed_by=worker, claimed_at=wall, claim_token=token, held_until=held_until,
            may_be_posted=or_(OutboxMessage.may_be_posted, OutboxMessage.state == CLAIMED),
        )
    )
    return Claim(row_id, worker, token, held_until) if result.rowcount == 1 else None


def _held(claim: Claim) -> ColumnElement[bool]:
    """Is the row still held by `claim`? Every write by a holder is conditional on this."""
    return and_(OutboxMessage.id == claim.row_id, OutboxMessage.state == CLAIMED,
                OutboxMessage.claim_token == claim.token)


def held_row(session: Session, claim: Claim) -> OutboxMessage | None:
    """The row `claim` holds, to read what to send; None when the claim was lost."""
    return session.scalar(select(OutboxMessage).where(_held(claim)))


def renew(session: Session, claim: Claim, lease: timedelta, wall: datetime | None = None) -> Claim | None:
    """Extend the holder's lease by `lease` from now, before the next call to Slack; None (and
    nothing changed) when the claim was lost: the caller must then not call Slack."""
    wall = wall or wall_clock()
    held_until = wall + lease
    result = session.execute(update(OutboxMessage).where(_held(claim)).values(held_until=held_until))
    if result.rowcount != 1:
        log.warning("outbox %s: %s lost its claim (lease expired, another worker took it): not sending",
                    claim.row_id, claim.worker)
        return None
    return Claim(claim.row_id, claim.worker, claim.token, held_until)


def release(session: Session, claim: Claim) -> bool:
    """Hand a claimed row back untried (it cannot go out yet); no attempt is counted. False
    when the claim was lost (the row is left alone)."""
    result = session.execute(update(OutboxMessage).where(_held(claim)).values(
        state=PENDING, claimed_by=None, claim_token=None, held_until=None))
    return result.rowcount == 1


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
    looked: bool = False,
    late_store: timedelta = timedelta(0),
    wall: datetime | None = None,
    new_thread: bool = False,
    not_before: timedelta | None = None,
) -> str | None:
    """Record one attempt (`OUTCOMES`) on the claimed row and move it on; returns its new state,
    or None when `claim` no longer holds the row (a lost race: logged, the row left alone).

    Delivered (`sent`, `found`): sent, with Slack's `ts`; an incident's first message to a
    channel becomes that channel's thread (`thread_ts` is the thread the message was sent in, if
    any). Otherwise: dead when Slack refused it for good or after MAX_ATTEMPTS, else pending
    again after `backoff`. `looked`: this attempt asked Slack and the message was not there, so
    earlier attempts did not land. After an `unknown` outcome the row is held for `late_store`
    of real time (Slack may still store that post) and then looked up before anything else; a
    row that may be in Slack is never dead-lettered on its last attempt without that look.
    `new_thread`: it was sent on its own because its thread's first message was deleted in
    Slack, so it is the channel's thread from now on. `not_before`: how long Slack asked us to
    wait (a rate limit's `Retry-After`): the retry is no sooner, nor later than MAX_BACKOFF.
    Incident messages put both ends on the incident's timeline."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome: {outcome!r} is not one of {OUTCOMES}")
    row = held_row(session, claim)
    if row is None:
        log.warning("outbox %s: %s lost its claim before recording %r (another worker took the row); "
                    "left alone", claim.row_id, claim.worker, outcome)
        return None
    attempts = row.attempts + 1
    values: dict[str, Any] = {"attempts": attempts, "claimed_by": None, "claim_token": None, "held_until": None}
    if outcome in DELIVERED:
        values.update(state=SENT, sent_ts=ts, sent_at=now, last_error=None, may_be_posted=False)
    else:
        may_be_posted = outcome == "unknown" or (row.may_be_posted and not looked)
        values.update(last_error=error, may_be_posted=may_be_posted)
        if outcome == "dead" or (attempts >= MAX_ATTEMPTS and not may_be_posted):
            values["state"] = DEAD
        else:  # after the last attempt, a row that may be in Slack comes back once more to be looked up
            wait = max(backoff(attempts), min(not_before or timedelta(0), MAX_BACKOFF))
            values.update(state=PENDING, next_attempt_at=now + wait)
            if outcome == "unknown":
                values["held_until"] = (wall or wall_clock()) + late_store
    if session.execute(update(OutboxMessage).where(_held(claim)).values(**values)).rowcount != 1:
        log.warning("outbox %s: %s lost its claim while recording %r; left alone", claim.row_id, claim.worker, outcome)
        return None
    session.refresh(row)
    session.add(DeliveryAttempt(outbox_id=row.id, at=now, worker=claim.worker, outcome=outcome, error=error, ts=ts))
    incident = session.get(Incident, row.incident_id) if row.incident_id is not None else None
    if row.state == SENT:
        if incident is not None and (row.kind == "new" or thread_ts is None or new_thread):
            _remember_thread(session, row, ts, replace=new_thread)
        _event(session, incident, now, "delivered",
               {"channel": row.channel, "receiver": row.receiver, "kind": row.kind, "ts": ts, "attempts": row.attempts})
        held = (row.payload or {}).get(HOLD_KEY)
        if held:  # quiet hours held it: its release goes on the timeline with a note
            early = now < datetime.fromisoformat(held["until"])  # `hasten_held`
            _event(session, incident, now, "released", {
                "channel": row.channel, "receiver": row.receiver, "kind": row.kind, **held,
                "note": "held by quiet hours, delivered early: a later message of the incident was not held" if early
                else "held by quiet hours, delivered when they ended",
            })
    elif row.state == DEAD:
        _event(session, incident, now, "delivery_failed",
               {"channel": row.channel, "kind": row.kind, "error": error, "attempts": row.attempts})
        log.error("outbox %s to %s dead-lettered after %d attempt(s): %s", row.id, row.channel, row.attempts, error)
    else:
        log.warning("outbox %s to %s failed (%s), retry at %s%s", row.id, row.channel, error,
                    row.next_attempt_at.isoformat(), ", after a look in Slack" if row.may_be_posted else "")
    return row.state


MAX_BACKOFF = timedelta(minutes=30)


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min ... capped at 30 min."""
    return min(timedelta(seconds=30) * (2 ** max(attempts - 1, 0)), MAX_BACKOFF)


def _event(session: Session, incident: Incident | None, at: datetime, kind: str, detail: dict[str, Any]) -> None:
    """A timeline event, for messages that belong to an incident (a digest has no timeline;
    its fate is in the outbox and delivery_attempts)."""
    if incident is not None:
        # Imported here: `incidents` pulls in the statistics stack (scipy, ~2 s), which a deliver
        # process that records no incident event (and every chaos worker) should not pay for.
        from siaga.incidents import add_event

        add_event(session, incident, at, kind, detail)


# --- threads: an incident's first message in a channel, which its later messages reply to -------


def marker_key(row: OutboxMessage) -> str:
    """What a post carries beside its row's id (`slackclient.outbox_metadata`), so a look in
    Slack tells this row's post from another database's row of the same id (one restored from a
    backup, re-created, a second deployment on the channel): what it is and when it was written."""
    return hashlib.sha256(f"{row.dedup_key}\n{row.created_at.isoformat()}".encode()).hexdigest()[:16]


def thread_ts(session: Session, row: OutboxMessage) -> str | None:
    """The `ts` of the thread `row` replies in: its incident's first message in its channel,
    once that is out. None for a digest (about no incident) and before the first message."""
    if row.incident_id is None:
        return None
    return session.scalar(
        select(IncidentThread.ts).where(IncidentThread.incident_id == row.incident_id, IncidentThread.channel == row.channel)
    )


def earlier_unsent(session: Session, row: OutboxMessage) -> bool:
    """Is an earlier message of the row's incident to its channel still to go (pending, or being
    sent)? Then the row waits for it, so a thread reads in the order things happened: an
    escalation whose post failed once went out after the incident's resolution, broadcast to
    the channel, telling the officers that a resolved incident had got worse. A dead letter
    does not hold the messages after it."""
    return session.scalar(select(OutboxMessage.id).where(
        OutboxMessage.incident_id == row.incident_id, OutboxMessage.channel == row.channel,
        OutboxMessage.id < row.id, OutboxMessage.state.in_((PENDING, CLAIMED))).limit(1)) is not None


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


def _remember_thread(session: Session, row: OutboxMessage, ts: str | None, replace: bool = False) -> None:
    """Make `ts` the incident's thread in the row's channel, unless it has one (or `replace`:
    the one it had was deleted in Slack)."""
    if ts is None:
        return
    if replace:
        session.execute(update(IncidentThread).where(IncidentThread.incident_id == row.incident_id,
                                                     IncidentThread.channel == row.channel).values(ts=ts))
    if thread_ts(session, row) is None:
        session.add(IncidentThread(incident_id=row.incident_id, channel=row.channel, ts=ts))


# --- reading -------------------------------------------------------------------------------------


def summary(session: Session) -> dict[str, int]:
    """Outbox rows per state."""
    return dict(session.execute(select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)).all())


def dead_letters(session: Session, newest_first: bool = False) -> list[dict[str, Any]]:
    """Every dead letter: what it was, where to, and the last error (for `siaga outbox` and the
    managers' digest), redacted: an error may quote what a server answered, a token included."""
    order = OutboxMessage.id.desc() if newest_first else OutboxMessage.id
    rows = session.scalars(select(OutboxMessage).where(OutboxMessage.state == DEAD).order_by(order))
    return [{"id": r.id, "incident": r.incident_id, "channel": r.channel, "kind": r.kind, "attempts": r.attempts,
             "error": None if r.last_error is None else redact_text(r.last_error)} for r in rows]
