"""A delivery chaos harness: deliver runs as separate OS processes against the fake Slack on
127.0.0.1 and a real database, with faults a worker process cannot see coming, and a tally of
what Slack received per outbox row.

The parent process owns the fake Slack (so it can SIGKILL a worker the moment Slack stored its
post) and the database's outbox; each worker is `python -m support.delivery_chaos worker ...`,
which builds the real client (`slackclient.make_client`) and calls the real `delivery.deliver`,
optionally with a fault planted in its own process (the database connection dropped at the
commit that records a delivery). `tally` then counts, by the outbox marker every post carries,
how many times Slack received each row: exactly once is the promise.

`tests/test_delivery_chaos.py` runs each fault kind small on SQLite and PostgreSQL;
`benchmarks/delivery_chaos.py` runs them at volume and prints the counts.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from siaga import outbox, store
from siaga.slackclient import MARKER_KEY, OUTBOX_EVENT

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 1, 15, 1, 0, tzinfo=timezone.utc)
TOKEN = "xoxb-siaga-chaos"
CHANNELS = ("#bpbd-siaga", "#dishub-siaga")
# Client settings of every worker: short, so a fault costs seconds, with each kind of retry on.
TIMEOUT = 1.0
MAX_RETRY_AFTER = 1.0
# Seconds Slack may still store a post after the client gave up (delivery's `late_store`):
# longer than the slowest post the harness lets Slack make.
LATE_STORE = 3.0
FAULTS = ("drop-at-commit",)


# --- the outbox to deliver ------------------------------------------------------------------------


def seed_outbox(db_url: str, incidents: int, updates: int = 1) -> list[int]:
    """`incidents` incidents, each with its first message and `updates` updates to one channel
    (updates reply in the first message's thread), all due at T0. Returns the outbox ids."""
    with store.session_scope(db_url) as session:
        for n in range(incidents):
            incident = store.Incident(
                hazard="flood", level="village", area_code=f"chaos-{n}", area_name="Sangsit", village="Sangsit",
                district="Sawan", state="open", severity="low", posts=5, authors=4, notified_posts=5,
                opened_at=T0, last_activity_at=T0,
            )
            session.add(incident)
            session.flush()
            channel = CHANNELS[n % len(CHANNELS)]
            for k in range(updates + 1):
                kind = "new" if k == 0 else ("escalation" if k % 3 == 2 else "update")
                outbox.enqueue(session, dedup_key=f"chaos:{incident.id}:{k}", incident_id=incident.id, receiver="bpbd",
                               channel=channel, kind=kind, payload={"text": f"incident {n} message {k}", "blocks": []},
                               due=T0, now=T0)
    with store.session_scope(db_url) as session:
        return list(session.scalars(sa.select(store.OutboxMessage.id).order_by(store.OutboxMessage.id)))


# --- worker processes ---------------------------------------------------------------------------


def start_worker(db_url: str, slack_url: str, now: datetime, *, fault: str | None = None,
                 late_store: float = LATE_STORE) -> subprocess.Popen:
    """One deliver run in its own process, at logical time `now`."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "plugins"), str(REPO / "tests")]))
    command = [sys.executable, "-m", "support.delivery_chaos", "worker", "--db", db_url, "--slack", slack_url,
               "--now", now.isoformat(), "--late-store", str(late_store)]
    if fault:
        command += ["--fault", fault]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)


@dataclass
class WorkerResult:
    returncode: int
    report: dict[str, Any] | None
    stderr: str

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL


def finish(proc: subprocess.Popen, timeout: float = 300) -> WorkerResult:
    out, err = proc.communicate(timeout=timeout)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    return WorkerResult(proc.returncode, json.loads(lines[-1]) if lines else None, err)


def run_workers(db_url: str, slack_url: str, times: list[datetime], **kwargs: Any) -> list[WorkerResult]:
    """Deliver runs at these logical times, all at once, each in its own process."""
    procs = [start_worker(db_url, slack_url, now, **kwargs) for now in times]
    return [finish(p) for p in procs]


def unfinished(db_url: str) -> tuple[int, datetime | None]:
    """Rows not yet sent or dead, and the latest real time one of them is held until."""
    with store.session_scope(db_url) as session:
        rows = session.execute(sa.select(store.OutboxMessage.state, store.OutboxMessage.held_until)).all()
    left = [r for r in rows if r.state not in (outbox.SENT, outbox.DEAD)]
    holds = [r.held_until for r in left if r.held_until is not None]
    return len(left), max(holds) if holds else None


def drain(db_url: str, slack_url: str, start: datetime, *, workers: int = 1, max_rounds: int = 40) -> int:
    """Deliver runs, an hour of logical time apart (past any backoff), until every row is sent
    or dead; waits out real-time holds (leases of dead workers, posts Slack may still store).
    Returns how many rounds it took."""
    now = start
    for round_no in range(1, max_rounds + 1):
        left, held_until = unfinished(db_url)
        if left == 0:
            return round_no - 1
        if held_until is not None:
            time.sleep(max(0.0, (held_until - store.utcnow()).total_seconds()) + 0.1)
        results = run_workers(db_url, slack_url, [now] * workers)
        for result in results:
            if result.returncode != 0:
                raise RuntimeError(f"a clean deliver run failed ({result.returncode}):\n{result.stderr[-3000:]}")
        now += timedelta(hours=1)
    raise RuntimeError(f"{unfinished(db_url)[0]} row(s) still not delivered after {max_rounds} rounds")


# --- what Slack received ----------------------------------------------------------------------------


@dataclass
class Tally:
    """Per outbox row, what reached Slack: expected rows, posts received for them, posts beyond
    the first (duplicated), rows with no post (lost), replies outside their incident's thread,
    and rows whose recorded state or ts disagrees with Slack."""

    expected: int = 0
    received: int = 0
    duplicated: int = 0
    lost: int = 0
    outside_thread: int = 0
    misrecorded: int = 0
    problems: list[str] = field(default_factory=list)

    def add(self, other: "Tally") -> None:
        for name in ("expected", "received", "duplicated", "lost", "outside_thread", "misrecorded"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.problems += other.problems

    @property
    def exactly_once(self) -> bool:
        return self.duplicated == self.lost == self.outside_thread == self.misrecorded == 0


def _marker(message: dict[str, Any]) -> str | None:
    metadata = message.get("metadata") or {}
    if metadata.get("event_type") != OUTBOX_EVENT:
        return None
    return str((metadata.get("event_payload") or {}).get(MARKER_KEY))


def tally(messages: list[dict[str, Any]], db_url: str) -> Tally:
    """Compare what the fake Slack stored (`FakeSlack.messages()`) with the outbox."""
    by_marker: dict[str, list[dict[str, Any]]] = {}
    for message in messages:
        marker = _marker(message)
        if marker is not None:
            by_marker.setdefault(marker, []).append(message)
    with store.session_scope(db_url) as session:
        rows = session.scalars(sa.select(store.OutboxMessage).order_by(store.OutboxMessage.id)).all()
        firsts = {(r.incident_id, r.channel): r for r in rows if r.kind == "new"}
    result = Tally(expected=len(rows))
    for row in rows:
        got = by_marker.get(str(row.id), [])
        result.received += len(got)
        if not got:
            result.lost += 1
            result.problems.append(f"row {row.id} ({row.kind}) never reached Slack; state {row.state}: {row.last_error}")
            continue
        if len(got) > 1:
            result.duplicated += len(got) - 1
            result.problems.append(f"row {row.id} ({row.kind}) reached Slack {len(got)} times")
        if row.state != outbox.SENT or row.sent_ts != got[0]["ts"]:
            result.misrecorded += 1
            result.problems.append(f"row {row.id}: recorded {row.state} ts {row.sent_ts}, Slack has {got[0]['ts']}")
        parent = firsts.get((row.incident_id, row.channel))
        if row.kind != "new" and parent is not None:
            parent_posts = by_marker.get(str(parent.id), [])
            if not parent_posts or any(m.get("thread_ts") != parent_posts[0]["ts"] for m in got):
                result.outside_thread += 1
                result.problems.append(f"row {row.id} ({row.kind}) not in its incident's thread")
    return result


def received_counts(messages: list[dict[str, Any]]) -> Counter:
    """Posts per outbox marker."""
    return Counter(m for m in (_marker(x) for x in messages) if m is not None)


# --- the fault kinds ---------------------------------------------------------------------------
# Each seeds `incidents` incidents (a first message and `updates` replies each) into an empty,
# migrated database, acts out its fault against worker processes, delivers what is left with
# clean runs, and returns the tally. `fake` is a running FakeSlack with token TOKEN.

KINDS = ("sigkill after Slack stored", "connection dropped at commit", "late run beside an on-time one",
         "Slack slower than timeout plus backoff", "fault mix, two workers")


def sigkill_after_store(fake: Any, db_url: str, incidents: int, updates: int = 1, kills: int = 2) -> Tally:
    """A worker SIGKILLed the moment Slack stored its post, before it could record it: `kills`
    workers in turn, killed at their first, second or third post."""
    seed_outbox(db_url, incidents, updates)
    target: dict[str, Any] = {"pid": None, "after": 0, "seen": 0}

    def kill_on_store(message: dict[str, Any]) -> None:
        if target["pid"] is None or _marker(message) is None:
            return
        target["seen"] += 1
        if target["seen"] > target["after"]:
            os.kill(target["pid"], signal.SIGKILL)
            target["pid"] = None

    fake.on_message = kill_on_store
    try:
        for n in range(kills):
            proc = start_worker(db_url, fake.base_url, T0)
            target.update(pid=proc.pid, after=n % 3, seen=0)
            result = finish(proc)
            if not result.killed:
                raise RuntimeError(f"worker {n} was not killed ({result.returncode}):\n{result.stderr[-2000:]}")
    finally:
        fake.on_message = None
    drain(db_url, fake.base_url, T0 + timedelta(hours=1))
    return tally(fake.messages(), db_url)


def dropped_at_commit(fake: Any, db_url: str, incidents: int, updates: int = 1, drops: int = 2) -> Tally:
    """The database connection drops at the commit that records a post Slack stored: `drops`
    workers in turn, each crashing on it."""
    seed_outbox(db_url, incidents, updates)
    for n in range(drops):
        result = finish(start_worker(db_url, fake.base_url, T0 + timedelta(hours=n), fault="drop-at-commit"))
        if result.returncode == 0 or "connection dropped at commit" not in result.stderr:
            raise RuntimeError(f"worker {n} did not crash at commit ({result.returncode}):\n{result.stderr[-2000:]}")
        fake.wait_idle()
    drain(db_url, fake.base_url, T0 + timedelta(hours=drops))
    return tally(fake.messages(), db_url)


def late_beside_on_time(fake: Any, db_url: str, incidents: int, updates: int = 1) -> Tally:
    """Two deliver runs at once whose logical times are ten minutes apart (one queued late, or a
    task retry), Slack slow enough (50 ms a post) that their claims overlap."""
    seed_outbox(db_url, incidents, updates)
    fake.fail("chat.postMessage", "delay", times=100_000, seconds=0.05)
    try:
        run_workers(db_url, fake.base_url, [T0 + timedelta(minutes=10), T0])
        run_workers(db_url, fake.base_url, [T0, T0 + timedelta(minutes=10)])  # the updates, now their threads exist
    finally:
        fake.clear_failures()
    drain(db_url, fake.base_url, T0 + timedelta(hours=1))
    return tally(fake.messages(), db_url)


def slower_than_timeout(fake: Any, db_url: str, incidents: int, updates: int = 1) -> Tally:
    """Slack stores each post 2 s after it arrived, past the client's 1 s timeout and its retry
    backoff; a second run an hour later in logical time (past the outbox backoff) starts as soon
    as the first ends."""
    seed_outbox(db_url, incidents, updates)
    fake.fail("chat.postMessage", "delay", times=100_000, seconds=2.0)
    try:
        finish(start_worker(db_url, fake.base_url, T0))
        finish(start_worker(db_url, fake.base_url, T0 + timedelta(hours=1)))
        fake.wait_idle(30)
    finally:
        fake.clear_failures()
    drain(db_url, fake.base_url, T0 + timedelta(hours=2))
    return tally(fake.messages(), db_url)


FAULT_MIX = {"ratelimit": 0.1, "server_error": 0.1, "stored_server_error": 0.05, "hang": 0.05, "reset": 0.05,
             "drop": 0.05, "delay": 0.05}
FAULT_SECONDS = {"ratelimit": 1, "hang": 1.5, "delay": 2.0}
LOOKUP_MIX = {"server_error": 0.1, "hang": 0.05, "reset": 0.05}


def fault_mix(fake: Any, db_url: str, incidents: int, updates: int = 1, seed: int = 1) -> Tally:
    """Two deliver processes at once, round after round, while Slack answers posts with a random
    mix of 429 with Retry-After, 5xx (some after storing the post, as a gateway in front of Slack
    can), hangs, resets, drops (stored, no answer) and slow stores, and looks in history with
    5xx, hangs and resets."""
    seed_outbox(db_url, incidents, updates)
    fake.chaos("chat.postMessage", FAULT_MIX, FAULT_SECONDS, seed=seed)
    fake.chaos("conversations.history", LOOKUP_MIX, FAULT_SECONDS, seed=seed + 1)
    fake.chaos("conversations.replies", LOOKUP_MIX, FAULT_SECONDS, seed=seed + 2)
    try:
        drain(db_url, fake.base_url, T0, workers=2)
        fake.wait_idle(30)
    finally:
        fake.clear_failures()
    return tally(fake.messages(), db_url)


SCENARIOS = dict(zip(KINDS, (sigkill_after_store, dropped_at_commit, late_beside_on_time, slower_than_timeout,
                             fault_mix)))


# --- the worker process ---------------------------------------------------------------------------


def _drop_connection_at_commit(db_url: str) -> None:
    """Fault: the database connection drops at the commit that records this worker's first
    post, after Slack stored it. On PostgreSQL the server ends the session
    (`pg_terminate_backend`) just before the COMMIT is sent, so the COMMIT fails on a dead
    connection; SQLite has no server to lose, so the commit fails with the error a lost database
    file gives (SQLITE_IOERR) before it is made. Either way the worker's transaction is gone and
    the worker crashes, as a task would."""
    import sqlite3

    from sqlalchemy import event

    engine = store.engine_for(db_url)
    state = {"armed": False, "fired": False}
    original = outbox.record_outcome

    def record_outcome(session: Any, claim: Any, outcome: str, *args: Any, **kwargs: Any) -> str | None:
        result = original(session, claim, outcome, *args, **kwargs)
        if outcome == "sent" and result == outbox.SENT and not state["fired"]:
            state["armed"] = True  # a post this worker made, not one it found
        return result

    def on_commit(conn: sa.Connection) -> None:
        if not state["armed"]:
            return
        state["armed"], state["fired"] = False, True
        print("fault: connection dropped at commit (injected)", file=sys.stderr, flush=True)
        if db_url.startswith("sqlite"):
            raise sqlite3.OperationalError("disk I/O error (connection dropped at commit: injected)")
        pid = conn.connection.dbapi_connection.get_backend_pid()
        killer = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
        with killer.connect() as other:
            other.execute(sa.text("select pg_terminate_backend(:pid)"), {"pid": pid})
        killer.dispose()
        time.sleep(0.2)  # the backend is gone before the COMMIT is written to it

    outbox.record_outcome = record_outcome  # delivery calls it as `outbox.record_outcome`
    event.listen(engine, "commit", on_commit)


def worker_main(args: argparse.Namespace) -> int:
    from siaga import delivery
    from siaga.slackclient import make_client

    if args.fault == "drop-at-commit":
        _drop_connection_at_commit(args.db)
    client = make_client(token=TOKEN, base_url=args.slack, timeout=TIMEOUT, conn_id=None, rate_limit_retries=1,
                         max_retry_after=MAX_RETRY_AFTER, server_error_retries=1, connection_retries=1,
                         backoff_factor=0.1)
    report = delivery.deliver(client, datetime.fromisoformat(args.now), args.db, late_store=args.late_store)
    print(json.dumps(asdict(report)), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="support.delivery_chaos")
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser("worker", help="one deliver run (what the harness starts)")
    worker.add_argument("--db", required=True)
    worker.add_argument("--slack", required=True)
    worker.add_argument("--now", required=True)
    worker.add_argument("--late-store", type=float, default=LATE_STORE)
    worker.add_argument("--fault", choices=FAULTS)
    args = parser.parse_args(argv)
    return worker_main(args)


if __name__ == "__main__":
    sys.exit(main())
