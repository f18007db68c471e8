"""Bluesky push: Jetstream's firehose, filtered to the source's words, wakes ingest at once.

Through the real websockets client against a fake Jetstream on 127.0.0.1
(tests/support/fakejetstream.py): which posts are announced (whole words, any casing or accents,
never a word inside a longer one, created posts only, the source's language), malformed and
oversized messages, a dropped or idle connection, secrets in the address. Then the config that
turns it on, and the trigger Airflow's triggerer runs. The listening loop shared with Mastodon
(backoff, folding announcements into wake-ups) is tests/test_push.py.
"""
from __future__ import annotations

import asyncio
import socket
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings as hsettings, strategies as st

from support.triggers import rebuilt
from support.fakejetstream import FakeJetstream
from siaga.sources import check_sources_file, jetstream, load_sources, push
from siaga.sources.base import SourceConfigError

SOURCE = "bluesky_bali"


@pytest.fixture(autouse=True)
def _no_index_lag(monkeypatch):
    """Announce at once (the lag for the search index is a constant, not what is tested here),
    and forget where earlier tests' streams got to."""
    monkeypatch.setattr(jetstream, "INDEX_LAG", 0.0)
    monkeypatch.setattr(jetstream, "RESUME", jetstream._Resume())


def _run(coro, timeout: float = 20.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


def _stream(fake: FakeJetstream, terms: tuple[str, ...] = ("banjir", "pohon tumbang"), language: str | None = None,
            url: str | None = None) -> push.PushStream:
    return push.PushStream(SOURCE, url or fake.url, None, "bluesky", terms, language)


def _uri(event: dict[str, Any]) -> str:
    return f"at://{event['did']}/app.bsky.feed.post/{event['commit']['rkey']}"


async def _listening(fake: FakeJetstream, count: int = 1) -> None:
    while fake.listening < count:
        await asyncio.sleep(0.01)


async def _announced(fake: FakeJetstream, stream: push.PushStream, publish) -> list[str]:
    """Listen, `publish()` on the fake, and collect what is announced up to the post whose uri
    `publish` returns (published last, a match): messages go in order over one connection, so
    anything announced before it came from what `publish` sent before it."""
    reader = push.announcements(stream, None)
    first = asyncio.ensure_future(reader.__anext__())
    await _listening(fake)
    last = await asyncio.to_thread(publish)
    got = [await first]
    while got[-1] != last:
        got.append(await reader.__anext__())
    await reader.aclose()
    return got


# --- which posts are announced ----------------------------------------------------------------


def test_only_a_created_post_with_the_words_of_a_query_is_announced():
    def publish() -> str:
        fake.post("Banjar Tegal ramai sekali")  # a word like it, not it
        fake.post("Kebanjiran lagi")  # the word inside a longer one
        fake.post("Pohon besar di depan rumah")  # one word of a two-word term
        fake.send({"kind": "commit", "commit": {"operation": "delete", "collection": jetstream.POST, "rkey": "3ldel"}})
        fake.send({"kind": "commit", "commit": {"operation": "update", "collection": jetstream.POST, "rkey": "3lupd",
                                                "record": {"text": "banjir (edited)"}}})
        fake.send({"kind": "commit", "commit": {"operation": "create", "collection": "app.bsky.feed.like", "rkey": "3llik",
                                                "record": {"text": "banjir", "subject": {"uri": "at://x"}}}})
        fake.send({"kind": "identity", "identity": {"did": "did:plc:x", "handle": "banjir.bsky.social"}})
        fake.send({"kind": "account", "account": {"active": True, "did": "did:plc:x"}})
        matched.append(fake.post("Tumbang! Pohon di Jalan Ahmad Yani"))  # both words, any order
        matched.append(fake.post("BANJIR di Desa Sangsit"))
        return _uri(matched[-1])

    matched: list[dict[str, Any]] = []
    with FakeJetstream() as fake:
        got = _run(_announced(fake, _stream(fake), publish))
    assert got == [_uri(e) for e in matched]


def test_hashtags_beside_the_text_count_as_words():
    def publish() -> str:
        fake.post("Situasi terkini", tags=["Banjar"])
        return _uri(fake.post("Situasi terkini", tags=["Banjir"]))

    with FakeJetstream() as fake:
        assert len(_run(_announced(fake, _stream(fake), publish))) == 1


def test_the_source_language_keeps_posts_in_it_or_in_none():
    def publish() -> str:
        fake.post("banjir", langs=["en"])  # 1: another language
        fake.post("banjir", langs=["ms", "en"])  # 2
        sent.append(fake.post("banjir", langs=["id-ID"]))  # 3
        sent.append(fake.post("banjir", langs=["in"]))  # 4: the old code for Indonesian
        sent.append(fake.post("banjir"))  # 5: none given
        sent.append(fake.post("banjir", langs=["en", "id"]))  # 6
        return _uri(sent[-1])

    sent: list[dict[str, Any]] = []
    with FakeJetstream() as fake:
        got = _run(_announced(fake, _stream(fake, language="id"), publish))
    assert got == [_uri(e) for e in sent]


_LETTERS = "abcdeghijklmnoprstuwy"
_WORD = st.text(_LETTERS, min_size=3, max_size=10).filter(lambda w: jetstream.fold_words(w) == [w])
_SEPARATORS = st.sampled_from([" ", ", ", "! ", "\n", " #", " 🌊 ", "…", " (", ") ", " — "])
_ACCENTS = ["\u0301", "\u0300", "\u0308", "\u0302", "\u0303"]


@st.composite
def _written(draw: Any, word: str) -> str:
    """`word` as someone may type it: any letter upper-case, any with an accent (composed or
    combining)."""
    out = []
    for ch in word:
        ch = ch.upper() if draw(st.booleans()) else ch
        if draw(st.integers(0, 3)) == 0:
            ch = unicodedata.normalize(draw(st.sampled_from(["NFC", "NFD"])), ch + draw(st.sampled_from(_ACCENTS)))
        out.append(ch)
    return "".join(out)


@st.composite
def _embedded(draw: Any, word: str) -> str:
    """`word` inside a longer word: letters or digits glued to it before and/or after, none the
    same letter as the one it touches (three of a letter fold into one: "banjirrr" is shouted
    "banjir", and is meant to match)."""
    before = draw(st.text(_LETTERS + "0123456789", max_size=4).filter(lambda s: not s or s[-1] != word[0]))
    after = draw(st.text(_LETTERS + "0123456789", max_size=4).filter(lambda s: not s or s[0] != word[-1]))
    assume(before or after)
    return before + draw(_written(word)) + after


@hsettings(max_examples=300, deadline=None)
@given(data=st.data(), word=_WORD, other=_WORD)
def test_a_term_matches_any_casing_or_accents_and_never_inside_a_longer_word(data, word, other):
    assume(word != other)
    terms = jetstream.Terms([word])
    around = data.draw(_SEPARATORS), data.draw(_SEPARATORS)
    assert terms.match(f"{other}{around[0]}{data.draw(_written(word))}{around[1]}{other}")
    assert not terms.match(f"{other}{around[0]}{data.draw(_embedded(word))}{around[1]}{other}")


@hsettings(max_examples=500, deadline=None)
@given(word=_WORD, data=st.data())
def test_the_letter_check_before_folding_never_turns_away_a_post_that_matches(word, data):
    """`may_match` skips folding most of the network's posts; it must never skip one whose
    folded words hold the term, however it is written: any Unicode around, the word with
    accents, compatibility forms (fullwidth), invisible characters or elongation inside."""
    variant = data.draw(st.one_of(
        _written(word),
        st.just("".join(chr(ord(c) + 0xFEE0) for c in word)),  # fullwidth
        st.just(word[0] + "\u200b" + word[1:]),  # a zero-width space inside
        st.just(word[:-1] + word[-1] * 4),  # shouted
    ))
    text = data.draw(st.text(max_size=30)) + data.draw(_SEPARATORS) + variant + data.draw(_SEPARATORS) + data.draw(st.text(max_size=30))
    terms = jetstream.Terms([word])
    assert terms.match_words(set(jetstream.fold_words(text))) <= terms.may_match(text)
    if terms.match_words(set(jetstream.fold_words(text))):
        assert terms.match(text)


@hsettings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cases=st.lists(st.tuples(_WORD, st.booleans(), st.data()), min_size=1, max_size=6))
def test_over_the_websocket_exactly_the_posts_holding_the_word_whole_are_announced(cases):
    """The same property end to end: each case a post holding its word written any way (to
    match) or inside a longer word (not to), through the fake Jetstream and the real client."""
    texts = [(f"kabar {data.draw(_written(word)) if whole else data.draw(_embedded(word))} hari ini", whole)
             for word, whole, data in cases]  # drawn here: hypothesis draws only in the test's thread

    def publish() -> str:
        for text, whole in texts:
            event = fake.post(text)
            if whole:
                expected.append(_uri(event))
        expected.append(_uri(fake.post("sentinel zzzq")))
        return expected[-1]

    expected: list[str] = []
    terms = tuple(dict.fromkeys(w for w, _, _ in cases)) + ("zzzq",)
    with FakeJetstream() as fake:
        got = _run(_announced(fake, _stream(fake, terms=terms), publish))
    assert got == expected




