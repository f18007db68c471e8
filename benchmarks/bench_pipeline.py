"""Source to outbox in one process: posts written to a replay source, then the two jobs the DAG
tasks run, `siaga.pipeline.ingest` and `siaga.pipeline.detect_incidents` (ingest -> store ->
tag -> count -> baseline -> spikes -> incidents -> outbox), on the database given.

    python benchmarks/bench_pipeline.py --db URL --posts N [--json] [--rss] [--old] [--seed S]

The N posts are generated (seeded): one in ten a hazard report (flood, fire, landslide, fallen
tree, traffic accident or jam) naming one of Buleleng's 148 villages or its roads, spread over all
of them, a third of those reports from --events real events (one hazard in one village or on one
road, many people), by many authors over the last 50 minutes; the rest everyday chatter, a third
of it naming a village. Every text is distinct (nothing is won by repeated texts), and each
hazard report is worded its reporter's own way (opener, phrasing of what and where, detail,
closer drawn apart), as witnesses write: `siaga.copies` rightly counts near-identical texts
from many accounts as one report, so reports from one template would never make an event.

The figure is the steady state of a process that already holds the place and hazard matchers
(a worker that tagged before): building them is timed apart (`startup_seconds`; the on-disk
matcher cache of issue 14 is what makes it small for a fresh task process) and added in
`posts_per_s_cold`. The database is emptied and migrated first (it must be one for benchmarks).

With --json: prints, last, one JSON object (posts, seconds, posts_per_s, outbox_rows and the
stage times). Without: the current path and today's per-row path (`pipeline_legacy.py`) side by
side, each on a freshly emptied database, and the peak RSS of a detect task in a child process
(on an empty matcher cache and on a warm one; target <= 300 MB). --rss adds those figures to the
JSON run (and prints them on the line before it).
"""
from __future__ import annotations

import argparse
import atexit
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator
from unittest import mock

import yaml

REPO = Path(__file__).resolve().parents[1]
SOURCE = "bench"

# A hazard report is an opener, one of its hazard's ways of saying what happened where, one of
# its details and a closer, each drawn apart: people at one event word it differently. Fixed
# templates varying only a number were near-identical texts that `siaga.copies` (rightly) counts
# as one report however many accounts posted them, so no event reached three authors.
HAZARD_TEXTS = {
    "flood": ("Banjir di Desa {v}", "{v} banjir lagi", "Desa {v} kebanjiran", "air sungai meluap masuk {v}",
              "genangan tinggi di {v}", "rumah-rumah di {v} terendam banjir"),
    "fire": ("Kebakaran rumah warga di Desa {v}", "ada kebakaran di {v}", "api besar di {v}",
             "gudang terbakar di Desa {v}", "{v} kebakaran, asap hitam tebal"),
    "landslide": ("Tanah longsor di Desa {v}", "longsor lagi di {v}", "tebing runtuh di {v}",
                  "jalan desa {v} tertimbun longsor", "material longsor menutup akses {v}"),
    "fallen_tree": ("Pohon tumbang di Desa {v}", "ada pohon besar tumbang di {v}", "pohon roboh menutup jalan {v}",
                    "{v}: pohon tumbang kena kabel listrik"),
    "traffic_accident": ("Kecelakaan di {r}", "laka lantas di {r}", "tabrakan motor dan truk di {r}",
                         "ada kecelakaan barusan di {r}", "{r} ada tabrakan"),
    "traffic_jam": ("Macet total di {r}", "{r} macet parah", "antrean kendaraan panjang di {r}",
                    "lalu lintas di {r} tersendat", "kendaraan tidak bergerak di {r}"),
}
HAZARD_DETAILS = {
    "flood": ("air masuk rumah {n} cm", "air setinggi lutut", "{n} rumah terendam", "warga mengungsi ke balai banjar",
              "jalan tidak bisa dilewati motor", "hujan deras dari subuh", "sawah ikut terendam"),
    "fire": ("{n} unit damkar datang", "asap terlihat dari jauh", "warga bantu padamkan pakai ember",
             "api cepat merembet", "belum tahu penyebabnya", "listrik dipadamkan sementara"),
    "landslide": ("akses jalan tertutup {n} meter", "setelah hujan {n} jam", "warga diminta menjauh dari tebing",
                  "alat berat belum datang", "satu rumah rusak", "kendaraan putar balik"),
    "fallen_tree": ("kabel listrik putus", "menimpa warung", "jalan tertutup sebagian", "angin kencang sejak sore",
                    "petugas PLN sudah dihubungi", "motor tidak bisa lewat"),
    "traffic_accident": ("{n} korban dibawa ke RSUD", "dekat km {n}", "polisi sudah di lokasi", "ambulans baru datang",
                         "jalan jadi macet", "pengendara motor luka"),
    "traffic_jam": ("antrean {n} km", "sudah {n} menit tidak bergerak", "sejak pagi", "ada perbaikan jalan",
                    "truk mogok di tengah jalan", "cari jalan lain"),
}
OPENERS = ("", "", "Waduh, ", "Info: ", "Hati-hati, ", "Barusan lewat, ", "Astaga ", "Mohon doanya, ", "Lihat sendiri: ")
CLOSERS = ("", "", ".", "!", " semoga cepat tertangani", " mohon bantuan", " hati-hati yang mau lewat",
           " ada yang tahu info lanjut?", " tadi jam {h}", " #{tag}")
