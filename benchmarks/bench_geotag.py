"""Throughput of the geotagger on real posts (TwitMacet tweets), Buleleng-only vs all-Indonesia
names, beside a naive substring-per-name baseline; plus peak memory of building each tagger.

Run: python benchmarks/bench_geotag.py [--limit N]
Reads ../shared/devdata at run time (never copied into the repo); exits quietly if absent.
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
import tracemalloc
from pathlib import Path

from siaga.gazetteer import fast_fold
from siaga.geotag import Geotagger

REPO = Path(__file__).resolve().parents[1]
DEVDATA = REPO.parent / "shared" / "devdata" / "traffic_tweets_twitmacet"


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


def rate(fn, posts: list[str], budget: float = 10.0) -> tuple[float, float]:
    """Posts per second (and peak MiB of traced memory while tagging)."""
    tracemalloc.start()
    t0 = time.perf_counter()
    n = 0
    for p in posts:
        fn(p)
        n += 1
        if n % 500 == 0 and time.perf_counter() - t0 > budget:
            break
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return n / seconds, peak / 2**20


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
    for national in (False, True):
        tagger, build_s, build_peak = build(national)
        n_names = len(tagger.automaton_keys) if hasattr(tagger, "automaton_keys") else len(tagger._automaton)
        for p in posts[:200]:
            tagger.tag(p)  # warm up
        ours, tag_mib = rate(tagger.tag, posts)
        naive = NaiveTagger(tagger)
        naive_rate, _ = rate(naive.tag, posts[:3000], budget=5.0)
        label = "Indonesia (91.6k)" if national else "Buleleng (+outside)"
        print(f"{label:<22}{n_names:>8}{build_s:>9.2f}{build_peak / 2**20:>11.1f}{ours:>14,.0f}{tag_mib:>9.2f}{naive_rate:>15,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