# --- what the stream may do -------------------------------------------------------------------------


def test_malformed_messages_are_skipped_and_counted_and_the_stream_goes_on(caplog):
    def publish() -> str:
        fake.raw("{not json")
        fake.raw('{"kind": "commit", "time_us": "soon"}')  # JSON, not the shape of an event
        fake.raw('{"kind": "commit", "commit": {"operation": "create", "collection": "app.bsky.feed.post", '
                 '"record": {"text": 7}}}')
        fake.raw(b"\xff\xfe binary")
        fake.raw("[]")
        return _uri(fake.post("Banjir di Sangsit"))

    with FakeJetstream() as fake, caplog.at_level("WARNING"):
        got = _run(_announced(fake, _stream(fake), publish))
        assert len(fake.subscriptions) == 1  # the same connection throughout
    assert len(got) == 1
    assert "malformed Jetstream message (1 so far)" in caplog.text
    assert "5 malformed Jetstream messages skipped" in caplog.text


async def _wake_after(fake: FakeJetstream, stream: push.PushStream, disturb) -> int:
    """Listen; `disturb()` the connection; once the listener is connected again, a matching
    post: what its next wake-up counts."""
    wakes = push.wake_ups(stream, gap=0.01, backoff_first=0.01)
    pending = asyncio.ensure_future(wakes.__anext__())
    await _listening(fake)
    await asyncio.to_thread(disturb)
    while len(fake.subscriptions) < 2:
        await asyncio.sleep(0.01)
    await _listening(fake)
    fake.post("Pohon tumbang di Jalan Ahmad Yani")
    got = (await pending).count
    await wakes.aclose()
    return got


