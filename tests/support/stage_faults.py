"""Fault injection for the pipeline's stages: the demo scenario through the jobs the DAG tasks
run (`siaga.pipeline`), once fault-free and then with a failure planted at the Nth database
statement of one stage run, which is then run again (as Airflow's retry does) before the
pipeline carries on. `tests/test_stage_faults.py` asserts the final state is the fault-free one.

The state compared (`snapshot`) is every table of Siaga's database with what legitimately
differs between two runs taken out: surrogate ids (foreign keys are replaced by the natural key
of the row they point at: a post's source and id, an incident's series and opening time, an
outbox row's dedup key), wall-clock times (ingestion, claims, leases, row creation) and the ts
Slack handed out; plus what the fake Slack received, per channel and thread.

What legitimately differs after a fault, and is therefore not compared:
- ids on PostgreSQL (`reset_ids`): a sequence is not rolled back, so without the reset an
  incident opened by a retried detect would be "Insiden #3" where the fault-free run says #2;
- a delivery attempt's outcome "found" for "sent": the post reached Slack, recording it failed,
  and the retry found it there by its outbox marker instead of posting it again;
- when a row is sent: a deliver run that failed holding a claim leaves the row held for its
  lease (one Slack call at its slowest plus `LATE_STORE_SECONDS`, about 4.7 min with the default
  client), so the deliver DAG's retries 20 s later skip it and a scheduled run after the lease
  sends it (`LaterWallClock` stands for that wait).

The scenario is the committed demo feed with a few malformed lines added, so quarantine is in
play: they are written to a copy of config/ whose demo source reads that file on the identity
clock.
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Iterator

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from siaga import outbox, pipeline, settings, store
from siaga_dev import demo

# Lines of the feed no post can come from: each must end up quarantined, once.
MALFORMED = (
    "{not json at all",
    json.dumps({"id": "bad-1", "created_at": "yesterday-ish", "text": "banjir", "author": "x"}),
    json.dumps({"id": "bad-2", "created_at": "2026-01-15T07:00:00+08:00", "author": "y"}),
)


def write_config(tmp: Path) -> Path:
    """A copy of config/ whose one enabled source is the demo feed plus MALFORMED lines, spread
    through it so more than one ingest run meets one."""
    config = tmp / "config"
    shutil.copytree(settings.REPO_ROOT / "config", config)
    lines = (settings.REPO_ROOT / "scenarios" / "demo.jsonl").read_text(encoding="utf-8").splitlines()
    step = len(lines) // (len(MALFORMED) + 1)
    for i, bad in enumerate(MALFORMED, start=1):
        lines.insert(i * step + i - 1, bad)
    feed = tmp / "demo-with-bad-lines.jsonl"
    feed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (config / "sources.yaml").write_text(
        "retention_days: 30\nsources:\n"
        f"  - name: demo\n    kind: replay\n    path: {feed}\n    timezone: Asia/Makassar\n"
        "    clock:\n      mode: identity\n",
        encoding="utf-8",
    )
    return config


@dataclass(frozen=True)
class Stage:
    """One stage run of the schedule: a name for messages and the job it calls."""

    name: str
    run: Callable[[], Any]


def schedule(steps: int = 3) -> list[Stage]:
    """What the DAGs run over the scenario: at each replay time ingest, detect (which sends what
    it wrote, `pipeline.detect_and_deliver`) and deliver; then the managers' digest and its
    delivery, and retention a month and more later."""
    times = demo.scenario_times(steps)
    stages: list[Stage] = []
    for when in times:
        stages += [
            Stage(f"ingest@{when:%H:%M}", lambda when=when: pipeline.ingest("demo", when)),
            Stage(f"detect@{when:%H:%M}", lambda when=when: pipeline.detect_and_deliver(when)),
            Stage(f"deliver@{when:%H:%M}", lambda when=when: pipeline.deliver(when)),
        ]
    end = times[-1]
    stages += [
        Stage("digest", lambda: pipeline.digest(end)),
        Stage("deliver-digest", lambda: pipeline.deliver(end + timedelta(minutes=1))),
        Stage("retention", lambda: pipeline.purge(end + timedelta(days=40))),
    ]
    return stages


class InjectedFault(OperationalError):
    """The database connection failing under a stage (what the fault looks like to its code)."""

    def __init__(self, n: int):
        super().__init__(f"injected fault at statement {n}", None, ConnectionError("injected"))


@contextlib.contextmanager
def statements(db_url: str, fail_at: int | None = None) -> Iterator[list[str]]:
    """Count the statements run on `db_url`'s engine (yields their list, growing), raising
    `InjectedFault` instead of running the `fail_at`-th (1-based)."""
    seen: list[str] = []
    engine = store.engine_for(db_url)

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)
        if len(seen) == fail_at:
            raise InjectedFault(fail_at)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


class LaterWallClock:
    """`outbox.wall_clock` moved on by an hour after each fault: a retried deliver run comes
    after the failed run's claims' leases ran out, as the deliver DAG's next run does."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return store.utcnow() + self.offset

    def advance(self) -> None:
        self.offset += timedelta(hours=1)


