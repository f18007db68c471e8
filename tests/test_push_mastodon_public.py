"""Mastodon push for searches: the public timeline stream, filtered to the searches' words.

Through the real httpx client against the fake Mastodon's public streaming endpoint on
127.0.0.1 (every status of every hashtag, to a listener with a token): which statuses are
announced (whole words of a search, any casing or accents, in the HTML, content warning, poll
or media descriptions; never a word inside or like another; the source's language), malformed
event data, the token, one announcement per match naming its status (read by id by the woken
run: tests/test_mastodon_by_id.py), the search opt-out. Then the query syntax and the trigger
Airflow's triggerer runs. The config that turns it on is tests/test_push.py.
"""
from __future__ import annotations

import asyncio
import html
import math
import time
from typing import Any, Callable

import httpx
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from support.triggers import rebuilt
from support.fakeapis import FakeApis
from siaga.sources import mastodon_public as mp, push
from siaga.sources.terms import Terms

SOURCE = "mastodon_bali"
CONN = "mastodon_online"
SECRET = "tok-publik-rahasia"


@pytest.fixture(autouse=True)
def _token(monkeypatch):
    monkeypatch.setenv("SIAGA_MASTODON_ONLINE_TOKEN", SECRET)


def _run(coro, timeout: float = 20.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


def _stream(fake: FakeApis, queries: tuple[str, ...] = ("banjir buleleng", "pohon tumbang"), language: str | None = None,
            conn_id: str | None = CONN) -> push.PushStream:
    terms = tuple(t for q in queries for t in mp.query_terms(q))
    return push.PushStream(SOURCE, mp.mastodon_public_url(fake.url), conn_id, mp.PROTOCOL, terms, language)


async def _listening(fake: FakeApis) -> None:
    while fake.listening < 1:
        await asyncio.sleep(0.01)


async def _announced(fake: FakeApis, stream: push.PushStream, publish: Callable[[], str]) -> list[str]:
    """Listen, `publish()` on the fake, and collect what is announced up to the status whose
    label `publish` returns (published last, a match): events come in order over one
    connection, so anything announced before it came from what `publish` sent before it."""
    async with httpx.AsyncClient(timeout=10) as client:
        reader = push.announcements(stream, client)
        first = asyncio.ensure_future(reader.__anext__())
        await _listening(fake)
        last = await asyncio.to_thread(publish)
        got = [await first]
        while got[-1] != last:
            got.append(await reader.__anext__())
        await reader.aclose()
    return got


def _toot(fake: FakeApis, sid: int, text: str, **extra: Any) -> str:
    fake.toot("lainnya", sid, 0, text, **extra)  # a hashtag nobody streams: only the public timeline carries it
    return f"status {sid}"


# --- which statuses are announced ------------------------------------------------------------------


def test_only_a_status_with_every_word_of_a_search_is_announced():
    with FakeApis() as fake:
        def publish() -> str:
            _toot(fake, 1, "Banjar Buleleng ramai sekali")  # a word like it, not it
            _toot(fake, 2, "Kebanjiran lagi di Buleleng")  # the word inside a longer one
            _toot(fake, 3, "Banjir di Jakarta")  # one word of the search
            _toot(fake, 4, "Pohon besar di depan rumah")  # one word of a two-word search
            _toot(fake, 5, "BANJIR bándang di Kecamatan Buleleng!!")
            _toot(fake, 6, "Banjar lagi")
            return _toot(fake, 7, "Pohon TUMBANG menutup jalan")

        got = _run(_announced(fake, _stream(fake), publish))
    assert got == ["status 5", "status 7"]


def test_the_words_are_read_from_the_html_the_content_warning_the_poll_and_the_media():
    with FakeApis() as fake:
        def publish() -> str:
            fake.toot("lainnya", 1, 0, "x", content='<p>Lihat <a href="https://banjir.example/buleleng">tautan</a></p>')  # words only in markup
            fake.toot("lainnya", 2, 0, "x", content="<p>B&aacute;n&#106;ir&nbsp;di&#160;Bul&#x65;leng &amp; sekitarnya</p>")
            fake.toot("lainnya", 3, 0, "x", content="<p>Air naik</p>", spoiler_text="Banjir Buleleng")
            fake.toot("lainnya", 4, 0, "x", content="<p>Pilih</p>", poll={"options": [{"title": "Banjir"}, {"title": "Buleleng"}]})
            fake.toot("lainnya", 5, 0, "x", content="<p>Foto</p>",
                      media_attachments=[{"type": "image", "description": "Pohon tumbang di jalan"}])
            fake.toot("lainnya", 6, 0, "x", content="<p>banjir</p><p>buleleng</p>")  # paragraphs still part words
            fake.toot("lainnya", 7, 0, "x", content='<p><a href="x" class="mention hashtag">#<span>Banjir</span></a> '
                                                    '<a href="y" class="hashtag">#<span>Buleleng</span></a></p>')
            return "status 7"

        got = _run(_announced(fake, _stream(fake), publish))
    assert got == ["status 2", "status 3", "status 4", "status 5", "status 6", "status 7"]


def test_a_status_in_another_language_is_not_announced_one_naming_none_is():
    with FakeApis() as fake:
        def publish() -> str:
            _toot(fake, 1, "Banjir Buleleng", language="en")
            _toot(fake, 2, "Banjir Buleleng", language=None)
            _toot(fake, 3, "Banjir Buleleng", language="in")  # the old code for Indonesian
            return _toot(fake, 4, "Banjir Buleleng", language="id")

        got = _run(_announced(fake, _stream(fake, language="id-ID"), publish))
    assert got == ["status 2", "status 3", "status 4"]


def test_malformed_event_data_is_skipped_counted_and_never_stops_the_stream(caplog):
    with FakeApis() as fake, caplog.at_level("WARNING"):
        def publish() -> str:
            fake.public_event(b'{"id": "9", "content": "<p>Banjir Buleleng')  # cut short
            fake.public_event(b'{"id": "9", "content": 5}')  # the wrong shape
            fake.public_event(b'{"id": "9", "content": "Banjir Buleleng", "media_attachments": null}')
            fake.public_event(b'[' * 100_000 + b']' * 100_000)  # nested deeper than any decoder recurses
            fake.public_event(b"\xff\xfe banjir buleleng")  # not UTF-8
            return _toot(fake, 10, "Banjir Buleleng")

        got = _run(_announced(fake, _stream(fake), publish))
    assert got == ["status 10"]
    assert "5 malformed statuses skipped" in caplog.text


def test_the_token_goes_only_in_the_header_and_a_stream_without_one_says_what_it_needs(caplog):
    with FakeApis() as fake:
        assert _run(_announced(fake, _stream(fake), lambda: _toot(fake, 1, "Pohon tumbang"))) == ["status 1"]
        (listened,) = fake.hits("/api/v1/streaming/public")
        assert listened.headers.get("Authorization") == f"Bearer {SECRET}" and listened.params == {}

        async def without_token() -> None:
            async with httpx.AsyncClient(timeout=10) as client:
                async for _ in push.announcements(_stream(fake, conn_id=None), client):
                    pass

        with pytest.raises(push.StreamRefused, match="public timeline stream needs a user token with read:statuses.*conn_id"):
            _run(without_token())
        assert "Authorization" not in fake.hits("/api/v1/streaming/public")[-1].headers
    assert SECRET not in caplog.text


def test_a_stream_without_terms_is_refused_before_connecting():
    with FakeApis() as fake:
        stream = push.PushStream(SOURCE, mp.mastodon_public_url(fake.url), CONN, mp.PROTOCOL, ())

        async def read() -> None:
            async with httpx.AsyncClient(timeout=10) as client:
                async for _ in push.announcements(stream, client):
                    pass

        with pytest.raises(ValueError, match="no terms"):
            _run(read())
        assert fake.requests == []


# --- one announcement per match, naming its status; the opt-out respected ------------------------------


def test_each_match_is_announced_once_naming_its_status_and_never_again(monkeypatch):
    """The woken run reads the status by id, so nothing waits for the search index: no repeats
    (until the by-id read, every match came again 30, 60 and 90 s later). The label names the
    status (`push.status_label`), which is how its id reaches the run."""
    monkeypatch.setattr(push, "GAP", 60.0)

    async def scenario(fake: FakeApis) -> list[str]:
        queue: asyncio.Queue[str] = asyncio.Queue()
        reader = asyncio.create_task(push.listen(_stream(fake), queue, backoff_first=0.01))
        await _listening(fake)
        _toot(fake, 1, "Banjir Buleleng")
        _toot(fake, 2, "Banjir Buleleng lagi")
        got = [await queue.get(), await queue.get()]
        await asyncio.sleep(0.5)
        reader.cancel()
        return got + [queue.get_nowait() for _ in range(queue.qsize())]

    with FakeApis() as fake:
        got = _run(scenario(fake))
    assert got == ["status 1", "status 2"]
    assert [push.announced_id(label) for label in got] == ["1", "2"]
    assert not hasattr(mp, "SEARCH_LAGS")


def test_a_status_whose_account_opted_out_of_search_wakes_nothing():
    """Mastodon's public search never returns the statuses of an account with `indexable:
    false`: waking a run for one would cost a search request for nothing. An account that does
    not say (an older server) still wakes one."""
    with FakeApis() as fake:
        def publish() -> str:
            _toot(fake, 1, "Banjir Buleleng", account={"id": "1", "acct": "diam", "indexable": False})
            _toot(fake, 2, "Banjir Buleleng", account={"id": "2", "acct": "lama"})
            return _toot(fake, 3, "Banjir Buleleng")

        got = _run(_announced(fake, _stream(fake), publish))
    assert got == ["status 2", "status 3"]


# --- text and terms --------------------------------------------------------------------------------------


@pytest.mark.parametrize("query, terms", [
    ("banjir buleleng", ["banjir buleleng"]),
    ('"Pohon Tumbang" +Singaraja -jakarta', ["pohon tumbang singaraja"]),
    ("#BanjirBuleleng from:bpbd@mastodon.social has:media is:reply language:id in:library", ["banjirbuleleng"]),
    ("banjir before:2026-01-20 after:2026-01-01 during:2026-01-15 +has:poll", ["banjir"]),
    ("from:bpbd has:media", []),  # filters only: nothing to listen for
    ("banjir OR longsor", ["banjir", "longsor"]),  # Mastodon has no OR (it wants the word "or"): waking more is safe
])
def test_the_terms_of_a_mastodon_search_drop_its_filters(query, terms):
    assert mp.query_terms(query) == terms


_WORD = st.text("abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=9)
_MARKUP = st.sampled_from(["<br>", "</p><p>", "<br />", " ", "\n"])


@hsettings(max_examples=200, deadline=None)
@given(words=st.lists(_WORD, min_size=1, max_size=6), cuts=st.lists(_MARKUP, min_size=6, max_size=6), data=st.data())
def test_escaped_text_in_markup_reads_as_the_words_it_shows(words, cuts, data):
    """Whatever markup stands between the words, and whichever of their characters a writer
    wrote as a character reference, the filter sees the words Mastodon shows: a search for all
    of them matches."""
    def escaped(word: str) -> str:
        i = data.draw(st.integers(0, len(word) - 1))
        ref = data.draw(st.sampled_from([f"&#{ord(word[i])};", f"&#x{ord(word[i]):x};"]))
        return word[:i] + ref + word[i + 1:] + html.escape(data.draw(st.sampled_from(["&", "<", ">", '"', ""])))

    content = "<p>" + "".join(escaped(w) + cut for w, cut in zip(words, cuts)) + "</p>"
    assert Terms([" ".join(words)]).match(mp.html_words(content))


# --- the trigger ------------------------------------------------------------------------------------------


def test_the_trigger_serializes_to_an_importable_class_and_fires_on_a_matching_status():
    import siaga_push

    async def first_event(fake: FakeApis) -> Any:
        trigger = siaga_push.SourcePushTrigger.of(_stream(fake, language="id"))
        kwargs = trigger.serialize()[1]
        assert kwargs["protocol"] == "mastodon_public" and kwargs["terms"] == ["banjir buleleng", "pohon tumbang"]
        events = rebuilt(trigger).run()
        pending = asyncio.ensure_future(events.__anext__())
        await _listening(fake)
        _toot(fake, 1, "Pohon tumbang di Jalan Ahmad Yani")
        event = await pending
        await events.aclose()
        return event.payload

    with FakeApis() as fake:
        assert _run(first_event(fake)) == {"source": SOURCE, "announced": 1, "ids": ["1"],
                                           "stream": f"{fake.url}/api/v1/streaming/public"}


# --- the fake's search index, which the latency benchmark relies on ------------------------------------


def test_the_fake_search_finds_a_status_only_once_indexed_and_refreshed():
    """With Mastodon's index lag on (`search_index`), a status is found once the indexing job
    after it and the refresh after that have run, and not before."""
    with FakeApis() as fake:
        fake.search_index, fake.search_phase = (60.0, 30.0), (0.0, 0.0)
        old, new = fake.toot("lainnya", 1, 0, "Banjir Buleleng lama"), fake.toot("lainnya", 2, 0, "Banjir Buleleng baru")
        now = time.time()
        fake._added[old["id"]] = math.floor(now / 60) * 60 - 100  # indexed at the tick 40 s later, refreshed then: found
        fake._added[new["id"]] = math.floor(now / 60) * 60 + 0.5  # the next indexing tick has not come yet
        found = httpx.get(f"{fake.url}/api/v2/search", params={"q": "banjir", "type": "statuses"}).json()["statuses"]
        assert [s["id"] for s in found] == ["1"]
        fake.search_index = None
        found = httpx.get(f"{fake.url}/api/v2/search", params={"q": "banjir", "type": "statuses"}).json()["statuses"]
        assert sorted(s["id"] for s in found) == ["1", "2"]
