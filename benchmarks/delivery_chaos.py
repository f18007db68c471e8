"""Delivery under faults, at volume: the scenarios of tests/test_delivery_chaos.py
(tests/support/delivery_chaos.py) with more messages, each on a throwaway SQLite file and a
throwaway PostgreSQL database, deliver runs as separate OS processes against the fake Slack on
127.0.0.1.

Fault kinds: a worker SIGKILLed the moment Slack stored its post (several workers in turn); the
database connection dropped at the commit that records a delivery (several in turn); a late run
beside an on-time one (logical times ten minutes apart, claims overlapping); Slack storing every
post 2 s after it arrived, past the client's 1 s timeout and its backoff, with a second run
an hour later in logical time right behind the first; and a random mix on two concurrent deliver
processes, round after round: posts answered with 429 + Retry-After (10 %), 5xx (10 %), hangs
(5 %), TCP resets (5 %), drops after storing (5 %) and slow stores (5 %), history lookups with
5xx, hangs and resets.

Per database and fault kind it prints messages expected, received by Slack, duplicated (posts
beyond the first per outbox row), lost (rows Slack never received), replies outside their
incident's thread, rows recorded wrongly (state or ts disagreeing with Slack), and seconds.

Usage: python benchmarks/delivery_chaos.py [--messages 500] [--db both|sqlite|postgresql] [--seed 1]
`--messages` is the size of the fault mix; the other kinds use a fifth of it (at least 20).
Exits non-zero when anything was duplicated, lost, misthreaded or misrecorded.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "plugins"))

from support import delivery_chaos as chaos  # noqa: E402
from siaga import store  # noqa: E402
from siaga_dev.fakeslack import FakeSlack  # noqa: E402

PG_ADMIN_URL = os.environ.get("SIAGA_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


@contextmanager
def throwaway_db(kind: str) -> Iterator[str]:
    """A migrated, empty database that is removed afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="siaga-chaos-") as tmp:
            url = f"sqlite:///{Path(tmp) / 'siaga.db'}"
            store.migrate(url)
            yield url
            store.engine_for(url).dispose()
        return
    name = f"siaga_chaos_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        store.migrate(url)
        yield url
    finally:
        store.engine_for(url).dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def plan(messages: int, seed: int) -> list[tuple[str, Callable[..., chaos.Tally], dict[str, Any]]]:
    """(fault kind, scenario, arguments): every incident has a first message and one reply."""
    small = max(messages // 5, 20) // 2
    return [
        (chaos.KINDS[0], chaos.sigkill_after_store, {"incidents": small, "kills": 5}),
        (chaos.KINDS[1], chaos.dropped_at_commit, {"incidents": small, "drops": 5}),
        (chaos.KINDS[2], chaos.late_beside_on_time, {"incidents": small}),
        (chaos.KINDS[3], chaos.slower_than_timeout, {"incidents": max(small // 5, 4)}),
        (chaos.KINDS[4], chaos.fault_mix, {"incidents": (messages + 1) // 2, "seed": seed}),
    ]


def faults(fake: FakeSlack) -> tuple[int, Counter, int, Counter]:
    """Posts and looks Slack was asked for, and how many of each it misbehaved on, by mode."""
    posts = fake.requests("chat.postMessage")
    looks = fake.requests("conversations.history") + fake.requests("conversations.replies")
    return (len(posts), Counter(r.outcome for r in posts if r.outcome != "handled"),
            len(looks), Counter(r.outcome for r in looks if r.outcome != "handled"))


def attempts(url: str) -> Counter:
    """Recorded attempts by outcome (sent, found, failed, unknown, dead)."""
    with store.session_scope(url) as session:
        return Counter(session.scalars(sa.select(store.DeliveryAttempt.outcome)).all())


def _counts(counter: Counter) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) or "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--db", choices=("both", "sqlite", "postgresql"), default="both")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)
    databases = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    header = ("database", "fault kind", "expected", "received", "duplicated", "lost", "outside thread",
              "misrecorded", "seconds")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * 2 + "---:|" * (len(header) - 2))
    failed = False
    details: list[tuple[str, str, tuple[int, Counter, int, Counter], Counter]] = []
    for database in databases:
        total = chaos.Tally()
        for kind, scenario, kwargs in plan(args.messages, args.seed):
            started = time.monotonic()
            with throwaway_db(database) as url, FakeSlack(token=chaos.TOKEN) as fake:
                result = scenario(fake, url, **kwargs)
                details.append((database, kind, faults(fake), attempts(url)))
            seconds = time.monotonic() - started
            total.add(result)
            failed |= not result.exactly_once or result.lost > 0
            print(f"| {database} | {kind} | {result.expected} | {result.received} | {result.duplicated} | "
                  f"{result.lost} | {result.outside_thread} | {result.misrecorded} | {seconds:.0f} |", flush=True)
            for problem in result.problems[:10]:
                print(f"    {problem}", file=sys.stderr)
        print(f"| {database} | all | {total.expected} | {total.received} | {total.duplicated} | {total.lost} | "
              f"{total.outside_thread} | {total.misrecorded} | |", flush=True)
    print("\nWhat Slack did (posts: misbehaviours among all chat.postMessage calls; looks: history and replies"
          " calls, misbehaving ones) and what the attempts came to (delivery_attempts outcomes):\n")
    print("| database | fault kind | posts | post faults | looks | look faults | attempt outcomes |")
    print("|---|---|---:|---|---:|---|---|")
    for database, kind, (posts, post_faults, looks, look_faults), outcomes in details:
        print(f"| {database} | {kind} | {posts} | {_counts(post_faults)} | {looks} | {_counts(look_faults)} | "
              f"{_counts(outcomes)} |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
