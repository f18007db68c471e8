"""A source that drips its response (a byte at a time, each well within the read timeout) fails
its poll once `http.response_timeout` has passed, through the real requests client against
tests/support/fakeapis.py: the part is retried by the task's retries, its cursor stays, and the
next poll reads it. It once kept a poll busy for as long as the server cared to drip."""
from __future__ import annotations

import gzip
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from support.fakeapis import FAST, T0, X_TOKEN
from siaga.ingest import ingest, read_cursor
from siaga.sources import SourceConfigError, check_sources_file, load_sources
from siaga.sources.http import HttpPolicy, ResponseTimeout, SourceError, make_session, request
from siaga.sources.rss import RssSource
from siaga.sources.x import XSource
from siaga.store import session_scope

pytestmark = pytest.mark.usefixtures("author_key")
NOW = T0 + timedelta(hours=3)
# Reads of the dripped bytes never wait anywhere near read_timeout; the whole response may take
# only response_timeout. Dripping a feed takes the fake some seconds: far past it.
SLOW = HttpPolicy(connect_timeout=1, read_timeout=5, response_timeout=0.3, attempts=3, backoff=0.01, max_wait=5)
DRIP = 0.005  # seconds between bytes

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Berita Buleleng</title>
<item><title>Banjir rendam Desa Kalibukbuk</title><link>https://berita.example/banjir-kalibukbuk</link>
<guid>{guid}</guid><pubDate>Thu, 15 Jan 2026 08:30:00 +0800</pubDate>
<description>Air setinggi 50 cm di Lovina, warga mengungsi ke balai banjar.</description></item>
</channel></rss>"""


def _rss(api, feeds, policy=SLOW):
    return RssSource("news", [f"{api.url}/feeds/{f}" for f in feeds], policy=policy, sleep=lambda s: None)


def test_a_dripping_feed_fails_its_part_of_the_poll_and_the_next_poll_reads_it(api):
    api.data.feeds = {"lambat.xml": ('"l1"', RSS.format(guid="lambat-1")), "cepat.xml": ('"c1"', RSS.format(guid="cepat-1"))}
    api.fail("/feeds/lambat.xml", "drip", seconds=DRIP)
    source = _rss(api, ["lambat.xml", "cepat.xml"])
    first = source.poll(None, NOW)
    slow = f"{api.url}/feeds/lambat.xml"
    assert first.failed == [f"{slow}: response not complete after 0.3s (http.response_timeout)"]
    assert [p.source_id for p in first.posts] == ["cepat-1"] and first.bad == []
    assert slow not in first.cursor["feeds"]  # its cursor stays: nothing of it is lost
    assert len(api.hits("/feeds/lambat.xml")) == 1  # not retried within the run: it would drip again
    second = source.poll(first.cursor, NOW)
    assert [p.source_id for p in second.posts] == ["lambat-1"] and second.failed == []


def test_a_dripping_api_page_fails_the_poll_through_ingest_and_the_cursor_stays(api, monkeypatch, sqlite_url):
    monkeypatch.setenv("SIAGA_X_FAKE_TOKEN", X_TOKEN)
    api.tweet(310, 1, "banjir di buleleng, jalan ke Seririt tergenang")
    api.fail("/2/tweets/search/recent", "drip", seconds=DRIP)
    source = XSource("x", conn_id="x_fake", queries=["banjir buleleng"], api=api.url, policy=SLOW, sleep=lambda s: None)
    with pytest.raises(SourceError, match=r"failed: .*response not complete after 0\.3s \(http\.response_timeout\)"):
        ingest(source, NOW, sqlite_url)
    with session_scope(sqlite_url) as session:
        assert not (read_cursor(session, "x") or {}).get("queries")
    assert ingest(source, NOW, sqlite_url).new_posts == 1


@pytest.mark.parametrize("mode", ["drip", "drip_headers"])
def test_a_response_dripped_in_its_body_or_its_headers_is_a_response_timeout(api, mode):
    api.data.feeds = {"lambat.xml": ('"l1"', RSS.format(guid="lambat-1"))}
    api.fail("/feeds/lambat.xml", mode, seconds=DRIP)
    with pytest.raises(ResponseTimeout, match=r"lambat\.xml: response not complete after 0\.3s \(http\.response_timeout\)"):
        request(make_session(), f"{api.url}/feeds/lambat.xml", policy=SLOW, sleep=lambda s: None)
    assert len(api.hits("/feeds/lambat.xml")) == 1
    assert api.hangups.get(timeout=30) == "/feeds/lambat.xml"  # given up on while it dripped, not after
    assert request(make_session(), f"{api.url}/feeds/lambat.xml", policy=SLOW).content == RSS.format(guid="lambat-1").encode()


def test_a_timely_response_is_read_whole_compressed_or_not(api):
    """The body is read as it arrives (`read1`), decoded as before: plain, and gzip as served."""
    api.data.feeds = {"plain.xml": ('"p"', RSS.format(guid="p-1")), "gz.xml": ('"g"', gzip.compress(RSS.format(guid="g-1").encode()))}
    api.data.headers["/feeds/gz.xml"] = {"Content-Encoding": "gzip"}
    session = make_session()
    for name, guid in (("plain.xml", "p-1"), ("gz.xml", "g-1")):
        resp = request(session, f"{api.url}/feeds/{name}", policy=FAST, sleep=lambda s: None)
        assert resp.content.decode() == RSS.format(guid=guid)


def test_the_response_timeout_is_read_from_the_source_config_and_checked(tmp_path: Path):
    entry = {"name": "berita", "kind": "rss", "feeds": ["https://berita.example/rss"], "http": {"response_timeout": 12.5}}
    (source,) = load_sources(_write(tmp_path, entry))
    assert source.policy.response_timeout == 12.5
    assert RssSource.from_config({"name": "b", "feeds": ["https://b.example/"]}, tmp_path, "sources[0]").policy.response_timeout == 60
    for wrong in (0, -1, "soon", True):
        entry["http"]["response_timeout"] = wrong
        problems, _ = check_sources_file(_write(tmp_path, entry))
        assert len(problems) == 1 and "sources.yaml:" in str(problems[0]) and "response_timeout" in str(problems[0]), problems
        with pytest.raises(SourceConfigError, match=r"^sources\[0\]\.http\.response_timeout: expected a positive number"):
            RssSource.from_config(entry, tmp_path, "sources[0]")


def _write(tmp_path: Path, entry: dict) -> Path:
    path = tmp_path / "config" / "sources.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump({"sources": [entry]}))
    return path
