"""Push for X: the filtered stream wakes ingest the moment a matching tweet is published.

Through the real httpx client against the fake X (tests/support/fakeapis.py) on 127.0.0.1: the
source's queries become the app's stream rules tagged `siaga:<source>` without touching anyone
else's, a tweet wakes the listener only when one of our rules matched it, keep-alives are not
tweets, a dropped or refused stream is opened again after the wait X asks for, the token goes
in a header and never follows a redirect, an endless line is cut. Then the config that turns it
on and what it refuses, and the trigger Airflow's triggerer runs.
"""
from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from support.chunks import Chunks, drain, split
from support.triggers import rebuilt
from support.fakeapis import X_TOKEN, FakeApis, RuleCall
from siaga.sources import auth, check_sources_file, load_sources, push, x_stream

SOURCE = "x_bali"
TAG = "siaga:x_bali"
STREAM = "/2/tweets/search/stream$"  # the stream alone, not its rules endpoint (fake.fail)


@pytest.fixture(autouse=True)
def _x_token(monkeypatch):
    monkeypatch.setenv("SIAGA_X_FAKE_TOKEN", X_TOKEN)
    # The first look-up imports Airflow, whose logging set-up drops pytest's log capture:
    # done here, before the test's capture starts, so `caplog` sees the test's warnings.
    auth.token("x_fake")


