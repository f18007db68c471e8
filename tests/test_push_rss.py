"""Push for RSS and Atom: the triggerer watches a feed and a new item wakes ingest within
`watch_every` seconds instead of at the next poll.

Through the real httpx client against the fake feeds (tests/support/fakeapis.py) on 127.0.0.1:
the first look only learns the feed, a new item wakes once, a feed rewritten without a new item
(a new `lastBuildDate`, a new ETag) wakes nothing, an unchanged feed is asked conditionally, a
broken feed still tells its new items, an item that appears while a look fails is announced by
the next look, refusals wait as the server asks, an oversized answer is cut, a moved feed is
followed. Then the config that turns it on and what it refuses, and the trigger Airflow's
triggerer runs.
"""
from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from support.fakeapis import FakeApis
from support.feeds import DATE, rss_feed, rss_item
from support.wakeups import wake_ups_while
from support.triggers import rebuilt
from siaga.sources import check_sources_file, load_sources, push, rss, rss_watch, watch

pytestmark = pytest.mark.usefixtures("new_watchers")

SOURCE = "berita_bali"
EVERY = 0.05  # seconds between looks in these tests (the sources file allows no less than 5)
NOW = datetime(2026, 1, 15, 6, 0, tzinfo=timezone.utc)


def _feed(*guids: str, built: str = DATE) -> str:
    """A feed of reports with these ids, built at `built`."""
    return rss_feed(*(rss_item(g, "Banjir di Desa Sangsit") for g in guids), built=built)


def _stream(fake: FakeApis, name: str = "berita.xml") -> push.PushStream:
    return push.PushStream(SOURCE, f"{fake.url}/feeds/{name}", protocol="rss", every=EVERY)


def _looks(fake: FakeApis, name: str = "berita.xml") -> list[Any]:
    return fake.hits(f"/feeds/{name}")


