"""Bluesky searchPosts through the real client: newest-first sweeps resumed across runs, quotes
linked, bad posts quarantined, malformed pages failing only their query."""
from __future__ import annotations

from datetime import timedelta

import pytest

from support.fakeapis import FAST, T0
from siaga.sources.bluesky import BlueskySource

NOW = T0 + timedelta(hours=3)
pytestmark = pytest.mark.usefixtures("author_key")


def src(api, **kw):
    return BlueskySource("bsky", kw.pop("queries", ["longsor buleleng"]), appview=api.url, policy=FAST, sleep=lambda s: None, **kw)


def test_sweep_resumes_below_where_it_stopped(api):
    api.skeet("a0", 0, "Longsor Buleleng di Wanagiri tadi pagi")
    s = src(api, limit=2, max_pages=2)
    first = s.poll(None, NOW)
    assert [p.source_id.rsplit("/", 1)[1] for p in first.posts] == ["a0"]
    for i in range(1, 8):  # seven new posts; two pages of two per run
        api.skeet(f"b{i}", 10 + i, f"longsor buleleng update {i}")
    second = s.poll(first.cursor, NOW)
    assert [p.source_id[-2:] for p in second.posts] == ["b7", "b6", "b5", "b4"]
    assert "sweep" in second.cursor["queries"]["longsor buleleng"]
    api.skeet("c1", 30, "longsor buleleng lagi di Pancasari")  # arrives mid-sweep
    third = s.poll(second.cursor, NOW)
    assert [p.source_id[-2:] for p in third.posts] == ["b3", "b2", "b1", "a0"]  # reached the old high mark
    assert "sweep" not in third.cursor["queries"]["longsor buleleng"]
    fourth = s.poll(third.cursor, NOW)
    assert [p.source_id[-2:] for p in fourth.posts] == ["c1", "b7"]  # since= is inclusive: b7 again, stored once


def test_quote_links_to_quoted_post_and_authors_hashed(api):
    quoted = api.skeet("q0", 1, "Longsor buleleng, jalur Singaraja-Bedugul tertutup", handle="bpbd.bsky.social")
    api.skeet("q1", 2, "longsor buleleng, hati-hati!", embed={"$type": "app.bsky.embed.record#view", "record": {"uri": quoted["uri"]}})
    posts = {p.source_id[-2:]: p for p in src(api, queries=["longsor buleleng"]).poll(None, NOW).posts}
    assert posts["q1"].reposts == posts["q0"].canonical_url == "https://bsky.app/profile/" + quoted["author"]["did"] + "/post/q0"
    assert posts["q1"].author.startswith("anon:")


def test_bad_posts_quarantined_and_malformed_page_fails_only_that_query(api):
    api.skeet("ok", 1, "longsor buleleng di Munduk")
    api.skeet("bad", 2, "longsor buleleng", record={"text": ["longsor buleleng"]})
    api.skeet("macet1", 3, "macet singaraja parah")
    api.fail("/xrpc/app.bsky.feed.searchPosts", "malformed")
    result = src(api, queries=["longsor buleleng", "macet singaraja"]).poll(None, NOW)
    assert [p.text for p in result.posts] == ["macet singaraja parah"]
    assert len(result.failed) == 1 and "not valid JSON" in result.bad[0].reason
    again = src(api, queries=["longsor buleleng", "macet singaraja"]).poll(result.cursor, NOW)
    # the failed query starts afresh; the other re-reads only its inclusive boundary post
    assert [p.text for p in again.posts] == ["longsor buleleng di Munduk", "macet singaraja parah"]
    assert any("record.text" in b.reason and b.location.endswith("/bad") for b in again.bad)


def test_a_client_clock_ahead_counts_as_indexed_and_a_bad_index_time_is_refused(api):
    api.skeet("fast", 1, "longsor buleleng, jam HP kecepatan", record={"$type": "app.bsky.feed.post", "text": "longsor buleleng jam cepat",
                                                                       "createdAt": "2026-01-16T09:00:00Z"})
    api.skeet("old", 2, "longsor buleleng tahun nol", indexedAt="0001-01-01T00:00:00+14:00")
    result = src(api).poll(None, NOW)
    (post,) = result.posts
    assert post.created_at == T0 + timedelta(minutes=1)  # createdAt was a day ahead: the index time stands
    assert [b.location.rsplit("/", 1)[1] for b in result.bad] == ["old"] and "indexedAt" in result.bad[0].reason