def _run(coro, timeout: float = 20.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def _listening(fake: FakeApis, count: int = 1) -> None:
    while fake.listening < count:
        await asyncio.sleep(0.01)


def _stream(fake: FakeApis, terms: tuple[str, ...] = ("banjir buleleng",), source: str = SOURCE) -> push.PushStream:
    return push.PushStream(source, x_stream.stream_url(fake.url), "x_fake", "x", terms)


def _stream_hits(fake: FakeApis) -> list[Any]:
    return [r for r in fake.requests if r.path == "/2/tweets/search/stream"]


async def _sync(fake: FakeApis, stream: push.PushStream) -> None:
    async with push._client() as client:
        await x_stream.sync_rules(stream, client, {"Authorization": f"Bearer {X_TOKEN}"})


# --- rules ---------------------------------------------------------------------------------------

_VALUES = st.sampled_from(["banjir", "banjir buleleng", "longsor", "gempa bali", "(pohon tumbang) lang:in", "kebakaran"])
_TAGS = st.sampled_from([TAG, "siaga:x_other", "tim-humas", None])


@hsettings(max_examples=40, deadline=None)
@given(existing=st.dictionaries(_VALUES, _TAGS, max_size=6), wanted=st.lists(_VALUES, max_size=4))
def test_rule_sync_changes_only_our_rules_and_leaves_exactly_the_wanted_ones(existing, wanted):
    """Whatever the app's rules were: ours become the wanted values, once each; every rule of
    another tag (or none) keeps its id and value. X refuses a value another tag already holds
    (DuplicateRule): that one is missing from ours, reported, and nothing else goes wrong. Rules
    already as wanted are only read."""
    with FakeApis() as fake:
        for value, tag in existing.items():
            fake.add_rule(value, tag)
        others = [r for r in fake.x_rules if r.get("tag") != TAG]
        ours_before = {r["id"] for r in fake.x_rules if r.get("tag") == TAG}
        _run(_sync(fake, _stream(fake, tuple(wanted))))
        assert [r for r in fake.x_rules if r.get("tag") != TAG] == others
        held = {r["value"] for r in others}
        assert fake.x_rules_of(TAG) == sorted(set(wanted) - held)
        already = sorted(v for v, t in existing.items() if t == TAG) == sorted(set(wanted))
        assert (fake.rule_calls == [RuleCall("get")]) == already
        for call in fake.rule_calls:
            if call.action == "add":
                assert all(rule["tag"] == TAG for rule in call.payload)
            if call.action == "delete":
                assert set(call.payload) <= ours_before


@hsettings(max_examples=300, deadline=None)
@given(existing=st.lists(st.tuples(st.integers(0, 30), _VALUES, _TAGS), max_size=8), wanted=st.lists(_VALUES, max_size=5))
def test_the_plan_deletes_only_our_stale_or_doubled_rules_and_adds_only_what_is_missing(existing, wanted):
    rules = [{"id": str(i), "value": v, **({"tag": t} if t else {})} for i, (_, v, t) in enumerate(existing)]
    delete, add = x_stream.plan(rules, tuple(wanted), TAG)
    assert all(r.get("tag") == TAG for r in rules if r["id"] in delete)
    left = [r for r in rules if r["id"] not in delete]
    ours = [r["value"] for r in left if r.get("tag") == TAG] + add
    assert sorted(ours) == sorted(set(wanted))  # each wanted value exactly once


def test_rules_listed_over_several_pages_are_all_read(monkeypatch):
    """X lists rules a page at a time: a stale rule of ours on a later page is still found."""
    with FakeApis() as fake:
        for i in range(5):
            fake.add_rule(f"orang lain {i}", "tim-humas")
        stale = fake.add_rule("kata lama", TAG)
        real_get = x_stream._all_rules

        async def small_pages(client, url, headers):  # pages of two rules instead of 1,000
            return await real_get(client, url.copy_merge_params({"max_results": "2"}), headers)

        monkeypatch.setattr(x_stream, "_all_rules", small_pages)
        _run(_sync(fake, _stream(fake)))
        assert fake.x_rules_of(TAG) == ["banjir buleleng"]
        assert RuleCall("delete", [stale["id"]]) in fake.rule_calls
        assert len(fake.x_rules_of("tim-humas")) == 5


# --- the stream -----------------------------------------------------------------------------------


def test_a_tweet_wakes_the_listener_only_when_one_of_our_rules_matched_it(caplog):
    """Another tool's rule on the same app matches a tweet: X delivers it on our connection with
    that tool's tag, which is no wake-up. A tweet matching our rule is; keep-alives in between
    are neither."""
    async def scenario(fake: FakeApis) -> int:
        fake.add_rule("banjir", "tim-humas")
        wakes = push.wake_ups(_stream(fake), gap=0.05)
        pending = asyncio.ensure_future(wakes.__anext__())
        await _listening(fake)
        fake.tweet(1, 0, "Banjir di Denpasar, jalan tergenang")  # only the other tool's rule
        fake.tweet(2, 0, "Pantai Lovina cerah hari ini")  # no rule: X sends nothing
        await asyncio.sleep(1.6)  # three keep-alives of the fake (every 0.5 s)
        assert not pending.done()
        fake.tweet(3, 0, "Banjir Buleleng: air masuk rumah warga di Sangsit")
        got = (await pending).count
        await wakes.aclose()
        return got

    with FakeApis() as fake, caplog.at_level("INFO"):
        assert _run(scenario(fake)) == 1
        assert len(_stream_hits(fake)) == 1  # the keep-alives kept the one connection
        assert fake.x_rules_of(TAG) == ["banjir buleleng"] and fake.x_rules_of("tim-humas") == ["banjir"]
    assert "not JSON" not in caplog.text  # nor were they taken for bad lines


@hsettings(max_examples=5, deadline=None)
@given(burst=st.integers(1, 30))
def test_a_burst_of_matching_tweets_is_one_wake_up_counting_each(burst):
    async def scenario(fake: FakeApis) -> list[int]:
        wakes = push.wake_ups(_stream(fake), gap=0.3)
        pending = asyncio.ensure_future(wakes.__anext__())
        await _listening(fake)
        fake.tweet(1, 0, "banjir buleleng pagi ini")
        got = [(await pending).count]
        for i in range(burst):
            fake.tweet(10 + i, 0, f"banjir buleleng laporan {i}")
        got.append((await wakes.__anext__()).count)
        await wakes.aclose()
        return got

    with FakeApis() as fake:
        assert _run(scenario(fake)) == [1, burst]


async def _refusals_then_a_tweet(fake: FakeApis, plan: list[tuple[str, int]]) -> tuple[list[float], str]:
    """Listen; X hangs up, then answers the stream with each (mode, status) of `plan` in turn;
    then a tweet. The waits `listen` chose (not slept: the test cannot wait minutes), and what
    the tweet announced."""
    pauses: list[float] = []

    async def recorded(seconds: float) -> None:
        pauses.append(seconds)
        await asyncio.sleep(0)

    queue: asyncio.Queue[str] = asyncio.Queue()
    reader = asyncio.create_task(push.listen(_stream(fake), queue, sleep=recorded, backoff_first=0.01))
    try:
        await _listening(fake)
        for mode, status in plan:
            fake.fail(STREAM, mode, status=status)
        fake.drop_streams()
        while len(_stream_hits(fake)) < len(plan) + 2:
            await asyncio.sleep(0.01)
        await _listening(fake)
        fake.tweet(7, 0, "Banjir Buleleng, tanggul jebol di Kubutambahan")
        return pauses, await queue.get()
    finally:
        reader.cancel()


def test_a_dropped_stream_and_x_refusing_it_are_retried_after_the_wait_x_asks_for():
    """X's guidance: reconnect at once after a drop; after an HTTP error wait from 5 s, after
    a 429 (too many connections) from a minute, doubling while it repeats."""
    with FakeApis() as fake:
        pauses, announced = _run(_refusals_then_a_tweet(fake, [("too_many_connections", 429), ("too_many_connections", 429),
                                                               ("server_error", 503)]))
    assert announced == "tweet"
    dropped, first_429, second_429, http_503 = pauses
    assert dropped <= 0.01  # the stream was fine: at once (with jitter)
    assert x_stream.RATE_LIMIT_WAIT <= first_429 <= 2 * x_stream.RATE_LIMIT_WAIT
    assert x_stream.RATE_LIMIT_WAIT <= second_429 <= 4 * x_stream.RATE_LIMIT_WAIT and second_429 >= first_429 / 2
    assert http_503 >= x_stream.HTTP_ERROR_WAIT


def test_a_429_waits_until_x_says_its_window_resets():
    async def scenario(fake: FakeApis) -> list[float]:
        pauses: list[float] = []

        async def recorded(seconds: float) -> None:
            pauses.append(seconds)
            raise asyncio.CancelledError

        fake.fail(STREAM, "too_many_connections", seconds=300)
        with pytest.raises(asyncio.CancelledError):
            await push.listen(_stream(fake), asyncio.Queue(), sleep=recorded)
        return pauses

    with FakeApis() as fake:
        (pause,) = _run(scenario(fake))
    assert 250 <= pause <= 300


async def _refusing_reader(stream: push.PushStream, client: httpx.AsyncClient, token: push.Token):
    raise push.Backoff("HTTP 429", 60, 200)
    yield  # pragma: no cover - a generator that refuses before its first announcement


def test_listen_waits_at_least_what_a_backoff_refusal_asks_and_doubles_up_to_its_cap(monkeypatch):
    """The generic part, for any reader: a `push.Backoff` puts a floor under the jittered wait
    and lets it double past BACKOFF_MAX up to the refusal's own cap."""
    monkeypatch.setitem(push.READERS, "refusing", f"{__name__}:_refusing_reader")

    async def scenario() -> list[float]:
        pauses: list[float] = []

        async def recorded(seconds: float) -> None:
            pauses.append(seconds)
            if len(pauses) == 5:
                raise asyncio.CancelledError

        with pytest.raises(asyncio.CancelledError):
            await push.listen(push.PushStream("s", "http://127.0.0.1:9/", None, "refusing"), asyncio.Queue(), sleep=recorded)
        return pauses

    pauses = _run(scenario())
    assert len(pauses) == 5
    for pause, (low, high) in zip(pauses, [(60, 60), (60, 120), (100, 200), (100, 200), (100, 200)]):
        assert low <= pause <= high


def test_the_token_goes_in_the_authorization_header_and_nowhere_else(caplog):
    async def scenario(fake: FakeApis) -> None:
        fake.add_rule("kata lama", TAG)
        wakes = push.wake_ups(_stream(fake), gap=0.01)
        pending = asyncio.ensure_future(wakes.__anext__())
        await _listening(fake)
        fake.tweet(5, 0, "banjir buleleng")
        await pending
        await wakes.aclose()

    with FakeApis() as fake, caplog.at_level("DEBUG"):
        _run(scenario(fake))
        x_requests = [r for r in fake.requests if r.path.startswith("/2/tweets/search/stream")]
        assert {r.path for r in x_requests} == {"/2/tweets/search/stream", "/2/tweets/search/stream/rules"}
        assert len(x_requests) == 4  # rules: list, delete, add; the stream
        for r in x_requests:
            assert r.headers.get("Authorization") == f"Bearer {X_TOKEN}"
            assert X_TOKEN not in json.dumps([r.path, r.params, r.body])
    assert X_TOKEN not in caplog.text


def test_a_refused_token_says_what_to_fix_and_never_shows_the_token(monkeypatch, caplog):
    monkeypatch.setenv("SIAGA_X_FAKE_TOKEN", "token-salah-rahasia")

    async def scenario(fake: FakeApis) -> list[float]:
        pauses: list[float] = []

        async def once(seconds: float) -> None:
            pauses.append(seconds)
            raise asyncio.CancelledError

        with pytest.raises(asyncio.CancelledError):
            await push.listen(_stream(fake), asyncio.Queue(), sleep=once)
        return pauses

    with FakeApis() as fake, caplog.at_level("DEBUG"):
        (pause,) = _run(scenario(fake))
        assert fake.x_rules == [] and _stream_hits(fake) == []  # refused at the rules: nothing changed, no stream
    assert pause >= x_stream.HTTP_ERROR_WAIT
    assert "HTTP 401" in caplog.text and "bearer token" in caplog.text and "token-salah-rahasia" not in caplog.text


def test_a_redirect_is_never_followed_so_the_token_stays_home(caplog):
    """The rules answered, the stream redirected to another host: the stream fails and is
    retried; the other host never hears from us, and the token is in no log."""
    with FakeApis() as elsewhere:
        target = x_stream.stream_url(elsewhere.url)

        class RedirectStream(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for k, v in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                if "/rules" in self.path:
                    return self._answer(200, b'{"meta": {"result_count": 0}}', {"Content-Type": "application/json"})
                self._answer(307, b"", {"Location": target})

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._answer(200, b'{"meta": {}}', {"Content-Type": "application/json"})

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), RedirectStream)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        attempts: list[float] = []

        async def counted_sleep(seconds: float) -> None:
            attempts.append(seconds)
            if len(attempts) >= 2:
                raise asyncio.CancelledError

        try:
            stream = push.PushStream(SOURCE, x_stream.stream_url(f"http://127.0.0.1:{server.server_address[1]}"), "x_fake", "x",
                                     ("banjir buleleng",))
            with caplog.at_level("DEBUG"), pytest.raises(asyncio.CancelledError):
                _run(push.listen(stream, asyncio.Queue(), sleep=counted_sleep))
        finally:
            server.shutdown()
            server.server_close()
        assert elsewhere.requests == []
    assert len(attempts) == 2 and all(a >= x_stream.HTTP_ERROR_WAIT for a in attempts)
    assert "HTTP 307" in caplog.text and X_TOKEN not in caplog.text


