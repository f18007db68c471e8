"""Post-to-Slack latency and pipeline throughput through a real Airflow deployment: scheduler,
dag-processor, api-server and Celery workers on PostgreSQL and Redis (siaga_dev.airflow_stack),
the three Siaga DAGs unpaused, ingest polling every minute (or every `--poll-intervals` seconds,
one after the other), and the fake Slack server in this process.

Latency: fire events in distinct, non-adjacent villages, one every `--interval` seconds, each
two posts by two people 5 s apart (a fire needs two posts from two accounts). A post is visible
at its source at its timestamp (a replay source on the identity clock serves what its time has
come for); an event's latency runs from its last post becoming visible to the first Slack message
naming its village. Fires, because a fire is in one place: floods in several kecamatan at once
are one regional incident since issue 18 (`siaga.regional`), so the flood events this benchmark
used until 2026-12-03 became one regency-wide incident and only its first message named a place. Each event's latency is also split into its steps (STEPS: the wait for the poll, the
ingest task, the scheduler's hop to detect, ...) from the Siaga database and the task instances
in Airflow's metadata database.

Push (`--push`, or `--push both` for polled-only and pushed side by side): the events are statuses on a fake Mastodon instance (tests/support/fakeapis.py,
in this process) whose source has `push: true`; the triggerer listens to its hashtag stream and
each announcement starts an ingest run at once, while the one-minute poll stays. An event's
latency runs from its last status being added (visible on the timeline and announced on the
stream at the same moment) to the Slack message. `--push-via x`: the events are tweets on the
fake X API instead, whose source has `push: true`: the triggerer syncs its rules and listens to
the filtered stream, and the ingest run reads the tweets through recent search.
`--push-via mastodon_search`: the events are statuses found by a Mastodon search, the fake's
search index lagging as Mastodon 4.2's does (SEARCH_INDEX: indexed once a minute, refreshed every
30 s, random phases); pushed, the triggerer reads the public timeline stream filtered to the
search's words and the woken run reads the statuses it names by id, not waiting for the index;
`--push both` also measures the same source polled only.
`--push-via rss`: the events are items of a fake agency feed whose source has `push: true`: the
triggerer looks at the feed every 15 s (`watch.WATCH_EVERY`, a conditional GET) and a new item
starts the run; `--push both` also measures the same feed polled only.

Throughput: `--posts` posts (one in ten a hazard report) become visible at once, split over
four sources so ingest maps over four tasks; timed from the first ingest task's start to every
post stored, tagged and counted and the detect run's outbox written, with one and two workers.

Usage: python benchmarks/bench_latency.py [--minutes 10] [--interval 20] [--poll-intervals 60,30]
       [--push [on|both]] [--push-via mastodon|mastodon_search|x|rss] [--posts 4000] [--skip-latency] [--skip-throughput] [--write]
"""
from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from siaga import settings, store
from siaga_dev import airflow_stack as st
from siaga_dev.fakeslack import FakeSlack

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from support.fakeapis import X_TOKEN, FakeApis  # noqa: E402 - the fake Mastodon and X live with the tests' fakes
from support.feeds import rss_feed, rss_item  # noqa: E402 - and the feeds the fake sites serve

PUSH_TAG = "bencanabuleleng"
X_CONN = "x_bench"  # the pushed X source's connection: its token is the fake's, from the environment
X_QUERY = "kebakaran"  # the pushed X source's query (and stream rule): every event post says it
MASTODON_CONN = "mastodon_bench"  # `--push-via mastodon_search`: the public timeline stream needs a user token
SEARCH_INDEX = (60.0, 30.0)  # Mastodon 4.2+: indexing job every minute, index refreshed every 30 s
FEED = "bpbd.xml"  # `--push-via rss`: the fake site's feed

TOKEN = "xoxb-bench-latency"
REDIS_DB = 12
HAZARD = "fire"
EVENT_TEXTS = ("Kebakaran rumah di Desa {v}, api cepat membesar", "Ada kebakaran di {v}, asap hitam tebal terlihat dari jauh")
LAST = len(EVENT_TEXTS) - 1  # the post that completes an event
BACKGROUND = ("Selamat pagi Singaraja, cuaca cerah hari ini", "Ngopi dulu di Lovina sebelum kerja",
              "Pasar Anyar rame banget pagi ini", "Sunrise di pantai Lovina indah sekali",
              "Upacara di pura desa hari ini", "Ada yang tahu warung enak di Seririt?")