async def _until(condition, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def test_a_new_item_wakes_once_and_a_rewritten_or_unchanged_feed_wakes_nothing():
    with FakeApis() as fake:
        fake.data.feeds["berita.xml"] = ('"v1"', _feed("a-1", "a-2"))
        stream = _stream(fake)

        async def act() -> None:
            await _until(lambda: len(_looks(fake)) >= 3)  # learnt, then asked again unchanged
            fake.data.feeds["berita.xml"] = ('"v2"', _feed("a-1", "a-2", built="Thu, 15 Jan 2026 09:00:00 +0800"))
            await _until(lambda: any(r.headers.get("If-None-Match") == '"v2"' for r in _looks(fake)))
            fake.data.feeds["berita.xml"] = ('"v3"', _feed("a-3", "a-1", "a-2"))
            await _until(lambda: any(r.headers.get("If-None-Match") == '"v3"' for r in _looks(fake)))

        got = asyncio.run(wake_ups_while(stream, act))
    assert got == [push.WakeUp(1)]
    looks = _looks(fake)
    assert looks[0].headers.get("If-None-Match") is None
    assert looks[1].headers.get("If-None-Match") == '"v1"' and looks[1].headers.get("If-Modified-Since")


def test_several_new_items_are_one_wake_up_counting_each():
    with FakeApis() as fake:
        fake.data.feeds["berita.xml"] = ('"v1"', _feed("a-1"))

        async def act() -> None:
            await _until(lambda: len(_looks(fake)) >= 2)
            fake.data.feeds["berita.xml"] = ('"v2"', _feed("a-2", "a-3", "a-1"))
            await _until(lambda: any(r.headers.get("If-None-Match") == '"v2"' for r in _looks(fake)))

        got = asyncio.run(wake_ups_while(_stream(fake), act))
    assert got == [push.WakeUp(2)]


def test_an_item_that_appears_while_a_look_fails_is_announced_by_the_next_look():
    with FakeApis() as fake:
        fake.data.feeds["berita.xml"] = ('"v1"', _feed("a-1"))

        async def act() -> None:
            await _until(lambda: len(_looks(fake)) >= 2)
            fake.fail("/feeds/berita.xml", "server_error", times=2, status=502)
            fake.data.feeds["berita.xml"] = ('"v2"', _feed("a-2", "a-1"))
            await _until(lambda: any(r.headers.get("If-None-Match") == '"v2"' for r in _looks(fake)))

        got = asyncio.run(wake_ups_while(_stream(fake), act))
    assert got == [push.WakeUp(1)]


def test_a_feed_broken_by_one_item_still_tells_its_new_items():
    broken = rss_item("b-0", "Rusak \x01 di sini")
    with FakeApis() as fake:
        fake.data.feeds["berita.xml"] = ('"v1"', _feed("a-1").replace("<item>", broken + "<item>", 1))

        async def act() -> None:
            await _until(lambda: len(_looks(fake)) >= 2)
            fake.data.feeds["berita.xml"] = ('"v2"', _feed("a-2", "a-1").replace("<item>", broken + "<item>", 1))
            await _until(lambda: any(r.headers.get("If-None-Match") == '"v2"' for r in _looks(fake)))

        got = asyncio.run(wake_ups_while(_stream(fake), act))
    assert got == [push.WakeUp(1)]


@pytest.mark.parametrize(("status", "headers", "floor"), [
    (429, {"Retry-After": "120"}, 120.0),
    (503, {"Retry-After": "7"}, 7.0),
    (429, {}, push.BACKOFF_MAX),  # a 429 that says nothing: the longest of listen's own waits
    (429, {"Retry-After": "999999"}, rss_watch.RETRY_AFTER_MAX),
])
def test_a_refusal_waits_as_long_as_the_server_asks(status, headers, floor):
    response = httpx.Response(status, headers=headers, request=httpx.Request("GET", "http://feed.example/rss"))
    with pytest.raises(push.Backoff) as refused:
        rss_watch._check(response)
    assert refused.value.at_least == floor and f"HTTP {status}" in str(refused.value)


@pytest.mark.parametrize("status", [404, 500, 503, 204])
def test_any_other_answer_is_a_failed_look(status):
    response = httpx.Response(status, request=httpx.Request("GET", "http://feed.example/rss"))
    with pytest.raises(httpx.HTTPStatusError, match=f"HTTP {status}"):
        rss_watch._check(response)


def test_an_oversized_feed_is_cut_and_looked_at_again(monkeypatch):
    monkeypatch.setattr(rss, "MAX_FEED_BYTES", 2_000)
    with FakeApis() as fake:
        fake.data.feeds["berita.xml"] = ('"v1"', _feed(*(f"a-{i}" for i in range(100))))

        async def first_look() -> None:
            async with push._client() as client:
                async for _ in rss_watch.feed_announcements(_stream(fake), client, push._token_in_thread):
                    pass

        with pytest.raises(push.EventTooLarge):
            asyncio.run(asyncio.wait_for(first_look(), 10))


class _Moved(BaseHTTPRequestHandler):
    """A site that moved its feed: the old address answers 301 to the new one."""

    target = ""

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.send_response(301)
        self.send_header("Location", self.target)
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_a_moved_feed_is_followed():
    with FakeApis() as fake:
        fake.data.feeds["berita.xml"] = ('"v1"', _feed("a-1"))
        handler = type("Moved", (_Moved,), {"target": f"{fake.url}/feeds/berita.xml"})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            stream = push.PushStream(SOURCE, f"http://127.0.0.1:{server.server_address[1]}/rss", protocol="rss", every=EVERY)

            async def act() -> None:
                await _until(lambda: len(_looks(fake)) >= 2)
                fake.data.feeds["berita.xml"] = ('"v2"', _feed("a-2", "a-1"))
                await _until(lambda: any(r.headers.get("If-None-Match") == '"v2"' for r in _looks(fake)))

            got = asyncio.run(wake_ups_while(stream, act))
        finally:
            server.shutdown()
            server.server_close()
    assert got == [push.WakeUp(1)]


# --- what a watcher compares: the ids the poll stores ---------------------------------------

# Ids the poll stores, in a well-formed feed: no controls or surrogates (the post schema refuses
# them), nor U+FFFE or U+FFFF (not characters in XML 1.0).
_GUIDS = st.lists(st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters="\ufffe\uffff"),
                          min_size=1, max_size=30)
                  .map(str.strip).filter(bool), max_size=6, unique=True)


@hsettings(max_examples=60, deadline=None)
@given(guids=_GUIDS, atom=st.booleans())
def test_the_items_a_watcher_compares_are_the_ids_the_poll_stores(guids, atom):
    """Whatever the ids: a watcher announces an item exactly when the poll would store a post
    it did not store before, so both must read an item's id the same way (guid, Atom id, else
    the link)."""
    from xml.sax.saxutils import escape

    if atom:
        entries = "".join(f"<entry><id>{escape(g)}</id><title>Banjir</title><published>2026-01-15T01:00:00Z</published></entry>"
                          if i % 2 else
                          f'<entry><link href="{escape(g, {chr(34): "&quot;"})}"/><title>Banjir</title><published>2026-01-15T01:00:00Z</published></entry>'
                          for i, g in enumerate(guids))
        body = f'<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>{entries}</feed>'
    else:
        dated = "<title>Banjir</title><pubDate>Thu, 15 Jan 2026 08:30:00 +0800</pubDate>"
        items = "".join(f"<item>{dated}<guid>{escape(g)}</guid></item>" if i % 2 else
                        f"<item>{dated}<link>{escape(g)}</link></item>" for i, g in enumerate(guids))
        body = f"<rss><channel>{items}</channel></rss>"
    posts, bad = rss.RssSource(SOURCE, ["http://feed.example/rss"]).parse(body.encode(), "feed", NOW)
    assert bad == []
    assert rss.item_ids(body.encode()) == {p.raw["id"] for p in posts}