def run_schedule(db_url: str, stages: list[Stage], clock: LaterWallClock,
                 fault: tuple[int, int] | None = None, kill: bool = False) -> list[int]:
    """Run `stages` in order; `fault` = (stage index, statement number) fails that statement of
    that stage, which is then run again. With `kill`, that stage runs in a child process that is
    SIGKILLed as it is about to run that statement (no rollback, no `except` or `finally` of
    the stage's own: a worker killed by the OOM killer or a lost node). Returns the statements
    each stage ran (the faulted one: up to its fault; -1 when it was run in a child)."""
    counts = []
    for i, stage in enumerate(stages):
        fail_at = fault[1] if fault is not None and fault[0] == i else None
        failed = False
        if kill and fail_at is not None:
            run_killed(i, fail_at, clock)
            counts.append(-1)
            failed = True
        else:
            with statements(db_url, fail_at) as seen:
                try:
                    stage.run()
                except InjectedFault:
                    failed = True
            counts.append(len(seen))
        reset_ids(db_url)
        if failed or fail_at is not None:  # a fault some code swallowed still gets a retry
            clock.advance()
            stage.run()
            reset_ids(db_url)
    return counts


def clear(db_url: str) -> None:
    """Empty every table of Siaga's database (migrations stay applied), children first."""
    with store.engine_for(db_url).begin() as conn:
        for table in reversed(store.Base.metadata.sorted_tables):
            conn.execute(table.delete())
    reset_ids(db_url)


def reset_ids(db_url: str) -> None:
    """On PostgreSQL, set every id sequence to the table's largest id + 1, as SQLite numbers
    rows. A sequence is not transactional: ids a rolled-back stage drew are gone, so after a
    fault the retry's incidents, alerts and outbox rows would carry other numbers, and those
    numbers are in texts (an incident's number in its Slack message, alert ids on its timeline);
    a retried ingest's INSERT ... ON CONFLICT DO NOTHING draws an id for every post it skips.
    Such gaps are legitimate; setting the sequences back after every stage run lets everything
    else be compared exactly. Nothing else writes while the harness runs."""
    if not db_url.startswith("postgresql"):
        return
    with store.engine_for(db_url).begin() as conn:
        for table in store.Base.metadata.sorted_tables:
            if "id" in table.c and table.c.id.primary_key and table.c.id.autoincrement is not False:
                conn.execute(sa.text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                    f"coalesce((SELECT max(id) FROM {table.name}), 0) + 1, false)"))


def fault_points(counts: list[int], sample: int | None, seed: int = 0) -> list[tuple[int, int]]:
    """(stage, statement) pairs to fail, from a fault-free run's statement `counts`: statement
    count + 1 stands for a stage killed after its last statement, before it reported success.
    All of them, or with `sample`, each stage's first, last and after-last plus a seeded
    random choice of the rest, `sample` in all."""
    every = [(i, n) for i, count in enumerate(counts) for n in range(1, count + 2)]
    if sample is None or sample >= len(every):
        return every
    edges = sorted({(i, n) for i, count in enumerate(counts) for n in (1, count, count + 1) if n >= 1})
    rest = [p for p in every if p not in set(edges)]
    return edges + sorted(random.Random(seed).sample(rest, max(0, min(len(rest), sample - len(edges)))))