# --- scenario ---------------------------------------------------------------------------------------


def event_villages(count: int) -> list[str]:
    """Villages whose event texts tag as HAZARD in that village, no two adjacent, taken
    round-robin over districts (so events do not pile up in one district)."""
    from siaga.hazards import HazardSet
    from siaga.tagging import Tagger

    tagger = Tagger(HazardSet.load(settings.config_dir() / "hazards"))
    gaz = tagger.geotagger.gaz
    by_district: dict[str, list] = {}
    for v in gaz.villages.values() if isinstance(gaz.villages, dict) else gaz.villages:
        by_district.setdefault(v.district, []).append(v)
    chosen, blocked = [], set()
    queues = [sorted(vs, key=lambda v: v.code) for _, vs in sorted(by_district.items())]
    while len(chosen) < count and any(queues):
        for queue in queues:
            while queue:
                v = queue.pop(0)
                if v.code in blocked or not _tags_as_event_in(tagger, v):
                    continue
                chosen.append(v.name)
                blocked.add(v.code)
                try:
                    blocked.update(gaz.adjacent_villages(v.code))
                except KeyError:
                    pass
                break
            if len(chosen) >= count:
                break
    return chosen


def _tags_as_event_in(tagger, village) -> bool:
    """All event texts are HAZARD placed in this village with the confidence that counts towards
    its spike. (Checking only the village's code picked Tista once: a namesake of Tista in
    Tabanan, so "Desa Tista" alone is placed at 0.4 confidence, shown but never counted, and
    that event could not alert: the "1 of 25 never alerted" of issue 14.)"""
    from siaga.counting import counts_towards_areas

    for text in EVENT_TEXTS:
        result = tagger.tag(text.format(v=village.name))
        places = [p for p in result.geotag.places if p.kind == "village" and counts_towards_areas(p)]
        if [m.hazard for m in result.hazards] != [HAZARD] or [p.code for p in places] != [village.code]:
            return False
    return True


def post(pid: str, when: datetime, text: str, author: str) -> str:
    return json.dumps({"id": pid, "created_at": when.isoformat(), "text": text, "author": author,
                       "url": f"https://example.org/bench/{pid}"}, ensure_ascii=False)


def config_for(root: Path, sources: dict[str, Path | str], via: str = "mastodon", push: bool = True) -> Path:
    """config/ with the given sources only, no quiet hours: a path is a replay file (identity
    clock), a URL a fake whose source pushes: a Mastodon instance's PUSH_TAG, (`via`
    "mastodon_search") its search for X_QUERY, (`via` "x") X's recent search and filtered
    stream for X_QUERY, or (`via` "rss") an agency's feed, watched by the triggerer every
    `watch.WATCH_EVERY` seconds. `push` False: the same fake source, polled only."""
    def pushed(name: str, where: str) -> dict:
        if via == "rss":
            return {"name": name, "kind": "rss", "push": push, "feeds": [f"{where}/feeds/{FEED}"]}
        if via == "x":
            return {"name": name, "kind": "x", "push": push, "conn_id": X_CONN, "api": where, "queries": [X_QUERY]}
        if via == "mastodon_search":
            return {"name": name, "kind": "mastodon", "push": push,
                    "instances": [{"url": where, "conn_id": MASTODON_CONN, "searches": [X_QUERY]}]}
        return {"name": name, "kind": "mastodon", "push": push, "instances": [{"url": where, "hashtags": [PUSH_TAG]}]}

    return st.config_copy(root / "config", [
        {"name": name, "kind": "replay", "path": str(where), "clock": {"mode": "identity"}} if isinstance(where, Path) else
        pushed(name, where) for name, where in sources.items()])


# --- deployment -------------------------------------------------------------------------------------


class Siaga:
    """A fresh Siaga database and config, and the worker environment that points at them."""

    def __init__(self, root: Path, sources: dict[str, Path | str], fake: FakeSlack, via: str = "mastodon", push: bool = True):
        self.db = st.create_database("siaga_bench")
        self.url = st.pg_url(self.db)
        store.migrate(self.url)
        store.engine_for(self.url).dispose()
        self.env = {"SIAGA_DB_URL": self.url, "SIAGA_CONFIG_DIR": str(config_for(root, sources, via, push)),
                    "SIAGA_SLACK_TOKEN": TOKEN, "SIAGA_SLACK_BASE_URL": fake.base_url}

    def rows(self, sql: str) -> list[tuple]:
        return st.query(self.db, sql)

    def drop(self) -> None:
        st.drop_database(self.db)


