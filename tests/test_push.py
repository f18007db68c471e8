"""Push sources: a Mastodon hashtag stream wakes ingest the moment a status is published.

Through the real httpx client against the fake Mastodon's streaming endpoint on 127.0.0.1: a
new status wakes the listener, a burst is folded into few wake-ups and never loses the last one,
a dropped or failing stream is opened again, the token goes only where it belongs. Then the
config that turns push on, the trigger Airflow's triggerer runs, the ingest DAG's schedule built
from it, and which sources a pushed run polls. The whole path through the real triggerer,
scheduler and Celery worker is tests/test_push_stack.py.
"""
from __future__ import annotations

import asyncio
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from support.chunks import Chunks, drain, split
from support.triggers import rebuilt
from support.fakeapis import FakeApis
from siaga import pipeline
from siaga.sources import check_sources_file, load_sources, push
from siaga.sources.base import SourceConfigError

TAG = "banjirbuleleng"


def _run(coro, timeout: float = 20.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def _listening(fake: FakeApis, count: int = 1) -> None:
    while fake.listening < count:
        await asyncio.sleep(0.01)


def _stream(fake: FakeApis, conn_id: str | None = None, tag: str = TAG) -> push.PushStream:
    return push.PushStream("mastodon_bali", push.mastodon_hashtag_url(fake.url, tag), conn_id)


# --- the listener ---------------------------------------------------------------------------------


def test_a_new_status_wakes_the_listener_and_only_its_own_hashtag_does():
    async def scenario(fake: FakeApis) -> list[int]:
        wakes = push.wake_ups(_stream(fake), gap=0.05)
        first = asyncio.ensure_future(wakes.__anext__())
        await _listening(fake)
        fake.toot("lovina", 1, 0, "Sunset di Lovina")  # another hashtag: no wake-up
        await asyncio.sleep(0.3)
        assert not first.done()
        fake.toot(TAG, 2, 0, "Banjir di Desa Sangsit, air setinggi lutut")
        got = [(await first).count]
        await wakes.aclose()
        return got

    with FakeApis() as fake:
        assert _run(scenario(fake)) == [1]


@hsettings(max_examples=6, deadline=None)
@given(sizes=st.lists(st.integers(1, 40), min_size=1, max_size=3))
def test_a_burst_during_the_gap_is_one_wake_up_that_counts_every_status(sizes):
    """The first status wakes at once; a burst published while the listener waits out its gap
    is one wake-up at the end of the gap, counting every status of it: none left waiting, no
    asset event per status."""
    async def scenario(fake: FakeApis) -> list[int]:
        wakes = push.wake_ups(_stream(fake), gap=0.3)
        pending = asyncio.ensure_future(wakes.__anext__())
        await _listening(fake)
        sid = 1
        fake.toot(TAG, sid, 0, "Banjir di Sangsit")
        got = [(await pending).count]
        for size in sizes:  # each burst lands inside the gap that follows the last wake-up
            for _ in range(size):
                sid += 1
                fake.toot(TAG, sid, 0, f"Banjir {sid}")
            got.append((await wakes.__anext__()).count)
        await wakes.aclose()
        return got

    with FakeApis() as fake:
        assert _run(scenario(fake)) == [1, *sizes]


async def _wakes_after_a_restart(fake: FakeApis, mode: str, times: int, sid: int) -> int:
    """Listen; the server hangs up on the listener and answers its next `times` connections in
    `mode`; then a status: what the listener's next wake-up counts."""
    wakes = push.wake_ups(_stream(fake), gap=0.01, backoff_first=0.01)
    pending = asyncio.ensure_future(wakes.__anext__())
    await _listening(fake)
    fake.fail("/api/v1/streaming", mode, times=times, status=503)
    fake.drop_streams()
    while len(fake.hits("/api/v1/streaming")) < times + 2:
        await asyncio.sleep(0.01)
    await _listening(fake)
    fake.toot(TAG, sid, 0, "Pohon tumbang di Jalan Ahmad Yani")
    got = (await pending).count
    await wakes.aclose()
    return got


def test_a_dropped_stream_and_a_failing_server_are_retried_until_it_listens_again():
    with FakeApis() as fake:
        assert _run(_wakes_after_a_restart(fake, "server_error", 3, 7)) == 1
        assert len(fake.hits("/api/v1/streaming")) == 5  # one, dropped; three refused; the fifth listens


def test_the_wait_before_reopening_doubles_while_failing_and_starts_over_once_heard():
    async def scenario(fake: FakeApis) -> tuple[list[float], list[float]]:
        waits: list[float] = []

        async def recorded(seconds: float) -> None:
            waits.append(seconds)
            await asyncio.sleep(0)

        queue: asyncio.Queue[str] = asyncio.Queue()
        fake.fail("/api/v1/streaming", "server_error", times=4, status=503)
        reader = asyncio.create_task(push.listen(_stream(fake), queue, sleep=recorded, backoff_first=0.01))
        await _listening(fake)
        failing = list(waits)
        fake.toot(TAG, 11, 0, "Banjir di Desa Sangsit")
        await queue.get()
        fake.drop_streams()
        while len(waits) == len(failing):
            await asyncio.sleep(0.01)
        reader.cancel()
        return failing, waits[len(failing):]

    with FakeApis() as fake:
        failing, after = _run(scenario(fake))
    assert len(failing) == 4
    for i, wait in enumerate(failing):  # 0.01 s doubling, each with up to half taken off as jitter
        assert 0.01 * 2 ** i * 0.5 <= wait <= 0.01 * 2 ** i
    assert 0.005 <= after[0] <= 0.01  # heard an announcement: the first wait again


def test_the_token_goes_in_the_header_of_a_stream_that_names_a_connection(monkeypatch):
    monkeypatch.setenv("SIAGA_MASTODON_ONLINE_TOKEN", "tok-rahasia")

    async def scenario(fake: FakeApis) -> None:
        for stream in (_stream(fake, "mastodon_online"), _stream(fake, None, tag="lovina")):
            wakes = push.wake_ups(stream, gap=0.01)
            pending = asyncio.ensure_future(wakes.__anext__())
            await _listening(fake)
            fake.toot(stream.url.rsplit("=", 1)[1], len(fake.requests) + 10, 0, "Banjir")
            await pending
            await wakes.aclose()
            while fake.listening:
                await asyncio.sleep(0.01)

    with FakeApis() as fake:
        _run(scenario(fake))
        with_conn, without = fake.hits("/api/v1/streaming")
        assert with_conn.headers.get("Authorization") == "Bearer tok-rahasia"
        assert "Authorization" not in without.headers
        assert with_conn.headers.get("Accept") == "text/event-stream"


def test_a_redirect_is_never_followed_so_the_token_stays_home(monkeypatch, caplog):
    """A stream answering with a redirect to another host is a failure to retry: the token is
    not sent there, and never logged."""
    monkeypatch.setenv("SIAGA_MASTODON_ONLINE_TOKEN", "tok-rahasia")
    with FakeApis() as elsewhere:
        target = push.mastodon_hashtag_url(elsewhere.url, TAG)

        class Redirect(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                self.send_response(307)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            stream = push.PushStream("mastodon_bali", f"http://127.0.0.1:{server.server_address[1]}/api/v1/streaming/hashtag?tag={TAG}",
                                     "mastodon_online")
            queue: asyncio.Queue[str] = asyncio.Queue()
            attempts: list[float] = []

            async def counted_sleep(seconds: float) -> None:
                attempts.append(seconds)
                if len(attempts) >= 3:
                    raise asyncio.CancelledError

            with caplog.at_level("DEBUG"), pytest.raises(asyncio.CancelledError):
                _run(push.listen(stream, queue, sleep=counted_sleep, backoff_first=0.01))
        finally:
            server.shutdown()
            server.server_close()
        assert elsewhere.requests == []
        assert len(attempts) == 3 and queue.empty()
        assert "307" in caplog.text and "tok-rahasia" not in caplog.text


def test_a_streaming_server_on_another_host_is_looked_up_so_no_redirect_is_needed(monkeypatch):
    """mastodon.social streams from streaming.mastodon.social and answers its own streaming path
    with a 301 there, which is never followed: the instance API says where to listen instead,
    and the token goes to that server only."""
    monkeypatch.setenv("SIAGA_MASTODON_ONLINE_TOKEN", "tok-rahasia")

    async def scenario(instance: FakeApis, streaming: FakeApis) -> int:
        wakes = push.wake_ups(_stream(instance, "mastodon_online"), gap=0.01)
        pending = asyncio.ensure_future(wakes.__anext__())
        await _listening(streaming)
        streaming.toot(TAG, 5, 0, "Pohon tumbang di Jalan Singaraja-Seririt")
        count = (await pending).count
        await wakes.aclose()
        return count

    with FakeApis() as instance, FakeApis() as streaming:
        instance.streaming_server = "ws" + streaming.url[len("http"):]
        assert _run(scenario(instance, streaming)) == 1
        assert instance.hits("/api/v1/streaming") == []
        assert [r.path for r in instance.requests] == ["/api/v2/instance"]
        (listened,) = streaming.hits("/api/v1/streaming/hashtag")
        assert listened.params == {"tag": TAG} and listened.headers.get("Authorization") == "Bearer tok-rahasia"
        assert all("Authorization" not in r.headers for r in instance.requests)


async def _first_wake(fake: FakeApis, sid: int) -> int:
    wakes = push.wake_ups(_stream(fake), gap=0.01, backoff_first=0.01)
    pending = asyncio.ensure_future(wakes.__anext__())
    await _listening(fake)
    fake.toot(TAG, sid, 0, "Banjir bandang di Desa Bebetin")
    got = (await pending).count
    await wakes.aclose()
    return got


def test_an_instance_that_does_not_say_where_it_streams_is_listened_to_on_its_own_host():
    with FakeApis() as fake:
        fake.fail("/api/v2/instance", "server_error", times=1)
        fake.fail("/api/v1/instance", "endless", times=1)  # 64 MB of an unending document: read no further than the cap
        assert _run(_first_wake(fake, 11)) == 1
        assert [r.path for r in fake.requests][:3] == ["/api/v2/instance", "/api/v1/instance", "/api/v1/streaming/hashtag"]


def test_an_endless_instance_document_is_read_no_further_than_its_cap():
    """The triggerer's memory is every watcher's: 64 MB of an unending answer is dropped after
    the cap, and the stream stays on the instance's own host. (The peak counts the fake
    server's own 1 MB writes in this process too.)"""
    import tracemalloc

    async def look_up(fake: FakeApis) -> str:
        async with httpx.AsyncClient() as client:
            return await push.streaming_url(_stream(fake).url, client)

    with FakeApis() as fake:
        fake.fail("/api/v2/instance", "endless", times=1)
        fake.fail("/api/v1/instance", "endless", times=1)
        tracemalloc.start()
        try:
            assert _run(look_up(fake)) == _stream(fake).url
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 16_000_000


@pytest.mark.parametrize("declared, expected", [
    ("wss://streaming.mastodon.social", "https://streaming.mastodon.social/api/v1/streaming/hashtag?tag=banjir"),
    ("wss://stream.example:4443/", "https://stream.example:4443/api/v1/streaming/hashtag?tag=banjir"),
    ("https://mastodon.social", "https://mastodon.social/api/v1/streaming/hashtag?tag=banjir"),
    ("ws://stream.example", None),  # a downgrade to plain HTTP
    ("http://stream.example", None),
    ("javascript:alert(1)", None),
    ("wss://user:pass@stream.example", None),
    ("wss://stream.example:99999", None),
    ("wss://[::1", None),
    ("wss://stream example", None),
    ("wss://[::1]:8443", "https://[::1]:8443/api/v1/streaming/hashtag?tag=banjir"),
    ("streaming.mastodon.social", None),
    ("", None),
])
def test_the_declared_streaming_server_replaces_only_the_host_and_never_downgrades(declared, expected):
    url = "https://mastodon.social/api/v1/streaming/hashtag?tag=banjir"
    assert push.on_streaming_host(url, declared) == (expected or url)


@given(st.one_of(st.text(max_size=60), st.builds("{}://{}".format, st.sampled_from(["wss", "ws", "https", "http", "ftp"]), st.text(max_size=40))))
def test_whatever_the_instance_declares_the_stream_path_and_query_stay_and_https_stays(declared):
    url = "https://mastodon.example/api/v1/streaming/hashtag?tag=gempa%20bali"
    moved = push.on_streaming_host(url, declared)
    assert moved.startswith("https://") and moved.endswith("/api/v1/streaming/hashtag?tag=gempa%20bali")


def test_a_stream_refused_for_want_of_a_token_says_which_token_it_needs(caplog):
    """Mastodon 4.2 and later want a user token on hashtag streams: the log names the fix."""
    with FakeApis() as fake, caplog.at_level("WARNING"):
        fake.fail("/api/v1/streaming", "server_error", times=1, status=401)
        assert _run(_first_wake(fake, 12)) == 1
    assert "read:statuses" in caplog.text and "conn_id" in caplog.text


def test_a_stream_that_never_ends_an_event_is_cut_and_opened_again(caplog):
    """64 MB of one line: the listener gives up after MAX_EVENT_BYTES instead of buffering it,
    and listens again."""
    with FakeApis() as fake, caplog.at_level("WARNING"):
        assert _run(_wakes_after_a_restart(fake, "endless_event", 1, 9)) == 1
    assert "EventTooLarge" in caplog.text


_EVENT = st.binary(max_size=60).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b" "))
_ENDINGS = st.sampled_from([b"\n\n", b"\r\r", b"\r\n\r\n"])


