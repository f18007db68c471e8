"""`siaga tag` end to end, the straightforward path beside the fast one, in one process.

    python benchmarks/bench_tag.py [--posts N] [--repeat R]

Throughput: N real TwitMacet tweets (cycled, as `../shared/checks/tag-speed` does) as JSON Lines
through the whole command: read and check each line, fold, hazards, places, JSON out.
- "straightforward": each line read through the sources' schema, each matcher folding the text
  itself (the exact fold for hazards), every post through the whole hazard matcher
  (`Tagger.tag_reference`), `json.dumps` of the contract dict, a write and a flush per line: the
  path `siaga tag` took before issue 14 (its hazard view is today's, so the real old command
  was slower still: see benchmarks/README.md);
- "fast": `siaga tag` as it is (`cli._cmd_tag`): plain lines (escaped ones too) read without
  the schema, one fold shared with its offsets built only when asked, the trigger automaton
  first, the matchers frozen out of the garbage collector, batched writes.
Both must print the same bytes; the script checks that before it prints a figure.

Startup: the national geotagger and the hazard lists built from their files, beside both
loaded from the matcher cache (`siaga.matcher_cache`).

Figures are best of R, wall clock and CPU time of this process (the machine is shared: CPU
time is the steadier one). Reads ../shared/devdata (or SIAGA_DEVDATA_DIR) in place.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import tempfile
import time
from argparse import Namespace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEVDATA = Path(os.environ.get("SIAGA_DEVDATA_DIR", REPO.parent / "shared" / "devdata"))
TWEETS = DEVDATA / "traffic_tweets_twitmacet" / "traffic_vs_nontraffic.csv"


class _Sink(io.StringIO):
    """Counts what is written and how often it is flushed."""

    flushes = 0

    def flush(self) -> None:
        self.flushes += 1


def straightforward(lines: list[bytes], tagger, out: _Sink) -> None:
    """The per-line loop of `siaga tag` before issue 14."""
    from siaga.cli import _read_post
    from siaga.sources.records import describe

    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            post = _read_post(line)
            result = tagger.tag_reference(post["text"], lat=post.get("lat"), lon=post.get("lon"))
            text = json.dumps(result.to_contract(post.get("id")), ensure_ascii=False)
            text.encode("utf-8")
        except Exception as exc:  # noqa: BLE001
            out.write(json.dumps({"id": None, "error": f"line {line_no}: {describe(exc)}"}) + "\n")
            out.flush()
            continue
        out.write(text + "\n")
        out.flush()


def fast(lines: list[bytes], tagger, out: _Sink) -> None:
    from siaga import cli, tagging

    stdin = Namespace(buffer=io.BufferedReader(io.BytesIO(b"".join(lines))))
    original = tagging.Tagger
    cli_tagger = lambda hazards: tagger  # noqa: E731 -- the matchers loaded once, outside the timing
    tagging.Tagger = cli_tagger  # type: ignore[assignment,misc]
    try:
        cli._cmd_tag(Namespace(explain=False, config=None), stdin, out)  # type: ignore[arg-type]
    finally:
        tagging.Tagger = original  # type: ignore[misc]


def timed(fn, *args) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if not TWEETS.exists():
        print(f"no TwitMacet posts at {TWEETS}; nothing to measure")
        return 0
    from siaga import matcher_cache, settings
    from siaga.geotag import Geotagger, cached_geotagger
    from siaga.hazard_config import default_hazard_dir, read_directory
    from siaga.hazards import HazardSet, load_compiled
    from siaga.tagging import Tagger

    with open(TWEETS, encoding="utf-8", newline="") as handle:
        rows = [row["text"] for row in csv.DictReader(handle)]
    lines = [(json.dumps({"id": i, "text": rows[i % len(rows)]}) + "\n").encode() for i in range(args.posts)]

    geodata, aliases = settings.geodata_dir(), settings.config_dir() / "aliases.yaml"
    print(f"siaga tag, {args.posts:,} TwitMacet posts, national gazetteer, one core, Python {sys.version.split()[0]}, "
          f"best of {args.repeat} (load average {os.getloadavg()[0]:.1f})")
    print()
    print(f"{'startup (matchers)':<34}{'wall s':>9}{'CPU s':>9}")
    build = min((timed(lambda: (Geotagger.from_paths(geodata, aliases, national=True),
                                HazardSet.from_config(read_directory(default_hazard_dir())))) for _ in range(args.repeat)))
    with tempfile.TemporaryDirectory() as cache:
        os.environ["SIAGA_CACHE_DIR"] = cache
        cached_geotagger(geodata, aliases, national=True), load_compiled(default_hazard_dir())  # fill the cache
        matcher_cache._CODE_VERSION = None  # a new process hashes the code again: count it
        load = min((timed(lambda: (cached_geotagger(geodata, aliases, national=True), load_compiled(default_hazard_dir())))
                    for _ in range(args.repeat)))
        del os.environ["SIAGA_CACHE_DIR"]
    print(f"{'built from the files':<34}{build[0]:>9.2f}{build[1]:>9.2f}")
    print(f"{'loaded from the matcher cache':<34}{load[0]:>9.2f}{load[1]:>9.2f}")
    print()

    tagger = Tagger(HazardSet.load(default_hazard_dir()))
    outputs = {}
    results = {}
    for name, fn in (("straightforward", straightforward), ("fast (siaga tag)", fast)):
        best = (float("inf"), float("inf"))
        for _ in range(args.repeat):
            out = _Sink()
            wall, cpu = timed(fn, lines, tagger, out)
            best = (min(best[0], wall), min(best[1], cpu))
        outputs[name], results[name] = (out.getvalue(), out.flushes), best
    (old_text, old_flushes), (new_text, new_flushes) = outputs.values()
    if old_text != new_text:
        print("OUTPUTS DIFFER: the fast path is wrong")
        return 1
    print(f"{'throughput (tagging only)':<34}{'posts/s wall':>14}{'posts/s CPU':>13}{'flushes':>9}")
    for (name, (wall, cpu)), flushes in zip(results.items(), (old_flushes, new_flushes)):
        print(f"{name:<34}{args.posts / wall:>14,.0f}{args.posts / cpu:>13,.0f}{flushes:>9,}")
    (ow, oc), (nw, nc) = results.values()
    print(f"{'speed-up':<34}{ow / nw:>13.1f}x{oc / nc:>12.1f}x")
    print(f"outputs identical: {len(new_text.splitlines()):,} lines")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
