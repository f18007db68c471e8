"""Copies of one text in a burst: `copies.copy_keys` (each distinct text once in the LSH index)
beside the index as first written (each post on its own, `copies_legacy.py`), in one process.

    python benchmarks/bench_copies.py [--sizes 1000 4000 16000] [--naive-up-to 4000]

Two kinds of burst, each at every size:
- forwards: a warning forwarded and retweeted (prefixes, mentions and links differ, so the
  comparable text is one), what a viral post looks like;
- variants: the same report with a different number in each (a bot, or a counter in the text):
  every comparable text differs, so each post is still compared with the earlier near ones.
Both give every post the same key (the script checks it where both ran).
"""
from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from copies_legacy import one_post_at_a_time  # noqa: E402

from siaga.copies import PostText, copy_keys  # noqa: E402

T0 = datetime(2026, 2, 1, 8, 0, tzinfo=timezone.utc)
WARNING = "Banjir setinggi lutut merendam rumah warga di Desa Sangsit, Sawan sejak subuh tadi. Mohon waspada!"
PREFIXES = ["", "RT @warga{i}: ", "Fwd: info dari grup WA ", "copas: "]


def burst(kind: str, n: int) -> list[PostText]:
    """`n` posts over two hours."""
    posts = []
    for i in range(n):
        if kind == "forwards":
            text = PREFIXES[i % len(PREFIXES)].format(i=i) + WARNING + (f" https://t.co/{i}" if i % 3 else "")
        else:
            text = f"{WARNING} laporan ke-{i}"
        posts.append(PostText(i, T0 + timedelta(seconds=i * 7200 // n), text, f"hash-{i}"))
    return posts


def timed(fn, posts: list[PostText]) -> tuple[float, dict[int, str]]:
    start = time.perf_counter()
    keys = fn(posts)
    return time.perf_counter() - start, keys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 16000])
    parser.add_argument("--naive-up-to", type=int, default=4000, help="largest size the first-written index runs at")
    args = parser.parse_args(argv)
    print(f"{'burst':<10} {'posts':>7} {'copy_keys s':>12} {'first written s':>16} {'keys':>6}")
    for kind in ("forwards", "variants"):
        for n in args.sizes:
            posts = burst(kind, n)
            ours, keys = timed(copy_keys, posts)
            if n <= args.naive_up_to:
                naive, want = timed(one_post_at_a_time, posts)
                same = "same" if keys == want else "DIFFER"
                print(f"{kind:<10} {n:>7,} {ours:>12.2f} {naive:>16.2f} {same:>6}")
            else:
                print(f"{kind:<10} {n:>7,} {ours:>12.2f} {'-':>16} {'':>6}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
