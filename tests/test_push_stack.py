"""A post on a source that pushes starts ingest through the real triggerer, scheduler and Celery
worker (PostgreSQL, Redis), with the poll an hour away: the alert can only come by the push.

One test per service that pushes, each with its fakes in this process:
- Mastodon: a hashtag's stream (Server-Sent Events) on the fake instance;
- Mastodon's search: the fake instance's public timeline stream, filtered in the triggerer to
  the search's words (a status without them must wake nothing); the fake's search never indexes
  the reports within the test, so the woken run can only store them by reading them by id;
- Bluesky: the fake Jetstream firehose, filtered in the triggerer to the source's query words
  (posts in another language, or holding the word only inside a longer one, must wake nothing);
- X: the fake X API's filtered stream, its rules synced by the triggerer from the source's query
  (a tweet matching no rule must wake nothing);
- RSS: a fake agency feed the triggerer watches every 5 s (a feed rewritten without a new item
  must wake nothing);
- an inbox folder the triggerer lists every 5 s (a file that holds no posts must wake nothing).

Every source has `push: true`, so the ingest DAG's schedule carries one asset per source, each
watched by `siaga_push.SourcePushTrigger`s. All six share one Airflow stack (starting one
takes most of a minute); each test reports a fire in its own village, far from the others'.
Once the triggerer listens, two residents report it. Both posts must be stored by ingest runs
the push started (Airflow's `asset_triggered` runs, polling only the pushed source), and the
alert must reach the fake Slack server once. Last, every source reports at once, so their
events meet in Airflow's queue while the runs they start are queued or running.
"""
from __future__ import annotations

import json
import re
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from support.fakeapis import X_TOKEN, FakeApis
from support.fakejetstream import FakeJetstream
from support.feeds import rss_feed, rss_item
from support.services import require_services
from siaga import settings, store
from siaga_dev import airflow_stack as st
from siaga_dev.fakeslack import FakeSlack

pytestmark = [pytest.mark.celery, pytest.mark.timeout(560)]

TOKEN = "xoxb-push-stack"
REDIS_DB = 11  # only this file uses it (the celery stack tests use 13 and 14, the benchmark 12)
TAG = "kebakaranbuleleng"
REPORTS = (("warga1", "Kebakaran rumah di Desa {village}, api cepat membesar"),
           ("warga2", "Ada KEBAKARAN di {village}, asap hitam tebal terlihat dari jauh"))


@dataclass
class Pushing:
    """One service's fakes as the test drives them."""

    source: dict[str, Any]
    village: str  # where this service's fire is reported: no two services' villages are neighbours
    listening: Callable[[], bool]
    report: Callable[[int, str, str, str], None]  # (number, author, text, ISO time): publish one report
    noise: Callable[[], None] = lambda: None  # publish what must wake nothing
    env: dict[str, str] | None = None  # what the stack's processes need besides (a source's token)
    check: Callable[[], None] = lambda: None  # what else must hold once the alert is in


def _mastodon(fakes: ExitStack, root: Path) -> Pushing:
    mastodon = fakes.enter_context(FakeApis())
    return Pushing(
        {"name": "mastodon_bali", "kind": "mastodon", "push": True, "instances": [{"url": mastodon.url, "hashtags": [TAG]}]},
        "Sekumpul",
        lambda: mastodon.listening >= 1,
        lambda i, author, text, now: mastodon.toot(TAG, 100 + i, 0, text, acct=author, created_at=now))


def _mastodon_search(fakes: ExitStack, root: Path) -> Pushing:
    mastodon = fakes.enter_context(FakeApis())

    def report(i: int, author: str, text: str, now: str) -> None:
        mastodon.unindexed.add(str(100 + i))  # as if Mastodon's index lagged past the test's end
        mastodon.toot("lainnya", 100 + i, 0, text, acct=author, created_at=now)

    def read_by_id() -> None:
        reads = mastodon.hits("/api/v1/statuses/")
        assert {r.path for r in reads} == {f"/api/v1/statuses/{100 + i}" for i in range(1, len(REPORTS) + 1)}
        assert all(r.headers.get("Authorization") == "Bearer tok-stack" for r in reads)

    return Pushing(
        {"name": "mastodon_cari", "kind": "mastodon", "push": True, "language": "id",
         "instances": [{"url": mastodon.url, "conn_id": "mastodon_stack", "searches": ["kebakaran"]}]},
        "Pakisan",
        lambda: mastodon.listening >= 1, report,
        lambda: mastodon.toot("lainnya", 99, 0, "Macet total di Jalan Gajah Mada", acct="warga0"),
        {settings.env_token_name("mastodon_stack"): "tok-stack"},  # the public timeline stream needs a user token
        read_by_id)


