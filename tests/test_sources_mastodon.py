"""Mastodon connector through the real requests client against tests/support/fakeapis.py:
forward paging with min_id and Link headers, per-stream cursors, boosts linked, rate limits,
5xx, hangs, malformed pages quarantined, and an outage backfilled by the next runs."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from support.fakeapis import FAST, T0
from siaga import ingest, store
from siaga.sources import SourceError
from siaga.sources.base import AuthorPolicy
from siaga.sources.mastodon import MastodonSource, Stream

NOW = T0 + timedelta(hours=2)
pytestmark = pytest.mark.usefixtures("author_key")


def source(api, sleeps=None, **kw):
    streams = kw.pop("streams", [Stream(api.url, "tag", "banjirbuleleng")])
    return MastodonSource("masto", streams, policy=FAST, sleep=(sleeps.append if sleeps is not None else lambda s: None), **kw)


def test_first_run_reads_newest_page_then_pages_forward(api):
    for i in range(1, 6):
        api.toot("banjirbuleleng", 100 + i, i, f"Banjir di Sukasada jalan {i}")
    src = source(api, limit=2, max_pages=10)
    first = src.poll(None, NOW)
    assert sorted(p.source_id.split(":")[-1] for p in first.posts) == ["104", "105"]  # newest page only
    assert first.cursor["streams"][f"{api.url[7:]}/tag:banjirbuleleng"] == {"min_id": "105"}
    for i in range(6, 11):
        api.toot("banjirbuleleng", 100 + i, i, f"Air naik di Seririt {i}")
    second = src.poll(first.cursor, NOW)
    assert sorted(int(p.source_id.split(":")[-1]) for p in second.posts) == list(range(106, 111))
    # pages after the first followed the server's Link rel="prev" URL
    assert [r.params.get("min_id") for r in api.hits("/api/v1/timelines/tag/")][1:] == ["105", "107", "109", "110"]
    assert src.poll(second.cursor, NOW).posts == []


def test_authors_pseudonymised_unless_official(api):
    api.toot("banjirbuleleng", 1, 1, "Warga lapor banjir Banjar", acct="budi")
    api.toot("banjirbuleleng", 2, 2, "BPBD: waspada banjir", acct="bpbdbuleleng")
    src = source(api, authors=AuthorPolicy(frozenset({f"bpbdbuleleng@{api.url[7:]}"})))
    posts = {p.text.split()[0]: p for p in src.poll(None, NOW).posts}
    assert posts["Warga"].author.startswith("anon:") and "budi" not in str(posts["Warga"].raw).lower()
    assert posts["Warga"].author_pseudonymised
    assert posts["BPBD:"].author == f"bpbdbuleleng@{api.url[7:]}" and not posts["BPBD:"].author_pseudonymised


def test_boost_yields_original_and_linked_copy(api):
    original = api.toot("other", 50, 1, "Longsor di Gitgit, jalan tertutup", acct="ketut")
    api.toot("banjirbuleleng", 60, 2, "", acct="made", reblog={k: v for k, v in original.items() if k != "_host"})
    posts = source(api).poll(None, NOW).posts
    by_id = {p.source_id.split(":")[-1]: p for p in posts}
    assert by_id["60"].reposts == by_id["50"].canonical_url and by_id["50"].reposts is None
    assert by_id["60"].text == by_id["50"].text


def test_429_with_retry_after_then_500_are_retried(api):
    api.toot("banjirbuleleng", 1, 1, "Macet Singaraja arah Lovina")
    api.fail("/api/v1/timelines/tag/", "ratelimit", seconds=2)
    api.fail("/api/v1/timelines/tag/", "server_error")
    sleeps = []
    result = source(api, sleeps).poll(None, NOW)
    assert len(result.posts) == 1 and not result.failed
    assert sleeps[0] == 2  # honoured Retry-After exactly
    assert len(api.hits("/api/v1/timelines/tag/")) == 3


def test_long_retry_after_fails_the_stream_not_the_others(api):
    api.toot("banjirbuleleng", 1, 1, "Banjir Kubutambahan")
    api.toot("singaraja", 2, 2, "Pohon tumbang di Jalan Ahmad Yani Singaraja")
    api.fail("/api/v1/timelines/tag/banjirbuleleng", "ratelimit", seconds=900)
    src = source(api, streams=[Stream(api.url, "tag", "banjirbuleleng"), Stream(api.url, "tag", "singaraja")])
    result = src.poll(None, NOW)
    assert [p.text for p in result.posts] == ["Pohon tumbang di Jalan Ahmad Yani Singaraja"]
    assert len(result.failed) == 1 and "900" in result.failed[0]
    assert list(result.cursor["streams"]) == [f"{api.url[7:]}/tag:singaraja"]


def test_hang_times_out_and_retries(api):
    api.toot("banjirbuleleng", 1, 1, "Banjir bandang Tejakula")
    api.fail("/api/v1/timelines/tag/", "hang", seconds=1.5)
    result = source(api).poll(None, NOW)
    assert len(result.posts) == 1 and len(api.hits("/api/v1/timelines/tag/")) == 2


def test_malformed_page_is_quarantined_and_fails(api):
    api.toot("banjirbuleleng", 1, 1, "Banjir Sawan")
    api.fail("/api/v1/timelines/tag/", "malformed")
    result = source(api).poll(None, NOW)
    assert result.posts == [] and result.failed
    assert "not valid JSON" in result.bad[0].reason


def test_bad_status_quarantined_with_its_id(api):
    api.toot("banjirbuleleng", 1, 1, "Banjir Gerokgak")
    api.toot("banjirbuleleng", 2, 2, "x", created_at="kemarin sore")
    api.toot("banjirbuleleng", 3, 600000, "dari masa depan")
    result = source(api).poll(None, NOW)
    assert [p.text for p in result.posts] == ["Banjir Gerokgak"]
    reasons = {b.location.split(":")[-1]: b.reason for b in result.bad}
    assert "ISO 8601" in reasons["status 2"] and "future" in reasons["status 3"]


def test_outage_then_backfill_through_ingest(api, sqlite_url):
    api.toot("banjirbuleleng", 1, 1, "Hujan deras di Buleleng")
    src = source(api, limit=2, max_pages=2)
    assert ingest.ingest(src, NOW, sqlite_url).new_posts == 1
    for i in range(2, 9):
        api.toot("banjirbuleleng", i, i, f"Banjir Singaraja laporan {i}")
    api.fail("/api/v1/timelines/tag/", "server_error", times=3)  # the whole run fails
    with pytest.raises(SourceError):
        ingest.ingest(src, NOW, sqlite_url)
    with store.session_scope(sqlite_url) as session:
        assert ingest.read_cursor(session, "masto")["streams"][f"{api.url[7:]}/tag:banjirbuleleng"] == {"min_id": "1"}
    # recovered: two pages of two per run; three runs walk the seven-post gap without a hole
    got = [ingest.ingest(src, NOW, sqlite_url).new_posts for _ in range(3)]
    assert got == [4, 3, 0]
    with store.session_scope(sqlite_url) as session:
        ids = sorted(int(s.split(":")[-1]) for s in session.scalars(sa.select(store.Post.source_id)))
    assert ids == list(range(1, 9))


def test_a_link_header_that_is_no_url_pages_by_min_id(api):
    api.toot("banjirbuleleng", 1, 1, "Banjir Sawan")
    first = source(api, limit=2).poll(None, NOW)
    for i in range(2, 6):
        api.toot("banjirbuleleng", i, i, f"Banjir Sawan {i}")
    api.data.headers["/api/v1/timelines/tag/"] = {"Link": '<http://[::1>; rel="prev"'}
    result = source(api, limit=2).poll(first.cursor, NOW)
    assert sorted(p.source_id.split(":")[-1] for p in result.posts) == ["2", "3", "4", "5"] and not result.failed