def test_a_message_over_the_limit_closes_the_connection_and_it_is_opened_again(caplog):
    """Jetstream is asked for nothing larger (`maxMessageSizeBytes`); a server that sends it
    anyway is cut off by the client's own limit rather than buffered, and listened to again."""
    with FakeJetstream() as fake, caplog.at_level("WARNING"):
        assert _run(_wake_after(fake, _stream(fake), lambda: fake.raw("x" * (push.MAX_EVENT_BYTES + 1)))) == 1
        asked = fake.subscriptions[0].params
    assert asked["maxMessageSizeBytes"] == [str(push.MAX_EVENT_BYTES)] and asked["wantedCollections"] == [jetstream.POST]
    assert "1009" in caplog.text  # the close code for a message too big


def test_a_dropped_connection_is_opened_again_and_resumes_where_it_was():
    """Cut without a close frame; a post published while nobody listens is replayed from the
    cursor of the last event read, and announced."""
    async def scenario(fake: FakeJetstream) -> list[str]:
        reader_queue: asyncio.Queue[str] = asyncio.Queue()

        async def meanwhile(seconds: float) -> None:  # the backoff wait: the network goes on
            missed.append(_uri(fake.post("Banjir saat terputus")))
            await asyncio.sleep(0)

        listener = asyncio.create_task(push.listen(_stream(fake), reader_queue, sleep=meanwhile, backoff_first=0.01))
        await _listening(fake)
        fake.post("banjir sebelum")
        got = [await reader_queue.get()]
        fake.drop()
        got.append(await reader_queue.get())
        listener.cancel()
        return got

    missed: list[str] = []
    with FakeJetstream() as fake:
        got = _run(scenario(fake))
        first, second = fake.subscriptions[:2]
    assert got[1] == missed[0]
    assert "cursor" not in first.params
    assert int(second.params["cursor"][0]) == fake.log[0][0] + 1  # just after the last event read


def test_matches_waiting_out_the_index_lag_are_still_announced_when_the_server_closes(monkeypatch):
    """Matches are held `INDEX_LAG` for the search to index them; a clean close meanwhile ends
    the stream only after they are announced (none is lost to the next poll)."""
    monkeypatch.setattr(jetstream, "INDEX_LAG", 0.3)

    async def scenario(fake: FakeJetstream) -> tuple[list[str], list[str]]:
        reader = push.announcements(_stream(fake), None)
        first = asyncio.ensure_future(reader.__anext__())
        await _listening(fake)
        sent = [_uri(fake.post("Banjir di Sangsit")), _uri(fake.post("banjir lagi"))]
        await asyncio.to_thread(fake.close)  # the close handshake needs this loop to answer
        got = [await first]
        got += [uri async for uri in reader]  # then the stream ends
        return sent, got

    with FakeJetstream() as fake:
        sent, got = _run(scenario(fake))
    assert got == sent