def set_poll_interval(stack: st.AirflowStack, seconds: float) -> None:
    """Poll every `seconds` (SIAGA_POLL_INTERVAL, read when the ingest DAG file is parsed): the
    dag-processor restarts with it (it keeps the modules it imported, so it would not re-read
    the setting otherwise); workers pick it up when `use_workers` restarts them."""
    value = f"{seconds:g}"
    if stack.extra_env.get("SIAGA_POLL_INTERVAL", "60") == value:
        stack.extra_env["SIAGA_POLL_INTERVAL"] = value
        return
    stack.extra_env["SIAGA_POLL_INTERVAL"] = value
    stack.stop_proc("dag-processor", grace=10)
    stack.spawn("dag-processor", ["dag-processor"])


def use_workers(stack: st.AirflowStack, siaga: Siaga, count: int) -> None:
    """Workers for `siaga`'s database and config. The dag-processor restarts with that config
    too: the ingest DAG's schedule comes from its sources (a push source adds its asset)."""
    for name in [n for n in stack.procs if n.startswith("w")]:
        stack.stop_proc(name)
    stack.task_env = siaga.env
    stack.stop_proc("dag-processor", grace=10)
    stack.spawn("dag-processor", ["dag-processor"])
    for i in range(count):
        stack.start_worker(f"w{i + 1}")


# --- latency ----------------------------------------------------------------------------------------


def measure_latency(stack: st.AirflowStack, root: Path, minutes: float, interval: float, pushed: bool = False,
                    via: str = "mastodon") -> dict:
    arrivals: dict[str, float] = {}  # village -> wall time its first message arrived
    villages = event_villages(int(minutes * 60 / interval) + 1)
    # the alert's headline names its place as "— Desa <name>, Kec. <district>"; matching any
    # village name anywhere would credit an event with a message about another one
    headline = re.compile(r"— (?:Desa |Kelurahan |Kel\. )?(.+?), Kec\.")

    def on_message(message: dict) -> None:
        found = headline.search(message.get("text") or "")
        if found and found.group(1) in villages:
            arrivals.setdefault(found.group(1), time.time())

    fake = FakeSlack(token=TOKEN, on_message=on_message).start()
    start = datetime.now(timezone.utc) + timedelta(seconds=90)  # workers up, DAGs parsed, stream open
    schedule, visible, last_ids = event_schedule(villages, start, interval)
    # Mastodon searches: polled only or pushed, the same fake instance and its search-index lag
    on_fake = pushed or via in ("mastodon_search", "rss")
    feed = Toots(schedule, via) if on_fake else Feed(root / "latency.jsonl", schedule)
    siaga = Siaga(root / "latency", {"bench": feed.where}, fake, via, pushed)
    if on_fake:
        siaga.env["SIAGA_AUTHOR_KEY"] = "bench-latency-author-key"
    try:
        use_workers(stack, siaga, 1)
        feed.play()
        last = max(visible.values())
        print(f"latency: {len(villages)} events from {start:%H:%M:%S} every {interval:.0f} s"
              f"{f' (pushed via {via})' if pushed else ''}", flush=True)
        # wait for the last event, one bucket boundary (5 min) and a delivery after it
        deadline = last + 6.5 * 60
        while time.time() < deadline and len(arrivals) < len(villages):
            stack.check_alive()
            time.sleep(2)
        lat = sorted(arrivals[v] - visible[v] for v in villages if v in arrivals)
        ids = {k: feed.source_id(pid) for k, pid in last_ids.items()}
        steps = decompose(stack, siaga, villages, visible, arrivals, headline, ids)
        return {"events": len(villages), "alerted": len(lat), "latencies": lat, "steps": steps}
    finally:
        feed.close()
        fake.close()
        siaga.drop()


