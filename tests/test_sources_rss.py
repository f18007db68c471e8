"""RSS/Atom through the real client: conditional GET with ETag, RSS and Atom items, GeoRSS,
broken XML quarantined once, entity bombs refused by the parser."""
from __future__ import annotations

from datetime import timedelta

import pytest

from support.fakeapis import T0, FakeApis
from siaga.sources.base import AuthorPolicy
from siaga.sources.http import HttpPolicy
from siaga.sources.rss import RssSource

pytestmark = pytest.mark.usefixtures("author_key")
NOW = T0 + timedelta(hours=3)
FAST = HttpPolicy(connect_timeout=1, read_timeout=0.5, attempts=2, backoff=0.01, max_wait=5)

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:georss="http://www.georss.org/georss" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel><title>Berita Buleleng</title>
<item><title>Banjir rendam Desa Kalibukbuk</title><link>https://berita.example/banjir-kalibukbuk?utm_source=rss</link>
<guid>berita-1</guid><pubDate>Thu, 15 Jan 2026 08:30:00 +0800</pubDate><dc:creator>Redaksi</dc:creator>
<description>&lt;p&gt;Air setinggi &lt;b&gt;50 cm&lt;/b&gt; di Lovina.&lt;/p&gt;</description><georss:point>-8.16 115.02</georss:point></item>
<item><title>Tanpa tanggal</title><guid>berita-2</guid></item>
</channel></rss>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>BPBD</title>
<entry><id>tag:bpbd.example,2026:1</id><title>Peringatan dini cuaca ekstrem Buleleng</title>
<link rel="alternate" href="https://bpbd.example/peringatan-1"/><published>2026-01-15T01:00:00Z</published>
<summary>Waspada angin kencang di Gerokgak.</summary><author><name>BPBD Buleleng</name></author></entry></feed>"""

BOMB = """<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;"><!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
<!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;"><!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;"><!ENTITY h "&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;">]>
<rss><channel><item><title>&h;</title><guid>x</guid></item></channel></rss>"""


@pytest.fixture
def api():
    with FakeApis() as fake:
        fake.data.feeds = {"berita.xml": ('"v1"', RSS), "bpbd.xml": ('"a1"', ATOM)}
        yield fake


def src(api, feeds=("berita.xml", "bpbd.xml"), **kw):
    return RssSource("news", [f"{api.url}/feeds/{f}" for f in feeds], policy=FAST, sleep=lambda s: None, **kw)


def test_rss_and_atom_items_then_304(api):
    s = src(api)
    first = s.poll(None, NOW)
    by_id = {p.source_id: p for p in first.posts}
    berita = by_id["berita-1"]
    assert berita.text == "Banjir rendam Desa Kalibukbuk\nAir setinggi 50 cm di Lovina."
    assert (berita.lat, berita.lon) == (-8.16, 115.02) and berita.created_at == T0 + timedelta(minutes=30)
    assert berita.canonical_url == "https://berita.example/banjir-kalibukbuk"
    assert berita.author.startswith("anon:")
    assert by_id["tag:bpbd.example,2026:1"].url == "https://bpbd.example/peringatan-1"
    assert [b.location.rsplit(" ", 1)[1] for b in first.bad] == ["berita-2"] and "pubDate" in first.bad[0].reason
    second = s.poll(first.cursor, NOW)
    assert second.posts == [] and second.bad == []
    assert [r.headers.get("If-None-Match") for r in api.hits("/feeds/berita.xml")] == [None, '"v1"']


def test_official_feed_keeps_author(api):
    (post,) = src(api, feeds=("bpbd.xml",)).poll(None, NOW).posts
    assert post.author.startswith("anon:")
    (post,) = src(api, feeds=("bpbd.xml",), authors=AuthorPolicy(official_all=True)).poll(None, NOW).posts
    assert post.author == "BPBD Buleleng"


def test_broken_xml_and_entity_bomb_quarantined_once(api):
    api.data.feeds["rusak.xml"] = ('"r"', RSS[:300])
    api.data.feeds["bom.xml"] = ('"b"', BOMB)
    result = src(api, feeds=("rusak.xml", "bom.xml", "bpbd.xml")).poll(None, NOW)
    # The truncated feed has no whole item: the feed is quarantined and fails. The bomb's one
    # item is refused on its own (its entity is not expanded), so that feed does not fail.
    assert len(result.posts) == 1 and [f.split(": ", 1)[0].rsplit("/", 1)[1] for f in result.failed] == ["rusak.xml"]
    reasons = {b.location.rsplit("/", 1)[1]: b.reason for b in result.bad}
    assert "not well-formed XML" in reasons["bom.xml item 1"] and "entity" in reasons["bom.xml item 1"], reasons
    assert all("XML" in r for r in reasons.values()), reasons
    again = src(api, feeds=("rusak.xml",)).poll(result.cursor, NOW)
    assert again.bad[0].location == result.bad[0].location  # same body, same key: quarantined once


def test_outage_keeps_old_etag(api):
    s = src(api, feeds=("berita.xml",))
    first = s.poll(None, NOW)
    api.fail("/feeds/", "server_error", times=2)
    down = s.poll(first.cursor, NOW)
    assert down.failed and down.cursor == first.cursor