def test_a_document_that_is_no_feed_is_a_failed_look():
    with pytest.raises(ValueError, match="neither RSS nor Atom"):
        rss.item_ids(b"<html><body>Maintenance</body></html>")


# --- config and trigger ------------------------------------------------------------------------

def _write(tmp_path, entry: str):
    path = tmp_path / "sources.yaml"
    path.write_text(f"sources:\n  - name: {SOURCE}\n    kind: rss\n    feeds: [https://bpbd.example/feed, https://berita.example/rss,"
                    f" https://bpbd.example/feed]\n{entry}", encoding="utf-8")
    return path


def test_push_watches_each_feed_once_every_watch_every_seconds(tmp_path):
    (source,) = load_sources(_write(tmp_path, "    push: true\n    watch_every: 20\n"))
    streams = push.push_streams([source])
    assert [(s.url, s.protocol, s.every) for s in streams] == [
        ("https://bpbd.example/feed", "rss", 20.0), ("https://berita.example/rss", "rss", 20.0)]
    (default,) = push.push_streams(load_sources(_write(tmp_path, "    push: true\n"))[:1])[:1]
    assert default.every == watch.WATCH_EVERY
    assert push.push_streams(load_sources(_write(tmp_path, ""))) == []


@pytest.mark.parametrize(("entry", "line", "said"), [
    ("    push: true\n    watch_every: 1\n", 6, "watch_every: 1 is less than the minimum of 5.0"),
    ("    push: true\n    watch_every: 99999\n", 6, "watch_every: 99999 is greater than the maximum of 3600.0"),
    ("    watch_every: 30\n", 5, "watch_every: a source is watched only with push: true; add it, or drop watch_every"),
    ("    push: yes please\n", 5, "push: 'yes please' is not of type 'boolean'"),
])
def test_a_watch_the_feed_cannot_keep_is_refused_at_its_line(tmp_path, entry, line, said):
    problems, _ = check_sources_file(_write(tmp_path, entry))
    assert [(p.line, p.field.split(".")[-1] + ": " + p.message) for p in problems] == [(line, said)]


def test_the_trigger_keeps_how_often_it_looks():
    from siaga_push import SourcePushTrigger

    stream = push.PushStream(SOURCE, "https://bpbd.example/feed", protocol="rss", every=20.0)
    again = rebuilt(SourcePushTrigger.of(stream))
    assert again.stream.every == 20.0 and push.reader("rss") is rss_watch.feed_announcements


def test_a_feed_that_drips_its_answer_fails_the_look_at_its_deadline(monkeypatch):
    """A byte every 50 ms never trips a per-read timeout; the look's one deadline does."""
    monkeypatch.setattr(rss_watch, "LOOK_TIMEOUT", 0.5)
    with FakeApis() as fake:
        fake.data.feeds["berita.xml"] = ('"v1"', _feed("a-1"))
        fake.fail("/feeds/berita.xml", "drip_headers", seconds=0.05)

        async def first_look() -> None:
            async with push._client() as client:
                async for _ in rss_watch.feed_announcements(_stream(fake), client, push._token_in_thread):
                    pass

        with pytest.raises(TimeoutError):
            asyncio.run(asyncio.wait_for(first_look(), 10))


def test_a_version_that_is_no_feed_is_asked_for_in_full_again():
    """An answer refused (a maintenance page under its own ETag) must not become the version
    the watcher asks about: once the feed is back under that same ETag, it is read."""
    with FakeApis() as fake:
        fake.data.feeds["berita.xml"] = ('"v1"', _feed("a-1"))

        async def act() -> None:
            await _until(lambda: len(_looks(fake)) >= 2)
            fake.data.feeds["berita.xml"] = ('"v2"', "<html><body>Maintenance</body></html>")
            await _until(lambda: len(_looks(fake)) >= 4)
            fake.data.feeds["berita.xml"] = ('"v2"', _feed("a-2", "a-1"))  # a server that kept its ETag
            await _until(lambda: len(_looks(fake)) >= 7)

        got = asyncio.run(wake_ups_while(_stream(fake), act))
    assert got == [push.WakeUp(1)]  # asked about "v2" once refused, it would have been 304 for ever