def event_schedule(villages: list[str], start: datetime, interval: float):
    """(the posts as (time, id, text, author) in time order, each village's moment its last
    post is visible (epoch seconds), each event's last post id by event number)."""
    lines, visible, last_ids, rng = [], {}, {}, random.Random(7)
    for k, village in enumerate(villages):
        t = start + timedelta(seconds=k * interval)
        for j, text in enumerate(EVENT_TEXTS):
            lines.append((t + timedelta(seconds=5 * j), f"e{k}-{j}", text.format(v=village), f"warga{k}x{j}"))
        visible[village] = (t + timedelta(seconds=5 * LAST)).timestamp()
        last_ids[k] = f"e{k}-{LAST}"
        lines.append((t + timedelta(seconds=2), f"b{k}", rng.choice(BACKGROUND) + f" #{k}", f"latar{k}"))
    lines.sort()
    return lines, visible, last_ids


class Feed:
    """The posts as a replay file on the identity clock: each is visible from its timestamp."""

    def __init__(self, path: Path, schedule: list) -> None:
        self.where, self.schedule = path, schedule
        path.write_text("", encoding="utf-8")

    def play(self) -> None:
        self.where.write_text("\n".join(post(pid, when, text, a) for when, pid, text, a in self.schedule) + "\n",
                              encoding="utf-8")

    def source_id(self, pid: str) -> str:
        return pid

    def close(self) -> None:
        pass


class Toots:
    """The posts as statuses on a fake Mastodon instance (or tweets on the fake X, `via` "x", or
    items of a fake site's feed, `via` "rss"), each added (and announced on the hashtag's or the
    filtered stream) at its time by a thread of this process."""

    def __init__(self, schedule: list, via: str = "mastodon") -> None:
        self.schedule, self.via = schedule, via
        self.fake = FakeApis().__enter__()
        if via == "mastodon_search":
            self.fake.search_index = SEARCH_INDEX
        self.where = self.fake.url
        # Mastodon's ids are the creation time in ms shifted 16 bits (a search's cursor looks back
        # by them, `mastodon.LOOK_BACK`); X's here are small numbers, as its fake takes any
        self.ids = {pid: (int(when.timestamp() * 1000) << 16) + i if via != "x" else 1000 + i
                    for i, (when, pid, _, _) in enumerate(schedule)}
        self.stop = threading.Event()
        self.items: list[str] = []  # `via` "rss": the feed's items, newest first
        if via == "rss":
            self._publish()

    def play(self) -> None:
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        for when, pid, text, author in self.schedule:
            if self.stop.wait(max(0.0, when.timestamp() - time.time())):
                return
            created = when.isoformat().replace("+00:00", "Z")
            if self.via == "rss":
                self.items.insert(0, rss_item(pid, text, when, author=author))
                self._publish()
            elif self.via == "x":
                self.fake.tweet(self.ids[pid], 0, text, username=author, created_at=created)
            else:
                self.fake.toot(PUSH_TAG, self.ids[pid], 0, text, acct=author, created_at=created)

    def _publish(self) -> None:
        """The feed as the site serves it from now on: every item so far, under a new ETag."""
        self.fake.data.feeds[FEED] = (f'"v{len(self.items)}"', rss_feed(*self.items, title="BPBD"))

    def source_id(self, pid: str) -> str:
        if self.via == "rss":
            return pid
        if self.via == "x":
            return str(self.ids[pid])
        return f"{self.fake.url.split('://', 1)[1]}:{self.ids[pid]}"

    def close(self) -> None:
        self.stop.set()
        self.fake.__exit__(None, None, None)


# The steps of one event's latency, in the order they happen: the time between two moments read
# from the Siaga database (when its last post was stored, which detect run wrote its outbox
# row), the Airflow metadata database (runs' trigger times, task instances' start and end) and
# the fake Slack server (when the message arrived).
STEPS = (
    ("poll wait", "last post visible → the ingest run's trigger time (with push: the announcement's run)"),
    ("ingest queued", "ingest run's trigger time → ingest task started (scheduler, Celery, fork)"),
    ("ingest task", "ingest task start → end (DAG-file parse, imports, ingest)"),
    ("hop to detect", "ingest task end → detect task start (asset event, new run, Celery)"),
    ("detect task", "detect task start → end, or → Slack message when detect delivers it"),
    ("hop to deliver", "detect task end → deliver task start (0 when detect delivers)"),
    ("deliver task", "deliver task start → Slack message (0 when detect delivers)"),
)


