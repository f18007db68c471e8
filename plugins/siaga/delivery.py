"""The delivery worker: send every due outbox row to Slack once.

Each row is claimed in its own committed transaction before Slack is called (`outbox.claim`, a
conditional update: of two deliver tasks at once exactly one wins a row), then sent, then the
outcome recorded in another transaction (`outbox.record_outcome`), so the database never holds
a transaction open across a network call. A claim is fenced by a token and leased for real time
long enough for one Slack call at its slowest (`slackclient.call_budget`) plus the time Slack
may still store a post the client gave up on; the holder renews it before posting and records
only while it still holds it. A row is marked sent only after Slack answered with a `ts`.
Before re-posting a row whose earlier attempt may have landed (`may_be_posted`: its claim
expired, its outcome was unknown: a timeout, a lost answer, a 5xx), and before giving one up,
it asks Slack whether the message is already there (`slackclient.find_posted`, by the outbox
marker every post carries, with a key of its row). An incident's later messages reply in the
thread of its first message in that channel, in order: each waits for the earlier ones still to
go (a held first message is made due when a later one is, `outbox.hasten_held`); an escalation
is also shown in the channel; a reply whose thread was deleted in Slack goes out on its own and
becomes the thread. A rate limit the client could not wait out ends the run's posting, and the
row is retried no sooner than Slack's `Retry-After`.

Every state change goes through `outbox`; every Slack call through `slackclient`.
"""
from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.web import WebClient
from sqlalchemy.orm import Session

from siaga import outbox
from siaga.slackclient import (
    LATE_STORE_SECONDS,
    call_budget,
    classify_error,
    describe_error,
    find_posted,
    outbox_metadata,
    post_message,
    rate_limited_for,
    thread_gone,
)
from siaga.store import session_scope, utcnow

log = logging.getLogger(__name__)

# How `slackclient.classify_error` maps onto an attempt's outcome: a message Slack refused for
# good is dead at once; one that never reached Slack is retried; anything else may have landed.
_OUTCOME_OF_ERROR = {"permanent": "dead", "transient": "failed"}


@dataclass
class DeliverReport:
    """What one deliver run did, by row (the DAG task's result)."""

    sent: int = 0
    found_already_sent: int = 0
    retry_later: int = 0
    dead: int = 0
    waiting_for_thread: int = 0
    lost_claims: int = 0
    left: int = 0  # due rows not taken because the run's time budget ran out
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Message:
    """What a claimed row says to send, read in one transaction and used after it closed."""

    channel: str
    payload: dict[str, Any]
    kind: str
    attempts: int
    thread_ts: str | None
    may_be_posted: bool
    last_error: str | None
    key: str  # `outbox.marker_key`, marked on the post beside the row's id

    @property
    def last_look(self) -> bool:
        """Out of attempts, but an earlier one may have landed: only look it up, then give up."""
        return self.attempts >= outbox.MAX_ATTEMPTS


@dataclass(frozen=True)
class _Attempt:
    """What one attempt came to: an outcome (`outbox.OUTCOMES`), or None when the claim was lost
    before anything was posted; `looked`: Slack was asked and the message was not there."""

    outcome: str | None
    ts: str | None = None
    error: str | None = None
    looked: bool = False
    new_thread: bool = False  # posted on its own because its thread was deleted in Slack: the new thread
    rate_limited: float | None = None  # Slack's rate limit: the seconds it asked to wait


@dataclass(frozen=True)
class _Run:
    """One run's fixed settings: the client, its logical time, who it is, how long a claim must
    last (one Slack call at its slowest plus the time Slack may still store a post after the
    client gave up), and where the database is."""

    client: WebClient
    now: datetime
    worker: str
    lease: timedelta
    late_store: timedelta
    db_url: str | None