def test_a_line_that_never_ends_is_cut_and_the_stream_opened_again(caplog):
    """64 MB without a newline: cut after MAX_EVENT_BYTES instead of buffered; then X is
    listened to again and the next tweet wakes."""
    with FakeApis() as fake, caplog.at_level("WARNING"):
        pauses, announced = _run(_refusals_then_a_tweet(fake, [("endless", 200)]))
    assert announced == "tweet" and len(pauses) == 2
    assert "EventTooLarge" in caplog.text


def test_a_rules_answer_that_never_ends_is_cut_and_retried(caplog):
    async def scenario(fake: FakeApis) -> list[float]:
        pauses: list[float] = []

        async def once(seconds: float) -> None:
            pauses.append(seconds)
            raise asyncio.CancelledError

        fake.fail("/2/tweets/search/stream/rules$", "endless")
        with pytest.raises(asyncio.CancelledError):
            await push.listen(_stream(fake), asyncio.Queue(), sleep=once)
        return pauses

    with FakeApis() as fake, caplog.at_level("WARNING"):
        assert len(_run(scenario(fake))) == 1
        assert _stream_hits(fake) == []  # never connected on rules it could not read
    assert "EventTooLarge" in caplog.text and "rules answer over" in caplog.text


_LINE = st.binary(max_size=60).map(lambda b: b.replace(b"\n", b" "))