@hsettings(max_examples=200, deadline=None)
@given(events=st.lists(st.tuples(_EVENT, _ENDINGS), max_size=8), cuts=st.lists(st.integers(0, 10_000), max_size=12))
def test_events_within_the_limit_pass_through_whole_however_the_bytes_are_split(events, cuts):
    data = b"".join(b"data: " + body + end for body, end in events)
    assert _run(drain(push._Bounded(Chunks(split(data, cuts)), 70))) == data


@hsettings(max_examples=200, deadline=None)
@given(events=st.lists(st.tuples(_EVENT, _ENDINGS), max_size=4), run=st.integers(71, 400),
       cuts=st.lists(st.integers(0, 10_000), max_size=12))
def test_more_than_the_limit_without_an_event_end_is_refused_however_it_is_split(events, run, cuts):
    data = b"".join(b"data: " + body + end for body, end in events) + b"data: " + b"x" * run
    with pytest.raises(push.EventTooLarge):
        _run(drain(push._Bounded(Chunks(split(data, cuts)), 70)))


def test_a_failing_stream_never_logs_the_secrets_of_its_address(caplog):
    """An instance written with a password, or a token in the query, fails to connect (nothing
    listens there): the warnings name the stream without them."""
    with socket.socket() as closed_port:
        closed_port.bind(("127.0.0.1", 0))
        port = closed_port.getsockname()[1]
    stream = push.PushStream("mastodon_bali", f"http://warga:sandi-rahasia@127.0.0.1:{port}/api/v1/streaming/hashtag"
                                              f"?tag={TAG}&access_token=tok-rahasia")
    tries: list[float] = []

    async def twice(seconds: float) -> None:
        tries.append(seconds)
        if len(tries) == 2:
            raise asyncio.CancelledError

    with caplog.at_level("DEBUG"), pytest.raises(asyncio.CancelledError):
        _run(push.listen(stream, asyncio.Queue(), sleep=twice, backoff_first=0.01))
    assert len(tries) == 2 and "ConnectError" in caplog.text
    assert "sandi-rahasia" not in caplog.text and "tok-rahasia" not in caplog.text


