"""One worker process against two on a backlog too large for one: the untagged posts split into
partitions by post id (`pipeline.tag_posts(now, i, n)`, what mapped tasks run), tagged by n
processes side by side, then one `pipeline.detect_incidents` process counts, detects and writes
the outbox. Each process is a fresh Python, as an Airflow task is, and builds its own matchers.

    python benchmarks/bench_partitions.py --db URL [--posts 60000] [--workers 1 2]

The database is emptied first. Posts as in bench_pipeline.py (same generator, events, baseline).
Both runs must store the same places, matches, alerts and outbox rows: the table says so.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import bench_pipeline as bp  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
_CHILD = bp.CHILD_PREAMBLE + """from siaga import pipeline
now = datetime.fromisoformat(sys.argv[1])
if sys.argv[2] == "detect":
    out = pipeline.detect_incidents(now)
else:
    out = pipeline.tag_posts(now, int(sys.argv[2]), int(sys.argv[3]))
print(json.dumps({"seconds": time.perf_counter() - start, "tagged": out["tagged"],
                  "peak_rss_mb": peak_rss_mb()}))
"""


def child(now: datetime, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-c", _CHILD, now.isoformat(), *args], env=env, stdout=subprocess.PIPE, text=True)


def result(proc: subprocess.Popen) -> dict[str, Any]:
    out, _ = proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"child failed ({proc.returncode})")
    return json.loads(out.strip().splitlines()[-1])


def run(db_url: str, posts: list[dict[str, Any]], now: datetime, history: list[dict[str, Any]], workers: int) -> dict[str, Any]:
    from siaga import pipeline, store

    bp.reset(db_url)
    if history:
        with store.session_scope(db_url) as session:
            store.bulk_insert(session, store.AreaCount.__table__, history)
    with tempfile.TemporaryDirectory(prefix="siaga-bench-feed-") as tmp:
        feed = Path(tmp) / "feed.jsonl"
        feed.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in posts), encoding="utf-8")
        with bp.deployment(db_url, feed):
            pipeline.ingest(bp.SOURCE, now)  # not timed: the backlog is there when the tasks start
            start = time.perf_counter()
            taggers = [result(p) for p in [child(now, str(i), str(workers)) for i in range(workers)]]
            tagged_at = time.perf_counter()
            detect = result(child(now, "detect"))
            finished = time.perf_counter()
    return {"workers": workers, "seconds": finished - start, "tag_seconds": tagged_at - start,
            "detect_seconds": finished - tagged_at, "partition_tagged": [t["tagged"] for t in taggers],
            "left_for_detect": detect["tagged"], "peak_rss_mb": max(t["peak_rss_mb"] for t in taggers + [detect]),
            **bp.counts(db_url)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, help="database URL (emptied first!)")
    parser.add_argument("--posts", type=int, default=60_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args(argv)
    db_url = args.db.replace("postgresql://", "postgresql+psycopg2://", 1)
    from siaga.geotag import default_geotagger

    now = datetime.now(timezone.utc).replace(microsecond=0)
    posts = bp.generate(args.posts, now, args.seed)
    history = bp.history_of(db_url, min(args.posts, 20_000), now, args.seed, default_geotagger(), 2)
    # Untimed: the first task process on a new config folder builds the hazard matcher into the
    # on-disk cache (keyed on the folder, which keeps its path across runs here, as a deployment's
    # does); without this the first configuration measured paid it (about 3 s) and the others not.
    run(db_url, posts[:200], now, [], 1)
    runs = [run(db_url, posts, now, history, w) for w in args.workers]
    print(f"{args.posts:,} posts already stored; tag partitions by post id in n processes, then one detect process\n")
    print("| | " + " | ".join(f"{r['workers']} worker{'s' if r['workers'] > 1 else ''}" for r in runs) + " |")
    print("|---|" + "---:|" * len(runs))
    for label, fmt in (("**posts/s (tag + detect)**", lambda r: f"**{args.posts / r['seconds']:,.0f}**"),
                       ("wall seconds", lambda r: f"{r['seconds']:.1f}"),
                       ("  tag partitions side by side", lambda r: f"{r['tag_seconds']:.1f}"),
                       ("  detect (count, spikes, incidents, outbox)", lambda r: f"{r['detect_seconds']:.1f}"),
                       ("posts tagged per partition", lambda r: " + ".join(f"{t:,}" for t in r["partition_tagged"])),
                       ("left untagged for detect", lambda r: f"{r['left_for_detect']}"),
                       ("geotags / matches", lambda r: f"{r['geotags']:,} / {r['matches']:,}"),
                       ("alerts / incidents / outbox rows", lambda r: f"{r['alerts']} / {r['incidents']} / {r['outbox_rows']}"),
                       ("peak RSS of a task process (MB)", lambda r: f"{r['peak_rss_mb']:.0f}")):
        print(f"| {label} | " + " | ".join(fmt(r) for r in runs) + " |")
    keys = ("geotags", "matches", "area_counts", "alerts", "incidents", "outbox_rows")
    same = all(tuple(r[k] for k in keys) == tuple(runs[0][k] for k in keys) for r in runs)
    print(f"\nsame rows stored whatever the number of workers: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