@hsettings(max_examples=200, deadline=None)
@given(lines=st.lists(_LINE, max_size=8), run=st.integers(0, 400), cuts=st.lists(st.integers(0, 10_000), max_size=12))
def test_json_lines_pass_whole_and_a_line_over_the_limit_is_refused_however_split(lines, run, cuts):
    data = b"".join(line + b"\r\n" for line in lines) + b"x" * run
    bounded = push._Bounded(Chunks(split(data, cuts)), 70, (b"\n",))
    if run <= 70:
        assert _run(drain(bounded)) == data
    else:
        with pytest.raises(push.EventTooLarge):
            _run(drain(bounded))


# --- config ---------------------------------------------------------------------------------------


def _sources_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "config" / "sources.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return path


X_SOURCE = """  - name: {name}
    kind: x
    conn_id: {conn}
    push: {push}
    language: id
    queries: ["banjir buleleng", {query}]
    geo_query: {geo}
    bounding_boxes: [[115.0, -8.3, 115.2, -8.1]]
"""


def _x(name: str = SOURCE, conn: str = "x_fake", push: str = "true", query: str = "longsor", geo: str = "banjir OR longsor") -> str:
    return X_SOURCE.format(name=name, conn=conn, push=push, query=json.dumps(query), geo=json.dumps(geo))


