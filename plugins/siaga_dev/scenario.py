"""Generate the synthetic demo scenario: a morning in Buleleng with ordinary chatter, a flood in
one village and a traffic jam on one road, as a replay feed.

Synthetic on purpose (every post says so in its `synthetic` field): real posts about real people
have no place in a repository. The places are real ones (Desa Sangsit in Kec. Sawan, Jalan Ahmad
Yani in Singaraja) written the ways people write them, so the demo exercises the real geotagger.
Seeded, so the file is reproducible: `siaga scenario > scenarios/demo.jsonl`.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterator, TextIO

from siaga.vocabulary import LOCAL_TZ

START = datetime(2026, 1, 15, 6, 0, tzinfo=LOCAL_TZ)
HOURS = 6


@dataclass(frozen=True)
class Event:
    """A burst of posts about one hazard in one place."""

    name: str
    hazard: str
    start: datetime
    minutes: int
    posts: int
    authors: int
    templates: tuple[str | tuple[str, tuple[str, ...]], ...]  # text, or (text, further labels)


FLOOD = Event(
    name="flood-sangsit",
    hazard="flood",
    start=START + timedelta(hours=2, minutes=10),
    minutes=70,
    posts=16,
    authors=11,
    templates=(
        "Banjir di Desa Sangsit, air masuk rumah warga {n}",
        "bnjir lg di sangsit kec sawan, air udah selutut",
        "Sangsit banjir parah, air setinggi pinggang, warga mengungsi",
        "Info: banjir merendam Desa Sangsit, Sawan. Hati-hati yang lewat",
        ("banjirrr di sangsit, motor ga bisa lewat {n}", ("road_closure",)),
        "Hujan deras dari subuh, Desa Sangsit kebanjiran",
        "Ada warga terjebak banjir di Sangsit, mohon bantuan BPBD",
        "Sungai meluap, banjir di Sangsit Sawan makin tinggi",
    ),
)
JAM = Event(
    name="jam-ahmad-yani",
    hazard="traffic_jam",
    start=START + timedelta(hours=1, minutes=5),
    minutes=40,
    posts=12,
    authors=9,
    templates=(
        "Macet total di Jalan Ahmad Yani Singaraja {n}",
        "Jl. Ahmad Yani Singaraja macet parah, kendaraan ga gerak",
        "mcet bgt di jalan ahmad yani singaraja pagi ini",
        "Jl A. Yani, Singaraja: antrian kendaraan panjang, hindari dulu",
        "Lalu lintas Jalan A. Yani Singaraja padat merayap",
        # Without the town a street name could be anywhere: kept, flagged, not counted.
        "Jl. Ahmad Yani macet parah",
    ),
)
CHATTER = (
    "Selamat pagi Singaraja, cuaca cerah hari ini",
    "Ngopi dulu di Lovina sebelum kerja",
    "Ada yang tahu warung babi guling enak di Seririt?",
    "Upacara di pura desa hari ini, jalan agak ramai",
    "Banjir diskon di toko sebelah, ayo belanja",
    "Pasar Anyar rame banget pagi ini",
    "Sunrise di pantai Lovina indah sekali",
    "Hari ini les bahasa Inggris libur",
    "Macet rezeki nih, orderan sepi terus",
    "Gitgit waterfall masih sepi pengunjung pagi ini",
    "Panen cengkeh di Munduk tahun ini bagus",
    "Semangat kerja teman-teman Buleleng",
    "Kebanjiran order jahitan menjelang hari raya",
    "Hujan gerimis di Sukasada, bawa jas hujan",
    "Jalan-jalan ke Pemuteran lihat terumbu karang",
)


def _times(event: Event, rng: random.Random) -> list[datetime]:
    """Posts accelerate through the event, as reports do when water rises."""
    offsets = sorted(rng.random() ** 0.8 * event.minutes for _ in range(event.posts))
    return [event.start + timedelta(minutes=o) for o in offsets]


def _event_posts(event: Event, rng: random.Random) -> Iterator[dict]:
    authors = [f"{event.name}-warga{i}" for i in range(event.authors)]
    for i, when in enumerate(_times(event, rng)):
        author = authors[i] if i < len(authors) else rng.choice(authors)
        template = rng.choice(event.templates)
        text, more = (template, ()) if isinstance(template, str) else template
        text = text.format(n=rng.choice(["", "!", "!!", "...", "#waspada"]))
        yield {"created_at": when, "text": text.strip(), "author": author, "event": event.name, "labels": [event.hazard, *more]}


def _chatter(rng: random.Random) -> Iterator[dict]:
    when = START
    while when < START + timedelta(hours=HOURS):
        when += timedelta(minutes=rng.expovariate(1 / 4))
        yield {"created_at": when, "text": rng.choice(CHATTER), "author": f"warga{rng.randrange(60)}", "event": None, "labels": []}


def generate(seed: int = 7) -> list[dict]:
    """The scenario's posts in time order, as the replay source reads them."""
    rng = random.Random(seed)
    rows = list(_chatter(rng)) + list(_event_posts(JAM, rng)) + list(_event_posts(FLOOD, rng))
    rows = [r for r in rows if r["created_at"] < START + timedelta(hours=HOURS)]
    rows.sort(key=lambda r: r["created_at"])
    out = []
    for i, r in enumerate(rows, start=1):
        out.append(
            {
                "id": f"demo-{i:04d}",
                "created_at": r["created_at"].isoformat(timespec="seconds"),
                "text": r["text"],
                "author": r["author"],
                "url": f"https://example.org/siaga-demo/{i}",
                "source": "demo",
                "synthetic": True,
                "scenario_event": r["event"],
                # What a person reading the post would say it reports: `siaga backtest` scores on it.
                "labels": r["labels"],
            }
        )
    return out


def write(out: TextIO) -> int:
    """Write the scenario as JSON Lines; returns how many posts."""
    rows = generate()
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(rows)