def test_a_silent_connection_is_given_up_and_opened_again(monkeypatch, caplog):
    """No message for IDLE_TIMEOUT (the firehose is never quiet that long): the connection is
    taken for dead and opened again."""
    monkeypatch.setattr(push, "IDLE_TIMEOUT", 0.2)
    with FakeJetstream() as fake, caplog.at_level("WARNING"):
        assert _run(_wake_after(fake, _stream(fake), lambda: None)) == 1
    assert "nothing from Jetstream" in caplog.text


def test_the_address_secrets_are_never_logged(caplog):
    """A token in the Jetstream URL reaches the server, but neither our log lines nor the
    websockets library's (it logs the request line at DEBUG) show it; nor do failures."""
    with FakeJetstream() as fake, caplog.at_level("DEBUG"):
        stream = _stream(fake, url=fake.url.replace("//", "//warga:sandi-rahasia@") + "?token=tok-rahasia")
        assert _run(_announced(fake, stream, lambda: _uri(fake.post("banjir"))))
        assert fake.subscriptions[0].params["token"] == ["tok-rahasia"]
        basic = fake.subscriptions[0].headers["Authorization"].split()[1]  # websockets sends the user:password
    ours = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("websockets.server"))  # not the fake's
    assert "listening to" in ours
    assert "tok-rahasia" not in ours and "sandi-rahasia" not in ours and basic not in ours
    caplog.clear()
    with socket.socket() as closed_port:
        closed_port.bind(("127.0.0.1", 0))
        port = closed_port.getsockname()[1]
    tries: list[float] = []

    async def twice(seconds: float) -> None:
        tries.append(seconds)
        if len(tries) == 2:
            raise asyncio.CancelledError

    stream = push.PushStream(SOURCE, f"ws://warga:sandi-rahasia@127.0.0.1:{port}/subscribe?token=tok-rahasia",
                             None, "bluesky", ("banjir",))
    with caplog.at_level("DEBUG"), pytest.raises(asyncio.CancelledError):
        _run(push.listen(stream, asyncio.Queue(), sleep=twice, backoff_first=0.01))
    assert "ConnectionRefusedError" in caplog.text and len(tries) == 2
    assert "tok-rahasia" not in caplog.text and "sandi-rahasia" not in caplog.text


def test_only_websocket_addresses_are_read():
    for url in ("https://jetstream.example/subscribe", "file:///etc/passwd", "wss:///subscribe"):
        with pytest.raises(ValueError, match="ws://"):
            jetstream.check_url(url)
    jetstream.check_url(jetstream.PUBLIC_JETSTREAM)


# --- the terms a query needs ------------------------------------------------------------------------


@pytest.mark.parametrize("query, terms", [
    ("banjir buleleng", ["banjir buleleng"]),
    ('"Gempa Bumi" Bali', ["gempa bumi bali"]),  # a phrase: its words, not side by side
    ("banjir OR longsor", ["banjir", "longsor"]),
    ("(banjir OR longsor) buleleng -jakarta", ["banjir", "longsor buleleng"]),  # what follows an OR stays with it
    ('banjir NOT (jakarta bekasi) -"banjir promo"', ["banjir"]),
    ("#BanjirBuleleng from:bpbd.bsky.social lang:id", ["banjirbuleleng"]),
    ("Bánjír!! did:plc:abc https://bmkg.go.id banj*", ["banjir"]),
    ("from:bpbd.bsky.social", []),  # filters only: nothing to listen for
    ("banjir OR from:bpbd.bsky.social", []),  # an alternative of filters only would match every post
])
def test_the_terms_of_a_query_require_its_words_and_drop_the_rest(query, terms):
    assert jetstream.query_terms(query) == terms


@hsettings(max_examples=200, deadline=None)
@given(alternatives=st.lists(st.lists(_WORD, min_size=1, max_size=3), min_size=1, max_size=3), data=st.data())
def test_every_post_a_query_of_ors_and_parentheses_finds_is_announced(alternatives, data):
    """Whatever the grouping, a post holding the words the query requires matches a term: the
    approximation errs towards waking, never missing."""
    groups = [" ".join(words) for words in alternatives]
    tail = data.draw(_WORD)
    query = f"({' OR '.join(groups)}) {tail}"  # Lucene: (g1 OR g2 ...) AND tail
    chosen = data.draw(st.sampled_from(alternatives))
    post = " ".join([*chosen, "dan", tail])
    assert jetstream.Terms(jetstream.query_terms(query)).match(post)