def test_push_on_an_x_source_streams_its_queries_and_boxes_as_rules(tmp_path):
    sources = load_sources(_sources_file(tmp_path, "sources:\n" + _x() + _x("x_polled", push="false")))
    assert push.push_streams(sources) == [push.PushStream(SOURCE, "https://api.x.com/2/tweets/search/stream", "x_fake", "x", (
        "(banjir buleleng) lang:id", "(longsor) lang:id", "(banjir OR longsor) bounding_box:[115.0 -8.3 115.2 -8.1]"))]


def test_a_rule_longer_than_x_allows_is_refused_at_its_line(tmp_path):
    long_query = "banjir " + " OR ".join(f"desa{i}" for i in range(80))
    problems, _ = check_sources_file(_sources_file(tmp_path, "sources:\n" + _x(query=long_query)))
    assert [(p.line, p.field) for p in problems] == [(7, "sources[0].queries[1]")]
    assert "512" in problems[0].message and "push" in problems[0].message
    problems, _ = check_sources_file(_sources_file(tmp_path, "sources:\n" + _x(geo=long_query)))
    assert [(p.line, p.field) for p in problems] == [(9, "sources[0].bounding_boxes[0]")]
    # polled only, the same query is fine: recent search takes longer queries
    assert check_sources_file(_sources_file(tmp_path, "sources:\n" + _x(push="false", query=long_query)))[0] == []


def test_two_push_x_sources_on_one_connection_are_refused_at_the_second(tmp_path):
    body = "sources:\n" + _x() + _x("x_jembrana") + _x("x_polled", push="false")
    problems, _ = check_sources_file(_sources_file(tmp_path, body))
    assert [(p.line, p.field) for p in problems] == [(13, "sources[1].push")]
    assert "one filtered-stream connection per app" in problems[0].message and "'x_bali'" in problems[0].message
    # another app's connection, or the second one off, is fine
    assert check_sources_file(_sources_file(tmp_path, "sources:\n" + _x() + _x("x_jembrana", conn="x_kedua")))[0] == []
    disabled = "sources:\n" + _x() + _x("x_jembrana").replace("    push:", "    enabled: false\n    push:")
    assert check_sources_file(_sources_file(tmp_path, disabled))[0] == []


def test_push_that_is_not_a_boolean_is_refused_at_its_line(tmp_path):
    problems, _ = check_sources_file(_sources_file(tmp_path, "sources:\n" + _x(push="sometimes")))
    assert len(problems) == 1 and problems[0].line == 5 and "push" in str(problems[0])


# --- Airflow: the trigger ---------------------------------------------------------------------------


def test_the_x_trigger_serializes_with_its_protocol_and_rules_and_fires_with_its_source():
    import siaga_push

    async def first_event(fake: FakeApis) -> Any:
        trigger = siaga_push.SourcePushTrigger.of(_stream(fake, ("(banjir buleleng) lang:id", "longsor")))
        kwargs = trigger.serialize()[1]
        assert kwargs["protocol"] == "x" and kwargs["terms"] == ["(banjir buleleng) lang:id", "longsor"]
        events = rebuilt(trigger).run()
        pending = asyncio.ensure_future(events.__anext__())
        await _listening(fake)
        fake.tweet(9, 0, "Longsor menutup jalan di Desa Pancasari")
        event = await pending
        await events.aclose()
        return event.payload

    with FakeApis() as fake:
        assert _run(first_event(fake)) == {"source": SOURCE, "announced": 1}
        assert fake.x_rules_of(TAG) == ["(banjir buleleng) lang:id", "longsor"]


def test_the_ingest_dag_watches_the_x_stream_of_a_push_source(monkeypatch, tmp_path):
    from airflow.dag_processing.dagbag import DagBag

    from siaga import settings

    path = _sources_file(tmp_path, "sources:\n" + _x() + _x("x_polled", conn="x_kedua", push="false"))
    monkeypatch.setenv("SIAGA_CONFIG_DIR", str(path.parent))
    monkeypatch.delenv(settings.POLL_INTERVAL_ENV, raising=False)
    bag = DagBag(dag_folder=str(settings.REPO_ROOT / "dags" / "siaga_ingest.py"))
    assert bag.import_errors == {}
    (asset,) = bag.dags["siaga_ingest"].timetable.asset_condition.objects
    assert asset.uri == f"siaga://push/{SOURCE}"
    (watcher,) = asset.watchers
    classpath, kwargs = watcher.trigger.serialize()
    assert classpath == "siaga_push.SourcePushTrigger" and kwargs["protocol"] == "x" and kwargs["conn_id"] == "x_fake"
    assert kwargs["url"] == "https://api.x.com/2/tweets/search/stream" and len(kwargs["terms"]) == 3
