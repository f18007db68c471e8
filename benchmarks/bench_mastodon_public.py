"""The Mastodon search-push filter's cost per status of the public timeline, ours beside the
obvious way, in one process.

    SIAGA_DEVDATA_DIR=../shared/devdata python benchmarks/bench_mastodon_public.py [--events N] [--repeat R]

A Mastodon source with `push: true` and searches reads its instance's federated public
timeline (tens of statuses a second on a large instance) in the triggerer's one event loop, to
find the few holding the words of a search (`siaga.sources.mastodon_public`), so the filter's
CPU per status is what it costs the loop. Statuses are shaped like Mastodon's `update` event
data (a Status entity with its account, tags, mentions, media, HTML content with paragraphs,
links and hashtag markup), their text the same mix as bench_jetstream.py (Indonesian
TwitMacet tweets, English, Japanese, Korean, accented Latin). Terms: config/sources.yaml's
Mastodon searches.

- "obvious": `json.loads` of the whole status, the content read by the stdlib HTML parser
  (`parsing.html_text`, what the poll uses), then `terms.Terms.match`;
- "ours": `mastodon_public.Matcher`: msgspec decodes only the fields read, tags dropped by one
  regular expression and entities unescaped, then the same `Terms`.
Both must announce the same statuses; the script checks that before printing a figure.
Figures: best of R, CPU time of this process (the machine is shared: CPU time is the steadier).
"""
from __future__ import annotations

import argparse
import html
import json
import random
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_jetstream import ACCENTED, ENGLISH, JAPANESE, KOREAN, REPO, TWEETS  # noqa: E402 - the same texts

sys.path.insert(0, str(REPO / "plugins"))
from siaga.sources import mastodon_public  # noqa: E402
from siaga.sources.parsing import html_text  # noqa: E402
from siaga.sources.terms import Terms  # noqa: E402

SEARCHES = ["banjir buleleng", "longsor buleleng", "macet singaraja", "pohon tumbang singaraja"]
MATCHES = ["Banjir di Kecamatan Buleleng, air setinggi lutut", "Macet & antre panjang di Singaraja pagi ini",
           "Pohon TUMBANG menutup jalan di Singaraja", "Longsor di Desa Bebetin, Buleleng — hati-hati"]  # 1 %


def _content(rng: random.Random, text: str) -> str:
    body = html.escape(text, quote=False)
    if rng.random() < 0.4:
        body += (' <a href="https://mastodon.example/tags/berita" class="mention hashtag" rel="tag">#<span>berita</span></a>')
    if rng.random() < 0.3:
        body += (' <a href="https://example.com/news/2026/12/04/some-long-path" rel="nofollow noopener" target="_blank">'
                 '<span class="invisible">https://</span><span class="ellipsis">example.com/news/2026/12/0</span>'
                 '<span class="invisible">4/some-long-path</span></a>')
    return f"<p>{body}</p>" + ("<p>Salam dari Bali</p>" if rng.random() < 0.2 else "")


def _status(rng: random.Random, i: int, text: str, lang: str) -> bytes:
    host = "mastodon.example"
    acct = f"warga{i % 500}"
    status = {
        "id": str(113_000_000_000_000_000 + i), "created_at": "2026-12-04T10:00:00.000Z", "in_reply_to_id": None,
        "in_reply_to_account_id": None, "sensitive": False, "spoiler_text": "", "visibility": "public", "language": lang,
        "uri": f"https://{host}/users/{acct}/statuses/{i}", "url": f"https://{host}/@{acct}/{i}",
        "replies_count": 0, "reblogs_count": 0, "favourites_count": 0, "edited_at": None,
        "content": _content(rng, text), "reblog": None, "application": {"name": "Web", "website": None},
        "account": {"id": str(100_000 + i % 500), "username": acct, "acct": acct, "display_name": acct.title(), "locked": False,
                    "bot": False, "discoverable": True, "indexable": True, "group": False, "created_at": "2024-01-01T00:00:00.000Z",
                    "note": "<p>Warga Buleleng, suka kopi dan bersepeda.</p>", "url": f"https://{host}/@{acct}",
                    "uri": f"https://{host}/users/{acct}", "avatar": f"https://files.{host}/accounts/avatars/{i % 500}.png",
                    "avatar_static": f"https://files.{host}/accounts/avatars/{i % 500}.png",
                    "header": f"https://{host}/headers/original/missing.png", "header_static": f"https://{host}/headers/original/missing.png",
                    "followers_count": 120, "following_count": 80, "statuses_count": 900, "last_status_at": "2026-12-04",
                    "hide_collections": None, "noindex": False, "emojis": [], "roles": [], "fields": []},
        "media_attachments": [], "mentions": [],
        "tags": [{"name": "berita", "url": f"https://{host}/tags/berita"}], "emojis": [], "card": None, "poll": None,
    }
    if rng.random() < 0.15:
        status["media_attachments"] = [{"id": str(i), "type": "image", "url": f"https://files.{host}/m/{i}.jpg",
                                        "preview_url": f"https://files.{host}/m/{i}s.jpg", "remote_url": None,
                                        "description": rng.choice(["Foto jalan", "A photo of a cat", None]),
                                        "blurhash": "UBL_:rOpGG-;~qRjWBay", "meta": {"original": {"width": 1920, "height": 1080}}}]
    return json.dumps(status, ensure_ascii=False).encode()