CHATTER = ("Selamat pagi", "Ngopi dulu", "Sarapan nasi jinggo", "Cuaca cerah", "Mendung tipis", "Lagi santai",
           "Antre di bank", "Jemput anak sekolah", "Latihan tari", "Upacara di pura", "Belanja ke pasar",
           "Main layangan", "Nonton bola", "Kerja bakti", "Latihan gamelan", "Nunggu hujan reda")
TOPICS = ("hari ini", "sama teman", "sebelum kerja", "habis sembahyang", "sore nanti", "akhir pekan ini",
          "bareng keluarga", "di rumah nenek", "rame banget", "enak sekali", "seru juga", "lumayan capek")
PLACES = ("Lovina", "pantai", "Singaraja", "warung", "kantor", "alun-alun", "terminal", "sawah", "pasar senggol")


@dataclass
class Run:
    """What one pass measured."""

    posts: int
    seconds: float
    stages: dict[str, float] = field(default_factory=dict)
    outbox_rows: int = 0
    incidents: int = 0
    alerts: int = 0
    stored: int = 0
    tagged: int = 0
    matches: int = 0
    geotags: int = 0
    area_counts: int = 0


# --- the posts --------------------------------------------------------------------------------


def generate(n: int, now: datetime, seed: int, events: int = 12) -> list[dict[str, Any]]:
    """N distinct posts as a replay source reads them, the last at `now` - 1 s. Hazard reports
    name any of the villages and roads; a third of them belong to `events` events (a hazard in
    one village or on one road, reported by many people)."""
    from siaga import settings
    from siaga.geodata import load_villages

    rng = random.Random(seed)
    villages = [v.name for v in load_villages(settings.geodata_dir() / "buleleng_villages.geojson")]
    # a road by any of the names people call it ("Jalur Gilimanuk", "Raya Seririt"), as roads.yaml
    # lists them: one long official name in every report made them near-identical copies
    named = {r["name"]: [r["name"], *r.get("variants", [])]
             for r in yaml.safe_load((settings.geodata_dir() / "roads.yaml").read_text(encoding="utf-8"))["roads"]
             if not r.get("generic")}
    roads = list(named)
    hazards = list(HAZARD_TEXTS)
    hot = [(rng.choice(hazards), rng.choice(villages), rng.choice(roads)) for _ in range(events)]
    out = []
    texts: set[str] = set()
    for i in range(n):
        when = now - timedelta(seconds=1 + rng.uniform(0, 50 * 60))
        if i % 10 == 0:
            if hot and rng.random() < 1 / 3:
                hazard, v, r = rng.choice(hot)
            else:
                hazard, v, r = rng.choice(hazards), rng.choice(villages), rng.choice(roads)
            text = hazard_report(rng, hazard, v, rng.choice(named[r]))
            while text in texts:
                text = hazard_report(rng, hazard, v, rng.choice(named[r]))
            texts.add(text)
        else:
            where = f" di {rng.choice(villages)}" if rng.random() < 0.33 else f" di {rng.choice(PLACES)}"
            text = f"{rng.choice(CHATTER)}{where} {rng.choice(TOPICS)} #{i}"
        out.append({"id": f"p{i}", "created_at": when.isoformat(), "text": text, "author": f"akun{rng.randrange(n)}",
                    "url": f"https://example.org/bench/{i}"})
    out.sort(key=lambda p: p["created_at"])
    return out