# --- config --------------------------------------------------------------------------------------------


def _sources_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "config" / "sources.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return path


BLUESKY = """sources:
  - name: bluesky_bali
    kind: bluesky
    push: {push}
    language: id
    queries: [{queries}]
{extra}"""


def test_push_listens_to_jetstream_for_the_words_of_every_query(tmp_path):
    sources = load_sources(_sources_file(tmp_path, BLUESKY.format(
        push="true", queries='"banjir buleleng", "from:bpbd.bsky.social", "pohon tumbang OR longsor"', extra="")))
    assert push.push_streams(sources) == [push.PushStream(
        "bluesky_bali", jetstream.PUBLIC_JETSTREAM, None, "bluesky", ("banjir buleleng", "pohon tumbang", "longsor"), "id")]
    own = load_sources(_sources_file(tmp_path, BLUESKY.format(
        push="true", queries="banjir", extra="    jetstream: wss://jetstream.example/subscribe\n")))
    assert [s.url for s in push.push_streams(own)] == ["wss://jetstream.example/subscribe"]
    off = load_sources(_sources_file(tmp_path, BLUESKY.format(push="false", queries="banjir", extra="")))
    assert push.push_streams(off) == []


@pytest.mark.parametrize("push_value, queries, extra, line, words", [
    ("true", "banjir", "    jetstream: https://jetstream.example/subscribe?token=tok-rahasia\n", 7, ("jetstream", "ws://")),
    ("true", '"from:bpbd.bsky.social", "lang:id"', "", 4, ("push", "no query has a word")),
    ("yes please", "banjir", "", 4, ("push",)),
    ("true", "banjir", "    jetstream: [wss://a.example]\n", 7, ("jetstream",)),
])
def test_a_bad_push_setting_is_refused_at_its_line(tmp_path, push_value, queries, extra, line, words):
    path = _sources_file(tmp_path, BLUESKY.format(push=push_value, queries=queries, extra=extra))
    problems, _ = check_sources_file(path)
    assert [p.line for p in problems] == [line]
    assert all(w in str(problems[0]) for w in words) and "tok-rahasia" not in str(problems[0])
    with pytest.raises(SourceConfigError, match=f"sources.yaml:{line}"):
        load_sources(path)


# --- Airflow: the trigger -------------------------------------------------------------------------


def test_the_trigger_serializes_with_its_protocol_terms_and_language_and_fires_on_a_match():
    import siaga_push

    async def first_event(fake: FakeJetstream) -> Any:
        trigger = siaga_push.SourcePushTrigger.of(_stream(fake, language="id"))
        assert trigger.serialize()[1] == {"source": SOURCE, "url": fake.url, "conn_id": None, "protocol": "bluesky",
                                          "terms": ["banjir", "pohon tumbang"], "language": "id"}
        events = rebuilt(trigger).run()
        pending = asyncio.ensure_future(events.__anext__())
        await _listening(fake)
        fake.post("Banjir di Desa Panji", langs=["en"])  # not the source's language
        fake.post("Kebakaran di Desa Panji", langs=["id"])
        fake.post("Banjir di Desa Panji", langs=["id"])
        event = await pending
        await events.aclose()
        return event.payload

    with FakeJetstream() as fake:
        assert _run(first_event(fake)) == {"source": SOURCE, "announced": 1}


def test_the_ingest_dag_watches_a_bluesky_source_that_pushes(monkeypatch, tmp_path):
    from test_push import _ingest_dag  # the DAG as the dag-processor parses it

    path = _sources_file(tmp_path, BLUESKY.format(push="true", queries='"banjir buleleng", "#singaraja"', extra=""))
    dag = _ingest_dag(monkeypatch, path.parent)
    (asset,) = dag.timetable.asset_condition.objects
    assert asset.uri == "siaga://push/bluesky_bali"
    assert [w.trigger.serialize() for w in asset.watchers] == [
        ("siaga_push.SourcePushTrigger", {"source": "bluesky_bali", "url": jetstream.PUBLIC_JETSTREAM, "conn_id": None,
                                          "protocol": "bluesky", "terms": ["banjir buleleng", "singaraja"], "language": "id"})]