# --- config -----------------------------------------------------------------------------------------


def _sources_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "config" / "sources.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return path


MASTODON = """sources:
  - name: mastodon_bali
    kind: mastodon
    push: {push}
    instances:
      - url: https://mastodon.example
        conn_id: mastodon_online
        hashtags: [{tags}]
        searches: ["banjir buleleng"]
  - name: berita
    kind: rss
    feeds: [https://berita.example/rss]
"""


def test_push_streams_every_hashtag_and_the_public_timeline_for_the_searches(tmp_path):
    sources = load_sources(_sources_file(tmp_path, MASTODON.format(push="true", tags="banjirbuleleng, 'gempa bali'")))
    assert push.push_streams(sources) == [
        push.PushStream("mastodon_bali", "https://mastodon.example/api/v1/streaming/hashtag?tag=banjirbuleleng", "mastodon_online"),
        push.PushStream("mastodon_bali", "https://mastodon.example/api/v1/streaming/hashtag?tag=gempa%20bali", "mastodon_online"),
        push.PushStream("mastodon_bali", "https://mastodon.example/api/v1/streaming/public", "mastodon_online",
                        "mastodon_public", ("banjir buleleng",)),
    ]
    off = load_sources(_sources_file(tmp_path, MASTODON.format(push="false", tags="banjirbuleleng")))
    assert push.push_streams(off) == []