def hazard_report(rng: random.Random, hazard: str, village: str, road: str) -> str:
    """One person's report of `hazard` in `village` (or on `road`), worded their own way."""
    core = rng.choice(HAZARD_TEXTS[hazard]).format(v=village, r=road)
    detail = rng.choice(HAZARD_DETAILS[hazard]).format(n=rng.randint(2, 99))
    closer = rng.choice(CLOSERS).format(h=f"{rng.randint(0, 23):02d}.{rng.randint(0, 59):02d}", tag=rng.choice(
        ("infobuleleng", "singaraja", "balinews", "waspada", "bulelenginfo")))
    text = f"{rng.choice(OPENERS)}{core}, {detail}{closer}"
    return text[0].upper() + text[1:]


# --- the deployment ---------------------------------------------------------------------------


_ROOT: list[Path] = []  # the one config folder of this benchmark process (see `deployment`)


def _root() -> Path:
    if not _ROOT:
        _ROOT.append(Path(tempfile.mkdtemp(prefix="siaga-bench-pipeline-")))
        atexit.register(shutil.rmtree, _ROOT[0], True)
    return _ROOT[0]


@contextmanager
def deployment(db_url: str, feed: Path) -> Iterator[Path]:
    """A config folder whose only source is the replay file `feed` (identity clock), no quiet
    hours, and the environment the jobs read pointing at it and at `db_url`.

    The folder is at the same path in every run of this process, as a deployment's is: the
    hazard lists' matcher cache is keyed on their folder, so a fresh folder per run rebuilt the
    hazard matcher inside the timed run, which a worker that tagged before does not do."""
    from siaga_dev.airflow_stack import config_copy

    cfg = config_copy(_root() / "config", [{"name": SOURCE, "kind": "replay", "path": str(feed), "clock": {"mode": "identity"}}])
    env = {"SIAGA_DB_URL": db_url, "SIAGA_CONFIG_DIR": str(cfg), "SIAGA_REPLAY_CLOCK": "identity"}
    with mock.patch.dict(os.environ, env):
        try:
            yield cfg
        finally:
            shutil.rmtree(cfg, ignore_errors=True)


def reset(db_url: str) -> None:
    """Empty the benchmark database and migrate it to the newest schema."""
    from sqlalchemy import MetaData, text

    from siaga import store

    engine = store.engine_for(db_url)
    meta = MetaData()
    meta.reflect(engine)
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("PRAGMA foreign_keys=OFF"))
        meta.drop_all(conn)
    store.migrate(db_url)


def counts(db_url: str) -> dict[str, int]:
    from sqlalchemy import text

    from siaga import store

    tables = {"stored": "posts", "matches": "hazard_matches", "geotags": "geotags", "area_counts": "area_counts",
              "alerts": "alerts", "incidents": "incidents", "outbox_rows": "outbox"}
    with store.engine_for(db_url).connect() as conn:
        out = {k: conn.execute(text(f"select count(*) from {t}")).scalar_one() for k, t in tables.items()}
        out["tagged"] = conn.execute(text("select count(*) from post_tags")).scalar_one()
    return out