def decompose(stack: st.AirflowStack, siaga: Siaga, villages: list[str], visible: dict[str, float],
              arrivals: dict[str, float], headline: re.Pattern, last_ids: dict[int, str]) -> list[dict[str, float]]:
    """Each alerted event's latency split into STEPS. The ingest task is the one running when
    the event's last post was stored (`ingested_at`, wall clock); the detect task the one of
    the run whose time the outbox row carries (`created_at` is the run's time, not the wall
    clock); the deliver task the one running when Slack got the message."""
    wanted = ", ".join(f"'{sid}'" for sid in last_ids.values())
    stored = {sid: float(at) for sid, at in siaga.rows(
        f"select source_id, extract(epoch from ingested_at) from posts where source_id in ({wanted})")}
    written: dict[str, float] = {}
    for payload, created in siaga.rows("select payload, extract(epoch from created_at) from outbox order by id"):
        doc = payload if isinstance(payload, dict) else json.loads(payload)
        found = headline.search(doc.get("text") or "")
        if found:
            written.setdefault(found.group(1), float(created))
    tis = [(dag, float(start), float(end), float(run_after)) for dag, start, end, run_after in stack.task_states(
        "select ti.dag_id, extract(epoch from ti.start_date), extract(epoch from ti.end_date), "
        "extract(epoch from coalesce(r.data_interval_end, r.logical_date, r.run_after)) from task_instance ti "
        "join dag_run r on r.dag_id = ti.dag_id and r.run_id = ti.run_id "
        "where ti.start_date is not null and ti.end_date is not null")]

    def task(dag_id: str, *, running_at: float | None = None, run_time: float | None = None) -> tuple | None:
        if running_at is not None:
            hits = [t for t in tis if t[0] == dag_id and t[1] - 0.5 <= running_at <= t[2] + 0.5]
        else:
            hits = [t for t in tis if t[0] == dag_id and abs(t[3] - run_time) < 1.0]
        return min(hits, key=lambda t: t[1]) if hits else None

    out = []
    for k, village in enumerate(villages):
        last, run_time, arrived = stored.get(last_ids[k]), written.get(village), arrivals.get(village)
        if last is None or run_time is None or arrived is None:
            continue
        ingest, detect = task("siaga_ingest", running_at=last), task("siaga_detect", run_time=run_time)
        if ingest is None or detect is None:
            continue
        _, i_start, i_end, poll = ingest
        _, d_start, d_end, _ = detect
        deliver = None if arrived <= d_end + 0.5 else task("siaga_deliver", running_at=arrived)
        if deliver is None:  # delivered by the detect task itself
            detect_part, hop, deliver_part = arrived - d_start, 0.0, 0.0
        else:
            detect_part, hop, deliver_part = d_end - d_start, deliver[1] - d_end, arrived - deliver[1]
        out.append(dict(zip((name for name, _ in STEPS), (
            poll - visible[village], i_start - poll, i_end - i_start, d_start - i_end, detect_part, hop, deliver_part))))
    return out


# --- throughput -------------------------------------------------------------------------------------