def statuses(count: int, seed: int = 7) -> list[str]:
    import csv

    rng = random.Random(seed)
    with open(TWEETS, encoding="utf-8", newline="") as handle:
        tweets = [row["text"] for row in csv.DictReader(handle)]
    out = []
    for i in range(count):
        r = rng.random()
        if r < 0.01:
            text, lang = rng.choice(MATCHES), "id"
        elif r < 0.35:
            text, lang = rng.choice(ENGLISH), "en"
        elif r < 0.55:
            text, lang = rng.choice(JAPANESE), "ja"
        elif r < 0.60:
            text, lang = rng.choice(KOREAN), "ko"
        elif r < 0.72:
            text, lang = rng.choice(ACCENTED), rng.choice(["pt", "es", "de", "id"])
        else:
            text, lang = rng.choice(tweets), "id"
        out.append(_status(rng, i, text, lang).decode())
    return out


def obvious(terms: list[str]) -> Callable[[str], bool]:
    match = Terms(terms).match

    def accept(data: str) -> bool:
        try:
            status = json.loads(data)
        except ValueError:
            return False
        if not isinstance(status, dict) or not isinstance(status.get("content"), str):
            return False
        media = [m.get("description") for m in status.get("media_attachments") or [] if isinstance(m, dict)]
        return match("\n".join([status.get("spoiler_text") or "", html_text(status["content"]), *filter(None, media)]))

    return accept


def ours(terms: list[str]) -> Callable[[str], bool]:
    accept = mastodon_public.Matcher(Terms(terms))
    return lambda data: accept(data) is not None


def measure(accept: Callable[[str], bool], batch: list[str], repeat: int) -> tuple[float, list[bool]]:
    best, answers = float("inf"), []
    for _ in range(repeat):
        start = time.process_time()
        answers = [accept(data) for data in batch]
        best = min(best, time.process_time() - start)
    return best, answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not TWEETS.exists():
        raise SystemExit(f"no TwitMacet posts at {TWEETS} (set SIAGA_DEVDATA_DIR); nothing to measure")
    terms = list(dict.fromkeys(t for q in SEARCHES for t in mastodon_public.query_terms(q)))
    batch = statuses(args.events)
    mean = sum(len(s.encode()) for s in batch) / len(batch)
    results = {name: measure(make(terms), batch, args.repeat) for name, make in (("obvious", obvious), ("ours", ours))}
    if results["obvious"][1] != results["ours"][1]:
        differ = [i for i, (a, b) in enumerate(zip(results["obvious"][1], results["ours"][1])) if a != b]
        raise SystemExit(f"the filters disagree on {len(differ)} statuses, e.g. {batch[differ[0]][:300]}")
    print(f"{len(batch)} statuses, mean {mean:.0f} bytes, {sum(results['ours'][1])} announced by both")
    for name, (seconds, _) in results.items():
        print(f"{name:8} {seconds / len(batch) * 1e6:6.1f} µs/status  {len(batch) / seconds:9,.0f} statuses/s on one core")


if __name__ == "__main__":
    main()