# --- one pass ---------------------------------------------------------------------------------


@contextmanager
def timed(stages: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        stages[name] = stages.get(name, 0.0) + time.perf_counter() - start


def history_of(db_url: str, n: int, now: datetime, seed: int, geotagger: Any, days: float) -> list[dict[str, Any]]:
    """`days` of per-area counts before the lookback, for the baseline: the everyday level of the
    benchmark's own posts (its hazard chatter, no events), measured by running the pipeline once
    over N such posts (untimed) and repeating the area counts it stored back in time. Without it
    an empty baseline makes every village with three hazard posts a spike, which a deployment
    that has seen this chatter for days would not raise."""
    from sqlalchemy import select

    from siaga import store
    from siaga.detection_config import DetectSettings

    if days <= 0:
        return []
    posts = generate(n, now, seed + 1, events=0)
    run_once(db_url, posts, now, geotagger, legacy=False)
    table = store.AreaCount.__table__
    with store.engine_for(db_url).connect() as conn:
        counted = [dict(r._mapping) for r in conn.execute(select(table))]
    for row in counted:
        row.pop("id")
    if not counted:
        return []
    first = min(r["bucket_start"] for r in counted)
    span = max(r["bucket_start"] for r in counted) - first + timedelta(minutes=5)
    lookback = DetectSettings().lookback
    out = []
    shift = now - first + lookback + timedelta(minutes=5)
    while shift < timedelta(days=days) + lookback:
        out += [{**r, "bucket_start": r["bucket_start"] - shift} for r in counted]
        shift += span
    return out


def run_once(db_url: str, posts: list[dict[str, Any]], now: datetime, geotagger: Any, legacy: bool,
             history: list[dict[str, Any]] | None = None) -> Run:
    """Ingest then detect, through `siaga.pipeline`, on an emptied database holding `history`."""
    from siaga import counting, pipeline, store, tagging

    reset(db_url)
    if history:
        with store.session_scope(db_url) as session:
            store.bulk_insert(session, store.AreaCount.__table__, history)
    with tempfile.TemporaryDirectory(prefix="siaga-bench-feed-") as tmp:
        feed = Path(tmp) / "feed.jsonl"
        feed.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in posts), encoding="utf-8")
        with deployment(db_url, feed):
            if legacy:
                sys.path.insert(0, str(Path(__file__).parent))
                from pipeline_legacy import legacy_path
            path = legacy_path() if legacy else nullcontext()
            stages: dict[str, float] = {}
            real_tag, real_write = tagging.tag_pending, counting.write_area_counts
            with path:
                inner_tag, inner_write = tagging.tag_pending, counting.write_area_counts

                def tag(*a: Any, **k: Any) -> int:
                    with timed(stages, "tag"):
                        return inner_tag(*a, **k)

                def write(*a: Any, **k: Any) -> int:
                    with timed(stages, "area counts"):
                        return inner_write(*a, **k)

                # the warm worker: the matchers built beforehand stand in for building them per run
                warm = mock.patch.object(tagging, "default_geotagger", lambda: geotagger) \
                    if hasattr(tagging, "default_geotagger") else nullcontext()
                with warm, \
                        mock.patch.object(tagging, "tag_pending", tag), mock.patch.object(counting, "write_area_counts", write):
                    start = time.perf_counter()
                    with timed(stages, "ingest"):
                        pipeline.ingest(SOURCE, now)
                    with timed(stages, "detect"):
                        pipeline.detect_incidents(now)
                    seconds = time.perf_counter() - start
            assert tagging.tag_pending is real_tag and counting.write_area_counts is real_write
    stages["detect after tagging"] = stages["detect"] - stages.get("tag", 0.0)
    return Run(posts=len(posts), seconds=seconds, stages=stages, **counts(db_url))