def measure_throughput(stack: st.AirflowStack, root: Path, posts: int, workers: int) -> dict:
    fake = FakeSlack(token=TOKEN).start()
    dest = root / f"throughput{workers}"
    dest.mkdir(parents=True, exist_ok=True)
    sources = {f"feed{i}": dest / f"feed{i}.jsonl" for i in range(4)}
    for path in sources.values():
        path.write_text("", encoding="utf-8")
    siaga = Siaga(dest, sources, fake)
    try:
        use_workers(stack, siaga, workers)
        time.sleep(45)  # workers up and idle before the posts appear
        villages = event_villages(12)
        now = datetime.now(timezone.utc) - timedelta(seconds=1)
        rng = random.Random(workers)
        per_source: dict[str, list[str]] = {name: [] for name in sources}
        for i in range(posts):
            if i % 10 == 0:
                text = rng.choice(EVENT_TEXTS).format(v=rng.choice(villages))
            else:
                text = rng.choice(BACKGROUND) + f" ({i})"
            when = now - timedelta(seconds=rng.uniform(0, 1800))
            per_source[f"feed{i % 4}"].append(post(f"p{i}", when, text, f"akun{rng.randrange(posts)}"))
        visible_at = time.time()
        for name, path in sources.items():
            path.write_text("\n".join(per_source[name]) + "\n", encoding="utf-8")

        def done() -> bool:
            (stored, untagged), = siaga.rows("select (select count(*) from posts), (select count(*) from posts_to_tag)")
            return stored == posts and untagged == 0

        st.wait_for(done, 900, f"{posts} posts stored and tagged", stack, interval=0.5)
        tagged_at = time.time()
        # the detect run that tagged the last posts also wrote the outbox: wait for it to finish
        st.wait_for(lambda: not stack.task_states(
            "select 1 from task_instance where dag_id = 'siaga_detect' and state in ('running', 'queued', 'scheduled')"),
            300, "detect to finish", stack, interval=0.5)
        finished = time.time()
        first_ingest = stack.task_states(
            "select extract(epoch from min(start_date)) from task_instance where dag_id = 'siaga_ingest' "
            f"and task_id = 'ingest_source' and start_date >= to_timestamp({visible_at})")[0][0]
        outbox = siaga.rows("select count(*) from outbox")[0][0]
        elapsed = finished - float(first_ingest)
        return {"workers": workers, "posts": posts, "elapsed": elapsed, "posts_per_s": posts / elapsed,
                "poll_wait": float(first_ingest) - visible_at, "tagged_after": tagged_at - float(first_ingest),
                "outbox": outbox}
    finally:
        fake.close()
        siaga.drop()


# --- report -----------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


TARGET_P95 = 45.0  # seconds, at 1-minute polling (issue 14)


def _label(lat: dict) -> str:
    via = lat.get("via", "mastodon")
    if via == "mastodon_search":
        return f"polling every {lat['poll']:g} s{' + push' if lat.get('push') else ''} (Mastodon search)"
    return f"polling every {lat['poll']:g} s" + ((" + push" + (f" ({via})" if via != "mastodon" else "")) if lat.get("push") else "")


def render(lats: list[dict], runs: list[dict]) -> str:
    """One column per poll interval measured, then where each one's time went."""
    out = []
    if lats:
        head = " | ".join(_label(lat) for lat in lats)
        out += [f"| post-to-Slack latency | {head} |", "|---|" + "---:|" * len(lats)]

        def row(label: str, cell) -> str:
            return f"| {label} | " + " | ".join(cell(lat) for lat in lats) + " |"

        def q(lat: dict, n: int) -> str:
            return f"{pct(lat['latencies'], n):.0f} s" if lat["latencies"] else "–"

        out += [row("events alerted", lambda lat: f"{lat['alerted']} of {lat['events']}"),
                row("p50", lambda lat: q(lat, 50)),
                row(f"**p95** (target ≤ {TARGET_P95:.0f} s at 1-minute polling)", lambda lat: f"**{q(lat, 95)}**"),
                row("min / max", lambda lat: f"{lat['latencies'][0]:.0f} s / {lat['latencies'][-1]:.0f} s" if lat["latencies"] else "–")]
        for lat in lats:
            steps = lat.get("steps") or []
            if not steps:
                continue
            out += ["", f"| where the time goes, {_label(lat)} ({len(steps)} events) | p50 | p95 | max |",
                    "|---|---:|---:|---:|"]
            for name, what in STEPS:
                values = sorted(e[name] for e in steps)
                out.append(f"| {name}: {what} | {pct(values, 50):.1f} s | {pct(values, 95):.1f} s | {values[-1]:.1f} s |")
    if not runs:
        return "\n".join(out)
    out += ["", "| throughput: ingest → store (PostgreSQL) → detect → outbox | 1 worker | 2 workers |", "|---|---:|---:|"]
    by = {r["workers"]: r for r in runs}
    def row(label, key, fmt):
        return f"| {label} | " + " | ".join(fmt.format(by[w][key]) if w in by and by[w][key] is not None else "–" for w in (1, 2)) + " |"
    out += [row("posts", "posts", "{:,}"), row("first ingest task to outbox written", "elapsed", "{:.1f} s"),
            row("**posts/s**", "posts_per_s", "**{:.0f}**"), row("of which all posts tagged after", "tagged_after", "{:.1f} s"),
            row("outbox messages written", "outbox", "{}"), row("(wait for the next poll, not counted)", "poll_wait", "{:.0f} s")]
    return "\n".join(out)


