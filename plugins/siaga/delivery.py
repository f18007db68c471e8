"""The delivery worker: send every due outbox row to Slack once.

Each row is claimed in its own committed transaction before Slack is called (`outbox.claim`, a
conditional update: of two deliver tasks at once exactly one wins a row), then sent, then the
outcome recorded in another transaction (`outbox.record_outcome`), so the database never holds
a transaction open across a network call. A row is marked sent only after Slack answered with a
`ts`. Before re-posting a row whose earlier attempt may have landed (attempts > 0) it asks Slack
whether the message is already there (`slackclient.find_posted`, by the outbox marker every post
carries). An incident's later messages reply in the thread of its first message in that
channel, and wait for it; an escalation is also shown in the channel.

Every state change goes through `outbox`; every Slack call through `slackclient`.
"""
from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web import WebClient
from sqlalchemy.orm import Session

from siaga import outbox
from siaga.slackclient import classify_error, find_posted, outbox_metadata, post_message
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
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Message:
    """What a claimed row says to send, read in one transaction and used after it closed."""

    channel: str
    payload: dict[str, Any]
    kind: str
    attempts: int
    thread_ts: str | None


def worker_id() -> str:
    """Who holds a claim: host, process and a random part (two runs in one process differ)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def deliver(client: WebClient, now: datetime | None = None, db_url: str | None = None, worker: str | None = None) -> DeliverReport:
    """Send every due outbox row once. Safe to run twice at the same time and to re-run."""
    now = now or utcnow()
    worker = worker or worker_id()
    report = DeliverReport()
    with session_scope(db_url) as session:
        outbox.release_stale_claims(session, now)
    with session_scope(db_url) as session:
        due = outbox.due_ids(session, now)
    for row_id in due:
        with session_scope(db_url) as session:
            claim = outbox.claim(session, row_id, worker, now)
        if claim is None:
            continue  # another deliver task has it
        _deliver_one(client, claim, now, db_url, report)
    if report.dead:
        log.error("outbox: %d message(s) dead-lettered; see `siaga outbox` and the incidents' timelines", report.dead)
    log.info("deliver: %s", report)
    return report


def _deliver_one(client: WebClient, claim: outbox.Claim, now: datetime, db_url: str | None, report: DeliverReport) -> None:
    with session_scope(db_url) as session:
        message = _read_or_release(session, claim)
    if message is None:
        report.waiting_for_thread += 1
        return
    outcome, ts, error = _send(client, claim.row_id, message)
    with session_scope(db_url) as session:
        state = outbox.record_outcome(session, claim, outcome, now, ts=ts, error=error, thread_ts=message.thread_ts)
    if outcome == "sent":
        report.sent += 1
    elif outcome == "found":
        report.found_already_sent += 1
    else:
        if state == outbox.DEAD:
            report.dead += 1
        else:
            report.retry_later += 1
        report.errors.append(f"{claim.row_id}: {error}")


def _read_or_release(session: Session, claim: outbox.Claim) -> _Message | None:
    """What to send, or None (the row handed back) when it is an incident's update whose first
    message in that channel is not out yet; if that first message died, it goes out alone."""
    row = outbox.held_row(session, claim)
    thread_ts = outbox.thread_ts(session, row)
    threaded = row.incident_id is not None  # a digest is about no incident: no thread
    if threaded and row.kind != "new" and thread_ts is None and not outbox.parent_dead(session, row):
        outbox.release(session, claim)
        return None
    return _Message(row.channel, row.payload, row.kind, row.attempts, thread_ts)


def _send(client: WebClient, row_id: int, message: _Message) -> tuple[str, str | None, str | None]:
    """(outcome, ts, error) of one attempt: look first when an earlier attempt may have landed,
    else post (an escalation broadcast to the channel from its thread)."""
    outcome, ts, error = "failed", None, None
    try:
        if message.attempts > 0:  # an earlier attempt may have landed: look before posting again
            ts = find_posted(client, message.channel, str(row_id), thread_ts=message.thread_ts)
            outcome = "found" if ts else outcome
        if ts is None:
            ts = post_message(
                client, message.channel, message.payload, thread_ts=message.thread_ts,
                broadcast=message.kind == "escalation", metadata=outbox_metadata(row_id),
            )
            outcome = "sent"
    except Exception as exc:  # every failure is recorded; classify_error says what it means
        error = _describe(exc)
        outcome = _OUTCOME_OF_ERROR.get(classify_error(exc), "unknown")
    return outcome, ts, error


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError) and exc.response is not None:
        return f"slack error: {exc.response.get('error')} (HTTP {exc.response.status_code})"
    return f"{type(exc).__name__}: {exc}"