# --- peak RSS of a detect task ----------------------------------------------------------------

# The start of every measured child process (bench_partitions.py uses it too).
CHILD_PREAMBLE = """
import json, sys, time
from datetime import datetime


def peak_rss_mb():
    # VmHWM: this process's own high-water mark. getrusage's ru_maxrss is not: Linux carries
    # the parent's peak across the fork and exec that started this process.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024


start = time.perf_counter()
"""

_CHILD = CHILD_PREAMBLE + """from siaga import pipeline
report = pipeline.detect_incidents(datetime.fromisoformat(sys.argv[1]))
print(json.dumps({"seconds": time.perf_counter() - start, "tagged": report["tagged"],
                  "peak_rss_mb": peak_rss_mb()}))
"""


# Issue 14's budget for a detect task's peak RSS (national gazetteer, 20,000 posts).
RSS_TARGET_MB = 300


def detect_rss(db_url: str, posts: list[dict[str, Any]], now: datetime, history: list[dict[str, Any]]) -> dict[str, Any]:
    """Ingest in this process, then one detect task in a fresh child process, as a worker runs
    it (national gazetteer unless SIAGA_GAZETTEER says otherwise): its peak RSS and wall time.
    Twice, each on a freshly ingested database: "cold" on an empty matcher cache (the task
    builds the matchers and caches them, as the first run after a deploy or a config change
    does) and "warm" on the cache that run left (every later run); "peak_rss_mb" is the higher."""
    from siaga import pipeline, store

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="siaga-bench-feed-") as tmp:
        feed = Path(tmp) / "feed.jsonl"
        feed.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in posts), encoding="utf-8")
        with deployment(db_url, feed):
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), os.environ.get("PYTHONPATH", "")]),
                   "SIAGA_CACHE_DIR": str(Path(tmp) / "matcher-cache")}
            for cache in ("cold", "warm"):
                reset(db_url)
                if history:
                    with store.session_scope(db_url) as session:
                        store.bulk_insert(session, store.AreaCount.__table__, history)
                pipeline.ingest(SOURCE, now)
                run = subprocess.run([sys.executable, "-c", _CHILD, now.isoformat()], env=env,
                                     check=True, capture_output=True, text=True).stdout
                out[cache] = json.loads(run.strip().splitlines()[-1])
    out["peak_rss_mb"] = max(out["cold"]["peak_rss_mb"], out["warm"]["peak_rss_mb"])
    return out


def rss_line(rss: dict[str, Any], posts: int) -> str:
    """The figure, printed on its own line with the target next to it."""
    verdict = "met" if rss["peak_rss_mb"] <= RSS_TARGET_MB else "NOT met"
    return (f"detect task peak RSS ({posts:,} posts, fresh process, VmHWM): "
            f"{rss['cold']['peak_rss_mb']:.0f} MB on an empty matcher cache ({rss['cold']['seconds']:.1f} s), "
            f"{rss['warm']['peak_rss_mb']:.0f} MB on a warm one ({rss['warm']['seconds']:.1f} s); "
            f"target <= {RSS_TARGET_MB} MB: {verdict}")


# --- report -----------------------------------------------------------------------------------


def summary(run: Run, startup: float) -> dict[str, Any]:
    return {
        "posts": run.posts, "seconds": round(run.seconds, 3), "posts_per_s": round(run.posts / run.seconds, 1),
        "outbox_rows": run.outbox_rows, "startup_seconds": round(startup, 3),
        "posts_per_s_cold": round(run.posts / (run.seconds + startup), 1),
        "stages": {k: round(v, 3) for k, v in run.stages.items()},
        "stored": run.stored, "tagged": run.tagged, "hazard_matches": run.matches, "geotags": run.geotags,
        "area_counts": run.area_counts, "alerts": run.alerts, "incidents": run.incidents,
    }