def write_readme(table: str, note: str) -> None:
    path = REPO / "benchmarks" / "README.md"
    text = path.read_text(encoding="utf-8")
    section = f"## Scale-out\n\n{note}\n\n{table}\n"
    match = re.search(r"^## Scale-out\n.*?(?=^## |\Z)", text, flags=re.S | re.M)
    text = text[:match.start()] + section + "\n" + text[match.end():] if match else text.rstrip("\n") + "\n\n" + section
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10, help="how long events keep coming")
    parser.add_argument("--interval", type=float, default=20, help="seconds between events")
    parser.add_argument("--posts", type=int, default=4000, help="posts for the throughput runs")
    parser.add_argument("--poll-intervals", type=lambda v: [float(x) for x in v.split(",")], default=[60.0],
                        help="comma-separated seconds between polls (SIAGA_POLL_INTERVAL) to measure latency at, "
                             "one after the other on the same stack (default 60)")
    parser.add_argument("--push", choices=("off", "on", "both"), nargs="?", const="on", default="off",
                        help="events arrive on a pushed Mastodon hashtag (the poll interval still applies); "
                             "`both`: polled only, then pushed, side by side on the same stack")
    parser.add_argument("--push-via", choices=("mastodon", "mastodon_search", "x", "rss"), default=None,
                        help="what the pushed events are: statuses on a Mastodon hashtag (default), statuses found by a "
                             "Mastodon search (pushed by the public timeline stream; the fake's search index lags as "
                             "Mastodon's does, SEARCH_INDEX, also when polled only), tweets on X's filtered stream, or "
                             "items of an RSS feed the triggerer watches; given alone, implies --push on")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--write", action="store_true", help="write the table into benchmarks/README.md")
    args = parser.parse_args(argv)
    via = args.push_via or "mastodon"
    if args.push_via and args.push == "off":
        args.push = "on"
    reason = st.services_unreachable()
    if reason:
        print(f"bench_latency: needs PostgreSQL and Redis on 127.0.0.1: {reason}", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="siaga-bench-latency-"))
    stack = st.AirflowStack(root=root / "stack", redis_db=REDIS_DB, worker_concurrency=4)
    if via == "x":  # the triggerer (stream, rules) and the workers (recent search) both need it
        stack.extra_env[settings.env_token_name(X_CONN)] = X_TOKEN
    if via == "mastodon_search":  # the triggerer's public timeline stream needs one (the fake takes any)
        stack.extra_env[settings.env_token_name(MASTODON_CONN)] = "bench-user-token"
    ok = False
    try:
        stack.start()
        lats = []
        pushes = {"off": (False,), "on": (True,), "both": (False, True)}[args.push]
        for poll, pushed in [] if args.skip_latency else [(p, q) for p in args.poll_intervals for q in pushes]:
            set_poll_interval(stack, poll)
            lat = {"poll": poll, "push": pushed, "via": via,
                   **measure_latency(stack, root, args.minutes, args.interval, pushed, via)}
            lats.append(lat)
            print(f"latency at {poll:g} s polling{f' with push via {via}' if pushed else ''}: {lat['alerted']}/{lat['events']} alerted: "
                  f"{[round(x) for x in lat['latencies']]}", flush=True)
            for event in lat["steps"]:
                print("latency steps: " + ", ".join(f"{k} {v:.1f}" for k, v in event.items()), flush=True)
        runs = []
        for workers in () if args.skip_throughput else (1, 2):
            runs.append(measure_throughput(stack, root, args.posts, workers))
            print(f"throughput: {runs[-1]}", flush=True)
        table = render(lats, runs)
        print(table)
        if args.write:
            polls = ",".join(f"{p:g}" for p in args.poll_intervals)
            note = (f"`python benchmarks/bench_latency.py --minutes {args.minutes:g} --interval {args.interval:g} "
                    f"--poll-intervals {polls} --push {args.push} --push-via {via} --posts {args.posts} --write`: the real scheduler, dag-processor, api-server and "
                    "`airflow celery worker` processes (CeleryExecutor, worker concurrency 4) on PostgreSQL and Redis on "
                    "this 2-core machine, fake Slack in-process; measured "
                    f"{datetime.now(timezone.utc):%Y-%m-%d}.")
            write_readme(table, note)
        ok = True
    finally:
        if not ok:
            print(stack.dump_logs(), file=sys.stderr)
        stack.stop()
        print(f"logs kept in {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