def _bluesky(fakes: ExitStack, root: Path) -> Pushing:
    appview, firehose = fakes.enter_context(FakeApis()), fakes.enter_context(FakeJetstream())

    def report(i: int, author: str, text: str, now: str) -> None:
        record = {"$type": "app.bsky.feed.post", "text": text, "createdAt": now, "langs": ["id"]}
        appview.skeet(f"3lfire{i}", 0, text, handle=f"{author}.bsky.social", indexedAt=now, record=record)
        firehose.post(text, langs=["id"], did=f"did:plc:{author:x<24}")

    def noise() -> None:
        firehose.post("Kebakaran hutan di Kanada", langs=["en"])  # not the source's language
        firehose.post("Kebakaranmu lucu sekali", langs=["id"])  # the word inside a longer one

    return Pushing(
        {"name": "bluesky_bali", "kind": "bluesky", "appview": appview.url, "push": True, "jetstream": firehose.url,
         "language": "id", "queries": ["kebakaran"]},
        "Bongancina",
        lambda: firehose.listening >= 1, report, noise)


def _x(fakes: ExitStack, root: Path) -> Pushing:
    x = fakes.enter_context(FakeApis())
    return Pushing(
        {"name": "x_bali", "kind": "x", "push": True, "conn_id": "x_stack", "api": x.url, "queries": ["kebakaran"]},
        "Sumber Klampok",
        lambda: x.listening >= 1,
        lambda i, author, text, now: x.tweet(9_000 + i, 0, text, username=author, created_at=now),
        lambda: x.tweet(8_999, 0, "Macet total di Jalan Gajah Mada", username="warga0"),
        {settings.env_token_name("x_stack"): X_TOKEN})  # the triggerer (rules, stream) and the workers (search)


def _rss(fakes: ExitStack, root: Path) -> Pushing:
    site = fakes.enter_context(FakeApis())
    feed = "bpbd.xml"
    items: list[str] = [rss_item("lama-1", "Rapat koordinasi BPBD Buleleng", datetime(2026, 1, 5, tzinfo=timezone.utc), author="humas")]
    version = [1]

    def publish(built: datetime) -> None:
        """The feed as the site serves it now, under a new ETag and build date."""
        version[0] += 1
        site.data.feeds[feed] = (f'"v{version[0]}"', rss_feed(*items, built=built, title="BPBD"))

    def report(i: int, author: str, text: str, now: str) -> None:
        items.insert(0, rss_item(f"kebakaran-{i}", text, datetime.fromisoformat(now.replace("Z", "+00:00")), author=author))
        publish(datetime.now(timezone.utc))

    def conditional_looks() -> int:
        return sum(1 for r in site.hits(f"/feeds/{feed}") if r.headers.get("If-None-Match"))

    publish(datetime(2026, 1, 5, tzinfo=timezone.utc))
    return Pushing(
        {"name": "berita_bali", "kind": "rss", "push": True, "watch_every": 5, "feeds": [f"{site.url}/feeds/{feed}"]},
        "Sembiran",
        lambda: conditional_looks() >= 2,  # the poll asks at most once with a validator; the watcher every 5 s
        report,
        lambda: publish(datetime.now(timezone.utc)))  # rewritten, no new item


def _inbox(fakes: ExitStack, root: Path) -> Pushing:
    folder = root / "inbox"
    folder.mkdir()
    (folder / "lama.jsonl").write_text(json.dumps({"id": "lama-1", "created_at": "2026-01-05T01:00:00Z",
                                                   "text": "Rapat koordinasi BPBD Buleleng", "author": "staf"}) + "\n", encoding="utf-8")
    triggerer_log = root / "stack" / "logs" / "triggerer.log"

    def watching() -> bool:
        return triggerer_log.exists() and f"push: watching {folder} " in triggerer_log.read_text(errors="replace")

    def report(i: int, author: str, text: str, now: str) -> None:
        post = {"id": f"wa-{i}", "created_at": now, "text": text, "author": author, "channel": "WA grup Warga"}
        (folder / f"lapor-{i}.jsonl").write_text(json.dumps(post) + "\n", encoding="utf-8")

    return Pushing(
        {"name": "wa_forward", "kind": "inbox", "push": True, "watch_every": 5, "path": str(folder)},
        "Banyuasri", watching, report,
        lambda: (folder / "catatan.txt").write_text("bukan posting", encoding="utf-8"))  # not a post file


SERVICES = {"mastodon": _mastodon, "mastodon_search": _mastodon_search, "bluesky": _bluesky, "x": _x, "rss": _rss,
            "inbox": _inbox}