def side_by_side(new: Run, old: Run, startup: float, rss: dict[str, Any] | None, db_url: str) -> str:
    def row(label: str, a: str, b: str) -> str:
        return f"| {label} | {a} | {b} |"

    backend = db_url.split(":", 1)[0]
    lines = [f"{new.posts:,} posts, {backend}; matchers built once beforehand in {startup:.2f} s (not in the times below)",
             "", "| source -> outbox | current path | per-row path (before issue 14) |", "|---|---:|---:|",
             row("**posts/s**", f"**{new.posts / new.seconds:,.0f}**", f"**{old.posts / old.seconds:,.0f}**"),
             row("seconds", f"{new.seconds:.2f}", f"{old.seconds:.2f}")]
    for stage in ("ingest", "tag", "area counts", "detect after tagging"):
        lines.append(row(f"  {stage} (s)", f"{new.stages.get(stage, 0):.2f}", f"{old.stages.get(stage, 0):.2f}"))
    for label, key in (("posts stored / tagged", None), ("hazard matches", "matches"), ("geotags", "geotags"),
                       ("area_counts rows", "area_counts"), ("alerts", "alerts"), ("incidents", "incidents"),
                       ("outbox rows", "outbox_rows")):
        if key is None:
            lines.append(row(label, f"{new.stored:,} / {new.tagged:,}", f"{old.stored:,} / {old.tagged:,}"))
        else:
            lines.append(row(label, f"{getattr(new, key):,}", f"{getattr(old, key):,}"))
    if rss:
        lines += ["", rss_line(rss, new.posts)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="database URL (emptied first!); default: a temporary SQLite file")
    parser.add_argument("--posts", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--history-days", type=float, default=2,
                        help="days of everyday counts for the baseline (default 2; 0: an empty baseline)")
    parser.add_argument("--events", type=int, default=12, help="events among the hazard reports (default 12)")
    parser.add_argument("--json", action="store_true", help="only the current path; print one JSON object last")
    parser.add_argument("--rss", action="store_true", help="with --json: also the peak RSS of a detect task (child process)")
    parser.add_argument("--no-old", action="store_true", help="without --json: skip the per-row path")
    args = parser.parse_args(argv)
    tmp = None
    db_url = args.db
    if not db_url:
        tmp = tempfile.mkdtemp(prefix="siaga-bench-db-")
        db_url = f"sqlite:///{tmp}/bench.db"
    if db_url.startswith("postgresql://"):
        db_url = "postgresql+psycopg2://" + db_url[len("postgresql://"):]
    try:
        from siaga.geotag import default_geotagger

        start = time.perf_counter()
        geotagger = default_geotagger()
        startup = time.perf_counter() - start
        now = datetime.now(timezone.utc).replace(microsecond=0)
        posts = generate(args.posts, now, args.seed, args.events)
        history = history_of(db_url, args.posts, now, args.seed, geotagger, args.history_days)
        new = run_once(db_url, posts, now, geotagger, legacy=False, history=history)
        rss = detect_rss(db_url, posts, now, history) if (args.rss or not args.json) else None
        if args.json:
            result = summary(new, startup)
            if rss:
                print(rss_line(rss, new.posts))
                result["detect_peak_rss_mb"] = round(rss["peak_rss_mb"], 1)
                result["detect_peak_rss_mb_cold_cache"] = round(rss["cold"]["peak_rss_mb"], 1)
                result["detect_peak_rss_mb_warm_cache"] = round(rss["warm"]["peak_rss_mb"], 1)
                result["detect_cold_seconds"] = round(rss["cold"]["seconds"], 2)
            print(json.dumps(result))
            return 0
        old = None if args.no_old else run_once(db_url, posts, now, geotagger, legacy=True, history=history)
        if old is None:
            print(json.dumps(summary(new, startup), indent=1))
        else:
            print(side_by_side(new, old, startup, rss, db_url))
        return 0
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
