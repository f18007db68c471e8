"""Throughput of the geotagger on real posts (TwitMacet tweets), Buleleng-only vs all-Indonesia
names, beside a naive substring-per-name baseline; plus peak memory of building each tagger.

Run: python benchmarks/bench_geotag.py [--limit N]
Reads ../shared/devdata at run time (never copied into the repo); exits quietly if absent.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import time
import tracemalloc
from pathlib import Path

from siaga.normalise import fast_fold
from siaga.geotag import Geotagger

REPO = Path(__file__).resolve().parents[1]
DEVDATA = Path(os.environ.get("SIAGA_DEVDATA_DIR", REPO.parent / "shared" / "devdata")) / "traffic_tweets_twitmacet"


def load_posts(limit: int | None) -> list[str]:
    posts: list[str] = []
    for name in ("traffic_vs_nontraffic.csv", "yogya_traffic_stream_2016_timestamped.csv"):
        path = DEVDATA / name
        if path.exists():
            with open(path, encoding="utf-8", newline="") as handle:
                posts.extend(row["text"] for row in csv.DictReader(handle))
    return posts[:limit] if limit else posts


class NaiveTagger:
    """What not to do: test every gazetteer name against every post."""

    def __init__(self, tagger: Geotagger) -> None:
        gaz = tagger.gaz
        names = {v.name for v in gaz.villages} | set(gaz.districts) | {o.name for o in gaz.outside}
        self.names = [" " + fast_fold(n).text + " " for n in names]

    def tag(self, text: str) -> list[str]:
        folded = " " + fast_fold(text).text + " "
        return [n for n in self.names if n in folded]


def build(national: bool) -> tuple[Geotagger, float, int]:
    tracemalloc.start()
    t0 = time.perf_counter()
    tagger = Geotagger.from_paths(REPO / "geodata", REPO / "config" / "aliases.yaml", national=national)
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return tagger, seconds, peak


def rate(fn, posts: list[str], repeats: int = 3, budget: float = 10.0) -> float:
    """Best-of-`repeats` posts per second (timing runs without tracemalloc, which slows Python)."""
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        n = 0
        for p in posts:
            fn(p)
            n += 1
            if n % 500 == 0 and time.perf_counter() - t0 > budget:
                break
        best = max(best, n / (time.perf_counter() - t0))
    return best


def tag_peak_mib(fn, posts: list[str]) -> float:
    """Peak traced memory while tagging posts (the per-post working set, not the index)."""
    tracemalloc.start()
    for p in posts:
        fn(p)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args()
    posts = load_posts(args.limit)
    if not posts:
        print(f"no TwitMacet posts under {DEVDATA}; nothing to measure")
        return 0
    print(f"{len(posts)} real posts (TwitMacet), one core, Python {sys.version.split()[0]}")
    print(f"{'gazetteer':<22}{'names':>8}{'build s':>9}{'build MiB':>11}{'ours posts/s':>14}{'tag MiB':>9}{'naive posts/s':>15}")
    print("(build MiB: peak traced memory while loading; tag MiB: peak while tagging 2,000 posts)")
    for national in (False, True):
        tagger, build_s, build_peak = build(national)
        n_names = len(tagger.gaz.outside) + len(tagger.gaz.villages) + len(tagger.gaz.districts)
        for p in posts[:200]:
            tagger.tag(p)  # warm up
        ours = rate(tagger.tag, posts)
        tag_mib = tag_peak_mib(tagger.tag, posts[:2000])
        naive = NaiveTagger(tagger)
        naive_rate = rate(naive.tag, posts[:2000], repeats=1, budget=5.0)
        label = "Indonesia (91.6k)" if national else "Buleleng (+outside)"
        print(f"{label:<22}{n_names:>8}{build_s:>9.2f}{build_peak / 2**20:>11.1f}{ours:>14,.0f}{tag_mib:>9.2f}{naive_rate:>15,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