def test_push_on_searches_without_a_token_or_of_filters_only_or_not_a_boolean_is_refused_at_its_line(tmp_path):
    """The public timeline stream needs a user token since Mastodon 4.2: refused at load rather
    than failing in the triggerer's log. A search of filters only names no word to listen for."""
    searches_only = _sources_file(tmp_path, MASTODON.format(push="true", tags="").replace("        hashtags: []\n", "")
                                  .replace("        conn_id: mastodon_online\n", ""))
    problems, _ = check_sources_file(searches_only)
    assert [(p.line, "push" in str(p) and "conn_id" in str(p) and "read:statuses" in str(p)) for p in problems] == [(4, True)]
    filters_only = _sources_file(tmp_path, MASTODON.format(push="true", tags="").replace("        hashtags: []\n", "")
                                 .replace('"banjir buleleng"', '"from:bpbd has:media"'))
    problems, _ = check_sources_file(filters_only)
    assert [(p.line, "nothing to listen to" in str(p)) for p in problems] == [(4, True)]
    problems, _ = check_sources_file(_sources_file(tmp_path, MASTODON.format(push="yes please", tags="banjir")))
    assert len(problems) == 1 and problems[0].line == 4 and "push" in str(problems[0])
    with pytest.raises(SourceConfigError, match="sources.yaml:4"):
        load_sources(searches_only)