def worker_id() -> str:
    """Who holds a claim: host, process and a random part (two runs in one process differ)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def deliver(
    client: WebClient,
    now: datetime | None = None,
    db_url: str | None = None,
    worker: str | None = None,
    *,
    late_store: float = LATE_STORE_SECONDS,
    budget: float | None = None,
) -> DeliverReport:
    """Send every due outbox row once. Safe to run twice at the same time, to re-run, and to run
    late (`now`, the run's logical time, decides what is due; leases run on real time).
    `late_store`: seconds Slack may still store a post after the client gave up on it.
    `budget`: seconds after which no further row is taken (the one in flight finishes); the
    rows left stay due for the next run (`report.left`)."""
    started = time.monotonic()
    late = timedelta(seconds=late_store)
    run = _Run(client, now or utcnow(), worker or worker_id(), timedelta(seconds=call_budget(client)) + late,
               late, db_url)
    report = DeliverReport()
    with session_scope(db_url) as session:
        outbox.hasten_held(session, run.now)
        due = outbox.due_ids(session, run.now)
    for n, row_id in enumerate(due):
        if budget is not None and time.monotonic() - started >= budget:
            report.left = len(due) - n
            break
        with session_scope(db_url) as session:
            claim = outbox.claim(session, row_id, run.worker, run.now, run.lease)
        if claim is None:
            continue  # another deliver task has it, or it is no longer due
        if _deliver_one(run, claim, report):
            # Slack rate-limits this app (beyond what the client waits out): every further call
            # now is refused too and prolongs the limit; the rest stay due for a later run
            report.left = len(due) - n - 1
            log.warning("deliver: Slack rate-limited the app; %d due message(s) left for a later run", report.left)
            break
    if report.dead:
        log.error("outbox: %d message(s) dead-lettered; see `siaga outbox` and the incidents' timelines", report.dead)
    log.info("deliver: %s", report)
    return report


def _deliver_one(run: _Run, claim: outbox.Claim, report: DeliverReport) -> bool:
    """Send one claimed row and count what came of it; True when Slack rate-limited the call."""
    with session_scope(run.db_url) as session:
        message = _read_or_release(session, claim)
    if message is _LOST:
        report.lost_claims += 1
        return False
    if message is None:
        report.waiting_for_thread += 1
        return False
    assert isinstance(message, _Message)
    attempt = _send(run, claim, message)
    state = None
    if attempt.outcome is not None:
        with session_scope(run.db_url) as session:
            state = outbox.record_outcome(
                session, claim, attempt.outcome, run.now, ts=attempt.ts, error=attempt.error,
                thread_ts=message.thread_ts, looked=attempt.looked, late_store=run.late_store,
                new_thread=attempt.new_thread,
                not_before=_not_before(attempt.rate_limited))
    if state is None:
        report.lost_claims += 1
    elif attempt.outcome == "sent":
        report.sent += 1
    elif attempt.outcome == "found":
        report.found_already_sent += 1
    else:
        if state == outbox.DEAD:
            report.dead += 1
        else:
            report.retry_later += 1
        report.errors.append(f"{claim.row_id}: {attempt.error}")
    return attempt.rate_limited is not None


def _not_before(wait: float | None) -> timedelta | None:
    """Slack's `Retry-After` as a wait for the outbox, capped first (a header of 20 digits
    overflowed `timedelta`)."""
    return None if wait is None else timedelta(seconds=min(wait, outbox.MAX_BACKOFF.total_seconds()))


_LOST = object()  # what `_read_or_release` returns when the claim was lost before it was read


def _read_or_release(session: Session, claim: outbox.Claim) -> _Message | object | None:
    """What to send, or None (the row handed back) when an earlier message of its incident to
    that channel is still to go (`outbox.earlier_unsent`: a thread in order), or it is an update
    whose first message in that channel is not out (if that first message died, it goes out alone), or
    `_LOST` when the claim was lost (a stall longer than the lease: the new holder sends it)."""
    row = outbox.held_row(session, claim)
    if row is None:
        return _LOST
    thread_ts = outbox.thread_ts(session, row)
    threaded = row.incident_id is not None  # a digest is about no incident: no thread
    if threaded and (outbox.earlier_unsent(session, row)
                     or (row.kind != "new" and thread_ts is None and not outbox.parent_dead(session, row))):
        outbox.release(session, claim)
        return None
    return _Message(row.channel, row.payload, row.kind, row.attempts, thread_ts, row.may_be_posted, row.last_error,
                    outbox.marker_key(row))


def _send(run: _Run, claim: outbox.Claim, message: _Message) -> _Attempt:
    """One attempt: when an earlier attempt may have landed, look in Slack first (found: done;
    out of attempts: give up only now that Slack says it is not there); then renew the claim and
    post (an escalation broadcast to the channel from its thread). Nothing is posted once the
    claim is lost."""
    looked = False
    if message.may_be_posted or message.last_look:
        try:
            ts = find_posted(run.client, message.channel, str(claim.row_id), thread_ts=message.thread_ts, key=message.key)
        except Exception as exc:  # a look posts nothing: whatever failed, it is retried later
            permanent = classify_error(exc) == "permanent"
            return _Attempt("dead" if permanent else "failed", error=f"could not check Slack: {describe_error(exc)}",
                            rate_limited=rate_limited_for(exc))
        if ts is not None:
            return _Attempt("found", ts=ts)
        looked = True
        if message.last_look:
            return _Attempt("failed", error=f"{message.last_error} (not in Slack)", looked=True)
    attempt = _post(run, claim, message, message.thread_ts, looked)
    if attempt.new_thread:
        # Its thread's first message was deleted in Slack, and Slack posted nothing: rather than
        # dead-letter every later message of the incident (the "resolved" one too), this one
        # goes out on its own, and becomes the thread the next ones reply in.
        log.warning("outbox %s: the thread %s in %s was deleted in Slack: sent on its own, as the incident's new thread",
                    claim.row_id, message.thread_ts, message.channel)
        attempt = _post(run, claim, message, None, looked)
        return replace(attempt, new_thread=attempt.outcome == "sent")
    return attempt


def _post(run: _Run, claim: outbox.Claim, message: _Message, thread_ts: str | None, looked: bool) -> _Attempt:
    """Renew the claim, then post in `thread_ts` (or on its own). An attempt with `new_thread`
    and no outcome: the thread is gone, nothing was posted."""
    with session_scope(run.db_url) as session:
        if outbox.renew(session, claim, run.lease) is None:
            return _Attempt(None)
    try:
        ts = post_message(
            run.client, message.channel, message.payload, thread_ts=thread_ts,
            broadcast=message.kind == "escalation", metadata=outbox_metadata(claim.row_id, message.key),
        )
    except Exception as exc:  # every failure is recorded; classify_error says what it means
        if thread_ts is not None and thread_gone(exc):
            return _Attempt(None, new_thread=True)
        return _Attempt(_OUTCOME_OF_ERROR.get(classify_error(exc), "unknown"), error=describe_error(exc), looked=looked,
                        rate_limited=rate_limited_for(exc))
    return _Attempt("sent", ts=ts, looked=looked)