@dataclass
class Stack:
    """The one Airflow stack the tests share, listening to every service's fakes."""

    airflow: st.AirflowStack
    slack: FakeSlack
    siaga_db: str
    pushing: dict[str, Pushing]
    failed: bool = False


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    require_services()
    root = tmp_path_factory.mktemp("push_stack")
    with ExitStack() as fakes:
        pushing = {name: make(fakes, root) for name, make in SERVICES.items()}
        slack = FakeSlack(token=TOKEN).start()
        siaga_db = st.create_database("siaga_push")
        url = st.pg_url(siaga_db)
        env = {k: v for p in pushing.values() for k, v in (p.env or {}).items()}
        airflow = st.AirflowStack(root=root / "stack", redis_db=REDIS_DB, task_env={
            "SIAGA_DB_URL": url,
            "SIAGA_CONFIG_DIR": str(st.config_copy(root / "config", [p.source for p in pushing.values()])),
            "SIAGA_SLACK_TOKEN": TOKEN,
            "SIAGA_SLACK_BASE_URL": slack.base_url,
            "SIAGA_AUTHOR_KEY": "push-stack-author-key",
        }, extra_env={"SIAGA_POLL_INTERVAL": "3600", **env})  # the timetable's next poll is an hour away
        shared = Stack(airflow, slack, siaga_db, pushing)
        try:
            store.migrate(url)
            store.engine_for(url).dispose()
            airflow.start()
            airflow.start_worker("push-w1")
            for name, p in pushing.items():
                st.wait_for(p.listening, 240, f"the triggerer listening to {name}", airflow)
            # the timetable's first run (at start-up) polls once; wait for it, so every later
            # ingest run is one a push started
            st.wait_for(lambda: airflow.task_states(
                "select 1 from dag_run where dag_id = 'siaga_ingest' and state = 'success'"), 240,
                "the first scheduled ingest run", airflow)
            yield shared
        except BaseException:
            shared.failed = True
            raise
        finally:
            if shared.failed:
                print(airflow.dump_logs())
            airflow.stop()
            slack.close()
            st.drop_database(siaga_db)


@pytest.mark.parametrize("service", list(SERVICES))
def test_a_pushed_post_is_ingested_and_alerted_without_waiting_for_the_poll(stack, service):
    pushing = stack.pushing[service]
    airflow, slack = stack.airflow, stack.slack
    ok = False
    try:
        pushed_before = _runs(airflow).get("asset_triggered", 0)
        stored_before = _stored(stack, pushing)
        pushing.noise()
        now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        for i, (author, text) in enumerate(REPORTS, start=1):
            pushing.report(i, author, text.format(village=pushing.village), now)
        headline = re.compile(rf"— (?:Desa )?{pushing.village}, Kec\.")
        st.wait_for(lambda: any(headline.search(m.get("text") or "") for m in slack.messages()), 300,
                    f"the alert naming {pushing.village}", airflow)
        runs = _runs(airflow)
        assert runs.get("scheduled") == 1 and runs.get("asset_triggered", 0) > pushed_before, runs
        assert _stored(stack, pushing) == stored_before + len(REPORTS)
        alerts = [m for m in slack.messages() if headline.search(m.get("text") or "")]
        assert len(alerts) == 1
        pushing.check()
        ok = True
    finally:
        stack.failed |= not ok


def _runs(airflow: st.AirflowStack) -> dict[str, int]:
    return dict(airflow.task_states("select run_type, count(*) from dag_run where dag_id = 'siaga_ingest' group by run_type"))


def _stored(stack: Stack, pushing: Pushing) -> int:
    return st.query(stack.siaga_db, f"select count(*) from posts where source = '{pushing.source['name']}'")[0][0]


def test_sources_pushing_at_once_are_each_ingested_by_the_runs_they_start(stack):
    """Every source reports within a second, so their push events reach Airflow while ingest runs
    they started are queued or running. Airflow keeps one queue entry per source's asset and
    gives the run it creates the events up to its latest entry, and each run polls the sources
    its events name: no source's wake-up may be dropped on the way. With the poll an hour away,
    every post stored is one a push fetched."""
    airflow = stack.airflow
    ok = False
    try:
        before = {name: _stored(stack, p) for name, p in stack.pushing.items()}
        pushed_before = _runs(airflow).get("asset_triggered", 0)
        now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        for p in stack.pushing.values():
            p.report(3, "warga3", f"Api muncul lagi di {p.village}, kebakaran belum padam", now)
            p.report(4, "warga4", f"Kebakaran susulan di {p.village} pagi ini", now)
        after = lambda: {name: _stored(stack, p) - before[name] for name, p in stack.pushing.items()}  # noqa: E731
        with suppress(TimeoutError):  # the assertion names the sources still short (the stack's logs follow at teardown)
            st.wait_for(lambda: all(n == 2 for n in after().values()), 240, "both new posts of every source", airflow)
        assert after() == {name: 2 for name in stack.pushing}
        runs = _runs(airflow)
        assert runs.get("scheduled") == 1
        assert 0 < runs["asset_triggered"] - pushed_before < len(stack.pushing), runs  # events did meet in the queue
        ok = True
    finally:
        stack.failed |= not ok