def run_killed(index: int, kill_at: int, clock: LaterWallClock) -> None:
    """Stage `index` of `schedule()` in a child process (`python -m support.stage_faults`,
    reading the same environment) that SIGKILLs itself before its `kill_at`-th statement."""
    tests = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(settings.REPO_ROOT / "plugins"), str(tests)]))
    command = [sys.executable, "-m", "support.stage_faults", str(index), str(kill_at), str(clock.offset.total_seconds())]
    done = subprocess.run(command, env=env, cwd=tests, capture_output=True, text=True, timeout=300)
    if done.returncode != -signal.SIGKILL:  # the kill must have happened, or nothing was tested
        raise RuntimeError(f"stage {index} in a child ended {done.returncode}, not killed: {done.stderr[-2000:]}")


def _child(index: int, kill_at: int, offset: float) -> None:
    """The child of `run_killed`."""
    clock = LaterWallClock()
    clock.offset = timedelta(seconds=offset)
    outbox.wall_clock = clock  # the parent's wall clock, moved on as far
    engine = store.engine(None)

    def before(*args: Any) -> None:
        before.seen += 1  # type: ignore[attr-defined]
        if before.seen == kill_at:  # type: ignore[attr-defined]
            os.kill(os.getpid(), signal.SIGKILL)

    before.seen = 0  # type: ignore[attr-defined]
    event.listen(engine, "before_cursor_execute", before)
    schedule()[index].run()


# --- the state compared -----------------------------------------------------------------------

# Columns that differ between two correct runs: wall-clock times and who/which claim.
WALL_CLOCK = {
    "posts": {"ingested_at"}, "quarantine": {"created_at"}, "source_cursors": {"updated_at"},
    "alerts": {"created_at"}, "silences": {"created_at"}, "config_state": {"updated_at"},
    "outbox": {"claimed_by", "claimed_at", "claim_token", "held_until", "created_at", "sent_ts", "attempts",
               "may_be_posted", "last_error", "next_attempt_at"},
    "incident_threads": {"ts"}, "post_tags": {"tagged_at"},
}
# Tables whose rows record attempts rather than state: compared by their delivered outcomes only.
ATTEMPT_TABLES = {"delivery_attempts"}


def snapshot(db_url: str) -> dict[str, Any]:
    """Siaga's database as comparable values: per table, a Counter of rows with surrogate ids
    replaced by natural keys and wall-clock columns dropped."""
    engine = store.engine_for(db_url)
    meta = store.Base.metadata
    with engine.connect() as conn:
        rows = {t.name: [dict(r._mapping) for r in conn.execute(sa.select(t))] for t in meta.sorted_tables}
    post_key = {r["id"]: (r["source"], r["source_id"]) for r in rows["posts"]}
    incident_key = {r["id"]: (r["hazard"], r["level"], r["area_code"], str(r["opened_at"])) for r in rows["incidents"]}
    outbox_key = {r["id"]: r["dedup_key"] for r in rows["outbox"]}
    foreign = {"post_id": post_key, "duplicate_of": post_key, "incident_id": incident_key, "outbox_id": outbox_key}
    state: dict[str, Any] = {}
    for table, table_rows in rows.items():
        if table in ATTEMPT_TABLES:  # "found" (a retry found the post in Slack) is "sent" for the state
            table_rows = [dict(r, outcome="delivered") for r in table_rows if r["outcome"] in outbox.DELIVERED]
        drop = WALL_CLOCK.get(table, set()) | {"id"} | ({"at", "worker", "error", "ts"} if table in ATTEMPT_TABLES else set())
        state[table] = Counter(_canonical({
            k: (foreign[k].get(v, ("gone", v)) if k in foreign and v is not None else v)
            for k, v in r.items() if k not in drop
        }) for r in table_rows)
    return state


def _canonical(row: dict[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, default=str)


def slack_state(messages: list[dict[str, Any]]) -> Counter:
    """What the fake Slack holds: each message's channel, text and the text of its thread's
    first message (ts and outbox ids differ between runs)."""
    by_ts = {(m["channel"], m["ts"]): m for m in messages}
    return Counter(
        (m["channel"], m.get("text"), by_ts.get((m["channel"], m.get("thread_ts")), {}).get("text"))
        for m in messages
    )


def differences(expected: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """Per table, the rows one state has and the other lacks (a few of each)."""
    out = []
    for table in sorted(set(expected) | set(got)):
        a, b = expected.get(table, Counter()), got.get(table, Counter())
        if a != b:
            missing, extra = list((a - b).elements())[:3], list((b - a).elements())[:3]
            out.append(f"{table}: missing {missing} extra {extra}")
    return out


if __name__ == "__main__":
    _child(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]))
