"""The Bluesky push filter's cost per Jetstream message, ours beside the obvious way, in one process.

    python benchmarks/bench_jetstream.py [--events N] [--repeat R]

The triggerer runs every watcher in one event loop, and a Bluesky push source reads the whole
network's posts (hundreds a second at peak) to find the few holding its words, so the filter's
CPU per message is what it costs the loop. Measured on messages shaped like Jetstream's (JSON
of a commit: did, time_us, the record with text, langs, facets, a reply or an embed), a mix like
the network's: Indonesian posts (real TwitMacet tweets, ../shared/devdata), English, Japanese
and Korean, accented Latin (Portuguese, Spanish, German), emoji; and post deletions, identity
and account events. Terms: config/sources.yaml's Bluesky queries.

- "obvious": `json.loads` of the whole message, the event checked by dict lookups, the text
  folded by `normalise.fold` (the exact fold, a character at a time), then each term's words
  searched in it with a whole-word regex;
- "ours": `jetstream.Filter` as the reader runs it: msgspec decodes only the fields it reads,
  `normalise.quick_fold` folds (after a letter check that skips posts lacking a letter of every
  term), the words go in a set and meet the terms' index.
Both must announce the same messages; the script checks that before printing a figure.
Then the whole reader (`jetstream.bluesky_announcements`: the websockets client, its frames,
the per-message timeout, the filter) reading the same messages from a websocket server in
another process on 127.0.0.1, which sends them as fast as it can: plain, then with
permessage-deflate (which the reader offers, for servers that take it).
Figures: best of R, CPU time of this process (the machine is shared: CPU time is the steadier).
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import multiprocessing
import json
import os
import random
import re
import sys
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))
DEVDATA = Path(os.environ.get("SIAGA_DEVDATA_DIR", REPO.parent / "shared" / "devdata"))
TWEETS = DEVDATA / "traffic_tweets_twitmacet" / "traffic_vs_nontraffic.csv"

from siaga.normalise import fold  # noqa: E402
from siaga.sources import jetstream  # noqa: E402

QUERIES = ["banjir buleleng", "longsor buleleng", "macet singaraja", "banjir singaraja", "gempa buleleng", "#singaraja"]

ENGLISH = ["Just finished reading the new paper on climate adaptation, highly recommend it",
           "anyone else's feed full of cat pictures today? not complaining 🐈",
           "The flood warnings for the east coast have been lifted, stay safe everyone",
           "hot take: the best coffee is the one someone else makes for you ☕️"]
JAPANESE = ["今日はとても良い天気ですね。散歩に行ってきました🌸", "新しいイラストを描きました！見てください",
            "地震がありました。皆さん大丈夫ですか？", "仕事終わった〜疲れたけど明日も頑張る"]
KOREAN = ["오늘 날씨가 정말 좋네요. 산책하러 나갔어요", "새로운 노래 너무 좋아요 🎶"]
ACCENTED = ["Não acredito que já é dezembro, o ano passou voando", "¿Alguien sabe si mañana hay tráfico en la autopista?",
            "Schöne Grüße aus München, heute regnet es schon wieder", "Ótima notícia para a educação pública no Brasil",
            "Banjir di Singaraja, jalan ditutup sementara — hati-hati ya 🙏"]  # a match with an em dash


def _post(rng: random.Random, i: int, text: str, langs: list[str]) -> bytes:
    record: dict = {"$type": "app.bsky.feed.post", "createdAt": "2026-12-04T10:00:00.000Z", "langs": langs, "text": text}
    kind = rng.random()
    if kind < 0.3:
        uri = f"at://did:plc:{i:024d}/app.bsky.feed.post/3lparent{i:05d}"
        ref = {"cid": "bafyreib" + "q" * 51, "uri": uri}
        record["reply"] = {"parent": ref, "root": ref}
    elif kind < 0.5:
        record["embed"] = {"$type": "app.bsky.embed.images", "images": [{"alt": "", "aspectRatio": {"height": 1080, "width": 1920},
                           "image": {"$type": "blob", "ref": {"$link": "bafkrei" + "x" * 52}, "mimeType": "image/jpeg", "size": 391554}}]}
    elif kind < 0.6:
        record["facets"] = [{"features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/news/2026/12/04"}],
                             "index": {"byteEnd": 40, "byteStart": 10}}]
    event = {"did": f"did:plc:{rng.getrandbits(100):025x}", "time_us": 1764842400000000 + i * 1000, "kind": "commit",
             "commit": {"rev": f"3lrev{i:08d}", "operation": "create", "collection": "app.bsky.feed.post",
                        "rkey": f"3lkey{i:08d}", "record": record, "cid": "bafyreia" + "z" * 52}}
    return json.dumps(event, ensure_ascii=False).encode()


def messages(count: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    with open(TWEETS, encoding="utf-8", newline="") as handle:
        tweets = [row["text"] for row in csv.DictReader(handle)]
    out = []
    for i in range(count):
        r = rng.random()
        if r < 0.30:
            out.append(_post(rng, i, rng.choice(ENGLISH), ["en"]))
        elif r < 0.50:
            out.append(_post(rng, i, rng.choice(JAPANESE) + f" #{i % 97}", ["ja"]))
        elif r < 0.55:
            out.append(_post(rng, i, rng.choice(KOREAN), ["ko"]))
        elif r < 0.67:
            out.append(_post(rng, i, rng.choice(ACCENTED), rng.choice([["pt"], ["es"], ["de"], ["id"]])))
        elif r < 0.90:
            out.append(_post(rng, i, rng.choice(tweets), ["id"]))
        elif r < 0.96:  # a post deleted
            out.append(json.dumps({"did": "did:plc:x", "time_us": 1764842400000000 + i, "kind": "commit", "commit": {
                "rev": "3lrev", "operation": "delete", "collection": "app.bsky.feed.post", "rkey": "3lkey"}}).encode())
        else:
            out.append(json.dumps({"did": "did:plc:x", "time_us": 1764842400000000 + i, "kind": "identity", "identity": {
                "did": "did:plc:x", "handle": "someone.bsky.social", "seq": 1409752997, "time": "2026-12-04T10:00:00.000Z"}}).encode())
    return out


def obvious(terms: list[str]) -> Callable[[bytes], bool]:
    patterns = [[re.compile(r"(?<!\S)" + re.escape(w) + r"(?!\S)") for w in term.split()] for term in terms]

    def accept(message: bytes) -> bool:
        try:
            event = json.loads(message)
        except ValueError:
            return False
        commit = event.get("commit") if isinstance(event, dict) else None
        if event.get("kind") != "commit" or not isinstance(commit, dict):
            return False
        if commit.get("operation") != "create" or commit.get("collection") != "app.bsky.feed.post":
            return False
        record = commit.get("record") or {}
        text = record.get("text")
        if not isinstance(text, str):
            return False
        folded = fold(text).text
        return any(all(p.search(folded) for p in words) for words in patterns)

    return accept


def ours(terms: list[str]) -> Callable[[bytes], bool]:
    accept = jetstream.Filter(jetstream.Terms(terms))
    return lambda message: accept(message) is not None


def measure(accept: Callable[[bytes], bool], batch: list[bytes], repeat: int) -> tuple[float, list[bool]]:
    best = float("inf")
    verdicts: list[bool] = []
    for _ in range(repeat):
        start = time.process_time()
        verdicts = [accept(m) for m in batch]
        best = min(best, time.process_time() - start)
    return best, verdicts


def _serve(batch: list[bytes], ports: "multiprocessing.Queue[int]", compression: str | None) -> None:
    """A websocket server sending `batch` as text messages to each client, then closing;
    compressed when `compression` is "deflate" (the client offers it)."""
    from websockets.asyncio.server import serve

    async def handler(ws) -> None:  # noqa: ANN001
        for message in batch:
            await ws.send(message.decode())
        await ws.close()

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0, max_size=None, compression=compression) as server:
            ports.put(server.sockets[0].getsockname()[1])
            await asyncio.get_running_loop().create_future()

    asyncio.run(main())


def whole_reader(terms: list[str], batch: list[bytes], repeat: int, compression: str | None) -> tuple[float, int]:
    """CPU seconds of this process to read `batch` through the reader, best of `repeat`; and
    how many posts it announced."""
    from siaga.sources import push

    jetstream.INDEX_LAG = 0.0  # announce at once: the count is checked against the filter's
    ports: multiprocessing.Queue[int] = multiprocessing.Queue()
    server = multiprocessing.Process(target=_serve, args=(batch, ports, compression), daemon=True)
    server.start()
    try:
        stream = push.PushStream("bench", f"ws://127.0.0.1:{ports.get(timeout=30)}/subscribe", None, "bluesky", tuple(terms))

        async def read() -> int:
            return len([uri async for uri in jetstream.bluesky_announcements(stream)])

        best, announced = float("inf"), 0
        for _ in range(repeat):
            jetstream.RESUME = jetstream._Resume()  # live each time, no cursor
            start = time.process_time()
            announced = asyncio.run(read())
            best = min(best, time.process_time() - start)
        return best, announced
    finally:
        server.terminate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not TWEETS.exists():
        raise SystemExit(f"no TwitMacet posts at {TWEETS} (set SIAGA_DEVDATA_DIR); nothing to measure")
    terms = list(dict.fromkeys(t for q in QUERIES for t in jetstream.query_terms(q)))
    batch = messages(args.events)
    size = sum(map(len, batch)) / len(batch)
    results = {}
    for name, make in (("obvious", obvious), ("ours", ours)):  # interleaved: each takes its best of R
        results[name] = measure(make(terms), batch, args.repeat)
    if results["obvious"][1] != results["ours"][1]:
        diff = [i for i, (a, b) in enumerate(zip(results["obvious"][1], results["ours"][1])) if a != b]
        raise SystemExit(f"the two filters disagree on {len(diff)} messages, first {batch[diff[0]][:300]!r}")
    matched = sum(results["ours"][1])
    print(f"{len(batch):,} Jetstream messages (mean {size:.0f} bytes), terms {terms}; {matched} announced by both")
    print(f"{'filter':<10}{'us/message':>12}{'messages/s (one core)':>24}")
    for name, (seconds, _) in results.items():
        print(f"{name:<10}{seconds / len(batch) * 1e6:>12.1f}{len(batch) / seconds:>24,.0f}")
    print(f"ours is {results['obvious'][0] / results['ours'][0]:.1f}x the obvious way")
    for compression in (None, "deflate"):
        seconds, announced = whole_reader(terms, batch, args.repeat, compression)
        if announced != matched:
            raise SystemExit(f"the reader announced {announced} posts, the filter {matched}")
        print(f"{'reader':<10}{seconds / len(batch) * 1e6:>12.1f}{len(batch) / seconds:>24,.0f}"
              f"   (websocket from another process, {'permessage-deflate' if compression else 'plain JSON'}, the filter included)")


if __name__ == "__main__":
    main()
