"""Fault injection at the sources, at volume: hostile records between good ones, for every
connector (replay; inbox .jsonl and .json; RSS and Atom; Mastodon, Bluesky and X through their
real clients against tests/support/fakeapis.py on 127.0.0.1), through ingest into SQLite and
PostgreSQL.

The records are tests/support/hostile.py's (the strategies tests/test_sources_fuzz.py checks as
properties): deep nesting, integers of thousands of digits, NaN and Infinity, lone surrogates,
NUL, control and bidi characters, overlong fields, odd timestamps (year 0001 at +14:00, 9999 at
-14:00, 1999, the future), wrong types, bytes that are not UTF-8, U+2028 inside strings, broken
JSON and XML. Each batch is polled twice (the second poll must add nothing). Counted per
database and source kind: records tried, good posts stored, bad records quarantined, crashed
polls, good posts lost, bad records stored, bad records not quarantined where they were.

Usage: python benchmarks/fuzz_sources.py [--records 10000] [--db both|sqlite|postgresql] [--seed 1]
Exits non-zero when anything was lost, crashed or let through.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, given, seed, settings

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support.fakeapis import FakeApis  # noqa: E402
from support.hostile import KINDS, X_TOKEN_ENV, Harness, Outcome, strategy  # noqa: E402
from siaga import store  # noqa: E402

PG_ADMIN_URL = os.environ.get("SIAGA_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
EXAMPLES_PER_ROUND = 10


def fuzz(db_url: str, workdir: Path, api: FakeApis, records: int, rng_seed: int) -> dict[str, Outcome]:
    """Rounds over every source kind until `records` records were tried in all."""
    harness = Harness(db_url, workdir, api)
    totals = {kind: Outcome() for kind in KINDS}
    round_no = 0
    while sum(t.tried for t in totals.values()) < records:
        round_no += 1
        for number, kind in enumerate(KINDS):
            @seed(rng_seed * 100_000 + round_no * 100 + number)
            @settings(max_examples=EXAMPLES_PER_ROUND, deadline=None, database=None, phases=[Phase.generate],
                      suppress_health_check=list(HealthCheck))
            @given(batch=strategy(kind))
            def one(batch: list) -> None:
                totals[kind].add(harness.run(kind, batch))

            one()
    return totals


def report(name: str, totals: dict[str, Outcome], seconds: float) -> bool:
    header = ("source", "records", "good", "stored", "bad", "quarantined", "polls", "crashed polls", "good lost",
              "bad stored", "bad unplaced")
    print(f"\n{name}: {seconds:.0f} s")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    grand = Outcome()
    for kind, t in totals.items():
        grand.add(t)
        print(_row(kind, t))
    print(_row("**all**", grand))
    if not grand.ok:
        print("PROBLEMS:", grand.problems())
    faults = sorted((k, n) for k, n in grand.kinds.items() if k.startswith("bad "))
    print("bad records by fault: " + ", ".join(f"{k[4:]} {n}" for k, n in faults))
    return grand.ok


def _row(kind: str, t: Outcome) -> str:
    cells = (kind, t.tried, t.good, t.stored, t.bad, t.quarantined, t.polls, len(t.crashed), len(t.lost), len(t.accepted),
             len(t.unexplained))
    return "| " + " | ".join(f"{c:,}" if isinstance(c, int) else str(c) for c in cells) + " |"


def _postgres() -> tuple[str, sa.Engine, str]:
    name = f"siaga_fuzz_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name, admin, name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10_000, help="records to try per database")
    parser.add_argument("--db", choices=("both", "sqlite", "postgresql"), default="both")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # each bad record is logged at INFO/WARNING by ingest
    os.environ.update(X_TOKEN_ENV)
    ok = True
    with FakeApis() as api, tempfile.TemporaryDirectory(prefix="siaga-fuzz-") as tmp:
        for backend in (("sqlite", "postgresql") if args.db == "both" else (args.db,)):
            workdir = Path(tmp) / backend
            workdir.mkdir()
            if backend == "sqlite":
                url, cleanup = f"sqlite:///{workdir / 'siaga.db'}", None
            else:
                url, admin, name = _postgres()
                cleanup = (admin, name)
            try:
                store.migrate(url)
                started = time.perf_counter()
                totals = fuzz(url, workdir, api, args.records, args.seed)
                ok &= report(backend, totals, time.perf_counter() - started)
            finally:
                store.engine_for(url).dispose()
                if cleanup:
                    admin, name = cleanup
                    with admin.connect() as conn:
                        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                    admin.dispose()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