# --- Airflow: the trigger, the schedule, the sources a pushed run polls -------------------------------


def test_the_trigger_serializes_to_an_importable_class_and_fires_with_its_source():
    import siaga_push

    async def first_event(fake: FakeApis) -> Any:
        events = rebuilt(siaga_push.SourcePushTrigger("mastodon_bali", push.mastodon_hashtag_url(fake.url, TAG))).run()
        pending = asyncio.ensure_future(events.__anext__())
        await _listening(fake)
        fake.toot(TAG, 3, 0, "Kebakaran di Desa Panji")
        event = await pending
        await events.aclose()
        return event.payload

    with FakeApis() as fake:
        assert _run(first_event(fake)) == {"source": "mastodon_bali", "announced": 1}


def _ingest_dag(monkeypatch, config: Path | None):
    from airflow.dag_processing.dagbag import DagBag

    from siaga import settings

    if config is not None:
        monkeypatch.setenv("SIAGA_CONFIG_DIR", str(config))
    monkeypatch.delenv(settings.POLL_INTERVAL_ENV, raising=False)
    bag = DagBag(dag_folder=str(settings.REPO_ROOT / "dags" / "siaga_ingest.py"))
    assert bag.import_errors == {}
    return bag.dags["siaga_ingest"]


def test_the_ingest_dag_runs_on_its_interval_or_when_a_push_source_announces(monkeypatch, tmp_path):
    from datetime import timedelta

    path = _sources_file(tmp_path, MASTODON.format(push="true", tags="banjirbuleleng, longsorbuleleng"))
    dag = _ingest_dag(monkeypatch, path.parent)
    timetable = type(dag.timetable).__name__
    assert timetable == "AssetOrTimeSchedule" and dag.timetable.timetable.delta == timedelta(minutes=1)
    (asset,) = dag.timetable.asset_condition.objects
    assert asset.uri == "siaga://push/mastodon_bali"
    assert [w.trigger.serialize() for w in asset.watchers] == [
        ("siaga_push.SourcePushTrigger", {"source": "mastodon_bali", "conn_id": "mastodon_online", "protocol": "mastodon", "terms": [],
                                          "language": None, "url": f"https://mastodon.example/api/v1/streaming/hashtag?tag={t}"})
        for t in ("banjirbuleleng", "longsorbuleleng")] + [
        ("siaga_push.SourcePushTrigger", {"source": "mastodon_bali", "conn_id": "mastodon_online", "protocol": "mastodon_public",
                                          "terms": ["banjir buleleng"], "language": None,
                                          "url": "https://mastodon.example/api/v1/streaming/public"})]


