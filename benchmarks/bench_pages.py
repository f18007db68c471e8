"""The managers' pages and exports under load: one incident citing N posts, and a list of M
incidents over years. Time, peak memory (tracemalloc) and response size per route.

    python benchmarks/bench_pages.py [--posts N] [--incidents M]

SQLite in a temporary directory; nothing else is touched. Figures are wall clock and the
Python heap's peak: the machine is shared, so compare runs made side by side.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "plugins"), str(REPO / "tests")]

from fastapi.testclient import TestClient  # noqa: E402

from siaga import store  # noqa: E402
from siaga.store import Alert, Geotag, Incident, IncidentEvent, Post  # noqa: E402
from siaga.timelines.labels import HazardsInForce  # noqa: E402
from siaga.timelines.places import load_places  # noqa: E402
from siaga.timelines.web import create_app  # noqa: E402

T0 = datetime(2025, 1, 14, 6, 0, tzinfo=timezone.utc)


def seed(url: str, posts: int, incidents: int) -> int:
    """One flood citing `posts` posts; `incidents` more small incidents, one every 2 days."""
    geo = load_places()
    code = next(iter(geo.villages))
    village = geo.villages[code]
    centre = village.polygon.representative_point()
    with store.session_scope(url) as s:
        big = Incident(hazard="flood", level="village", area_code=code, area_name=village.name, village=village.name,
                       district=village.district, state="open", severity="high", posts=posts, authors=posts,
                       opened_at=T0, last_activity_at=T0 + timedelta(hours=2))
        s.add(big)
        s.flush()
        rows = [Post(source="x", source_id=f"p{i}", created_at=T0 + timedelta(seconds=i), author=f"w{i}",
                     text=f"banjir <b>{i}</b>", url=f"https://x.com/w/{i}", text_hash=f"h{i}", raw={}) for i in range(posts)]
        s.add_all(rows)
        s.flush()
        s.add_all([Geotag(post_id=p.id, kind="village", name=village.name, village=village.name, district=village.district,
                          code=code, lon=centre.x, lat=centre.y, confidence=0.9, reason="bench", in_region=True) for p in rows])
        ids = [p.id for p in rows]
        s.add(Alert(incident_id=big.id, hazard="flood", level="village", area_code=code, window_start=T0, window_end=T0 + timedelta(hours=1),
                    observed=posts, expected=1.0, authors=posts, score=9.0, explanation={"post_ids": ids}))
        s.add(IncidentEvent(incident_id=big.id, at=T0, kind="opened", actor="siaga", detail={"post_ids": ids}))
        for n in range(incidents):
            at = T0 - timedelta(days=2 * (n + 1))
            s.add(Incident(hazard="landslide", level="district", area_code="51.08.05", area_name="Sukasada", district="Sukasada",
                           state="resolved", severity="low", posts=3, authors=3, opened_at=at, last_activity_at=at + timedelta(hours=1),
                           closed_at=at + timedelta(hours=7)))
        return big.id


def measure(client: TestClient, path: str, memory: bool) -> None:
    """One GET: wall clock, and with `memory` the heap's peak (tracemalloc slows it several times)."""
    if memory:
        tracemalloc.start()
    began = time.perf_counter()
    r = client.get(path)
    took = time.perf_counter() - began
    peak = tracemalloc.get_traced_memory()[1] if memory else 0
    tracemalloc.stop()
    print(f"{path:<45} {r.status_code} {took:7.2f} s  peak {peak / 1e6:7.1f} MB  body {len(r.content) / 1e6:7.2f} MB", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--posts", type=int, default=50_000)
    ap.add_argument("--incidents", type=int, default=2_000)
    ap.add_argument("--memory", action="store_true", help="measure the heap's peak too (slower)")
    ap.add_argument("--routes", default="page,list,export,incident-export")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        store.migrate(url)
        big = seed(url, args.posts, args.incidents)
        client = TestClient(create_app(url, hazards=HazardsInForce(max_age=3600)))
        client.get("/incidents/999999999")  # warm: places, hazards
        routes = {"page": f"/incidents/{big}", "list": "/", "export": "/export?format=csv",
                  "incident-export": f"/incidents/{big}/export?format=geojson"}
        for name in args.routes.split(","):
            measure(client, routes[name], args.memory)


if __name__ == "__main__":
    main()