def test_a_watched_feed_starts_the_ingest_dag_too(monkeypatch, tmp_path):
    """A feed cannot stream: with `push: true` the triggerer watches it (`rss_watch`), through
    the same asset and trigger as a stream."""
    path = _sources_file(tmp_path, "sources:\n  - name: berita_bali\n    kind: rss\n    push: true\n    watch_every: 10\n"
                                   "    feeds: [https://bpbd.example/feed]\n")
    dag = _ingest_dag(monkeypatch, path.parent)
    (asset,) = dag.timetable.asset_condition.objects
    assert asset.uri == "siaga://push/berita_bali"
    assert [w.trigger.serialize() for w in asset.watchers] == [
        ("siaga_push.SourcePushTrigger", {"source": "berita_bali", "conn_id": None, "protocol": "rss", "terms": [],
                                          "language": None, "url": "https://bpbd.example/feed", "every": 10.0})]


def test_a_broken_sources_file_leaves_the_ingest_dag_polling(monkeypatch, tmp_path):
    """The task reports the broken file; the DAG itself must still parse and keep its interval."""
    path = _sources_file(tmp_path, MASTODON.format(push="true", tags="banjir").replace("kind: rss", "kind: rsss"))
    dag = _ingest_dag(monkeypatch, path.parent)
    assert type(dag.timetable).__name__ == "DeltaTriggerTimetable"


def _event(source: Any) -> Any:
    return SimpleNamespace(extra={"from_trigger": True, "payload": {"source": source, "announced": 2}})


def test_a_pushed_run_polls_only_the_sources_that_announced(monkeypatch, tmp_path):
    from airflow.sdk import Asset

    from siaga_push import pushed_sources

    monkeypatch.setenv("SIAGA_CONFIG_DIR", str(_sources_file(tmp_path, MASTODON.format(push="true", tags="banjir")).parent))
    pushed, other = Asset("siaga://push/mastodon_bali"), Asset("siaga://posts")
    assert pushed_sources({}) is None  # the timetable's run, or one by hand: every source
    assert pushed_sources({"triggering_asset_events": {other: [_event("berita")]}}) is None
    names = pushed_sources({"triggering_asset_events": {pushed: [_event("mastodon_bali"), _event(None)]}})
    assert names == {"mastodon_bali"}
    assert pipeline.source_names(only=names) == ["mastodon_bali"]
    assert pipeline.source_names(only={"gone"}) == []  # a source disabled since it announced
    assert pipeline.source_names() == ["mastodon_bali", "berita"]


def test_a_stream_of_an_unknown_protocol_is_refused_by_name():
    """A trigger serialized by another version (or a typo) must fail with the protocol it names,
    which `listen` logs and retries, rather than read the stream the wrong way."""
    with pytest.raises(ValueError, match="'gopher'.*known: .*mastodon"):
        push.reader("gopher")
    assert push.reader("mastodon") is push.mastodon_announcements
